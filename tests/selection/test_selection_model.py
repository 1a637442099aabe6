"""`verl-video select DATA --model M -k K`: k answers per record, scored by the training reward, resumable."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from verl_video.annotations.formats import read_annotations
from verl_video.evaluation.backends import EvalRequest
from verl_video.selection import cli


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from verl_video.tools.demo_data import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, num_train=4, num_val=1, seed=0)
    return out


def select_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


class AlternatingBackend:
    """Answer i of every record alternates between the ground truth and a miss; records its calls."""

    def __init__(self, processor, truth: dict[str, list[float]]) -> None:
        self.processor, self.truth, self.calls, self.requests = processor, truth, 0, []

    def generate(self, requests: list[EvalRequest]) -> list[str]:
        self.calls += 1
        self.requests.extend(r.id for r in requests)
        if self.calls % 2:
            return ["<think>x</think><answer>{:.2f} to {:.2f}</answer>".format(*self.truth[r.id]) for r in requests]
        return ["<think>x</think><answer>no idea</answer>" for _ in requests]


def test_scored_answers_select_the_varying_records_and_resume(demo, tmp_path, tiny_model_dir, capsys):
    from transformers import AutoProcessor

    truth = {r.id: r.timestamps[0] for r in read_annotations(str(demo / "train.jsonl"))}
    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    out = tmp_path / "sel"
    first = AlternatingBackend(processor, truth)
    args = select_args(str(demo / "train.yaml"), "--model", str(tiny_model_dir), "-k", "2", "-o", str(out),
                       "--limit", "2", "--batch-size", "2")
    assert cli.run(args, backend_factory=lambda model: first) == 0
    lines = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["ious"][0] == pytest.approx(1.0) and line["ious"][1] == 0.0
        assert line["parse_failures"] == 1
        # The training reward: IoU + format for the right answer, less for the unparseable one.
        assert line["rewards"][0] > line["rewards"][1] and line["reward_var"] > 0
    # Resume: the same command over all records generates only the two not done yet.
    second = AlternatingBackend(processor, truth)
    args = select_args(str(demo / "train.yaml"), "--model", str(tiny_model_dir), "-k", "2", "-o", str(out),
                       "--batch-size", "2")
    assert cli.run(args, backend_factory=lambda model: second) == 0
    assert sorted(set(second.requests)) == sorted(set(truth) - {line["id"] for line in lines})
    assert len((out / "stats.jsonl").read_text().splitlines()) == 4
    assert "kept 4" in capsys.readouterr().out
    # Another k is another experiment: refused rather than mixed into the same statistics.
    args = select_args(str(demo / "train.yaml"), "--model", str(tiny_model_dir), "-k", "3", "-o", str(out))
    assert cli.run(args, backend_factory=lambda model: second) == 2


def test_tiny_model_samples_k_seeded_answers(demo, tmp_path, tiny_model_dir):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = select_args(str(demo / "train.yaml"), "--model", str(tiny_model_dir), "-k", "3", "-o", str(out),
                           "--limit", "2", "--max-new-tokens", "6", "--device", "cpu", "--strategy", "difficulty")
        cli.run(args)
        runs.append([json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()])
    for line in runs[0]:
        assert len(line["answers"]) == 3 and len(set(line["answers"])) > 1  # temperature 1: the answers differ
        assert isinstance(line["greedy"], str) and len(line["ious"]) == len(line["rewards"]) == 3
    assert [r["answers"] for r in runs[0]] == [r["answers"] for r in runs[1]]  # seeded: the same answers again


def test_a_resume_under_other_run_settings_is_refused(demo, tmp_path, tiny_model_dir, capsys):
    """--set changes the seed or the video budget without a flag; such a rerun must not mix its answers in."""
    from transformers import AutoProcessor

    truth = {r.id: r.timestamps[0] for r in read_annotations(str(demo / "train.yaml").replace("yaml", "jsonl"))}
    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    out = tmp_path / "sel"
    base = [str(demo / "train.yaml"), "--model", str(tiny_model_dir), "-k", "2", "-o", str(out), "--batch-size", "2"]
    first = AlternatingBackend(processor, truth)
    assert cli.run(select_args(*base, "--limit", "2"), backend_factory=lambda model: first) == 0
    for override in ("trainer.seed=7", "data.video.max_frames=8", "experiment=tiny_tvg_cpu"):
        other = AlternatingBackend(processor, truth)
        assert cli.run(select_args(*base, "--set", override), backend_factory=lambda model: other) == 2, override
        assert other.requests == [] and "different settings (resolved)" in capsys.readouterr().err
    assert len((out / "stats.jsonl").read_text().splitlines()) == 2
    # The same settings again resume: only the two records not done yet are generated.
    again = AlternatingBackend(processor, truth)
    assert cli.run(select_args(*base), backend_factory=lambda model: again) == 0
    assert sorted(set(again.requests)) == sorted(set(truth) - set(first.requests))
