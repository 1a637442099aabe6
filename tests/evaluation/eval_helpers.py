"""What the evaluation tests share: the command's argument parser and a backend that answers from a script."""

from __future__ import annotations

import argparse

from verl_video.evaluation import run_eval
from verl_video.evaluation.backends import EvalRequest


def eval_args(*argv: str) -> argparse.Namespace:
    """`verl-video eval` arguments parsed as the command parses them."""
    parser = argparse.ArgumentParser()
    run_eval.add_arguments(parser)
    return parser.parse_args(list(argv))


class ScriptedBackend:
    """Answers each sample with a fixed text per id (the ground truth, say), and records its requests."""

    def __init__(self, processor, answers: dict[str, str]) -> None:
        self.processor, self.answers, self.requests = processor, answers, []

    def generate(self, requests: list[EvalRequest]) -> list[str]:
        """The scripted answer of each request ("" for ids without one)."""
        self.requests.extend(requests)
        return [self.answers.get(r.id, "") for r in requests]

    def describe(self) -> dict:
        """What run.json records about the backend."""
        return {"backend": "scripted"}
