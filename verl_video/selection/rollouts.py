"""k answers per record from evaluation's generation backends: the one place selection touches evaluation's runner.

Each record's prompt, video decode and template are evaluation's (`run_eval._prepare`), which builds
them as training does; a run whose agent loop is `video_search` answers through that loop instead
(`evaluation.search_eval`), each answer one trajectory seeded by (record, answer index). Sampled answers use
temperature 1 and a seed per (record, answer), so an answer does not depend on which other records share its batch, and a resumed run draws the same answers.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from verl_video.tasks.prompts import get_template
from verl_video.pipeline.run_settings import RunSettings
from verl_video.evaluation import run_eval
from verl_video.evaluation.backends import EvalBackend, EvalRequest, HFBackend, VLLMBackend
from verl_video.evaluation.eval_set import EvalSample


@dataclass
class RecordAnswers:
    """The sampled answers (and the greedy one) for one record, or why there are none."""

    sample: EvalSample
    sampled: list[str]
    greedy: str | None = None
    error: str | None = None
    # The search loop's per-answer facts (zoom calls, windows, visual tokens): sampled answers, then the greedy one.
    trajectories: list[dict] | None = None


def answer_seed(seed: int, record_id: str, index: int) -> int:
    """Seed of answer `index` of a record: fixed by (run seed, record id, index), not by batch composition."""
    return (seed * 1_000_003 + zlib.crc32(record_id.encode("utf-8")) * 131 + index) % (2**63 - 1)


def _hf_generate(backend: HFBackend, requests: list[EvalRequest], k: int, seed: int, temperature: float,
                 greedy: bool) -> tuple[list[list[str]], list[str | None]]:
    from verl_video.verl_adapter.hf_engine import SamplingSettings

    engine = backend.engine
    built = [backend._request(r) for r in requests]
    sampled_requests = []
    for request, gen in zip(requests, built):
        for index in range(k):
            sampled_requests.append(replace(gen, seed=answer_seed(seed, request.id, index)))
    settings = SamplingSettings(temperature=temperature, top_p=backend.options.top_p,
                                max_new_tokens=backend.options.max_new_tokens)
    results = engine.generate(sampled_requests, settings)
    texts = [engine.tokenizer.decode(r.token_ids, skip_special_tokens=True) for r in results]
    sampled = [texts[i * k:(i + 1) * k] for i in range(len(requests))]
    greedy_texts: list[str | None] = [None] * len(requests)
    if greedy:
        greedy_settings = SamplingSettings(temperature=0.0, max_new_tokens=backend.options.max_new_tokens)
        out = engine.generate(built, greedy_settings)
        greedy_texts = [engine.tokenizer.decode(r.token_ids, skip_special_tokens=True) for r in out]
    return sampled, greedy_texts


def _vllm_generate(backend: VLLMBackend, requests: list[EvalRequest], k: int, seed: int, temperature: float,
                   greedy: bool) -> tuple[list[list[str]], list[str | None]]:
    from vllm import SamplingParams

    opts, default = backend.options, backend.sampling
    calls = []
    try:
        # One call per answer index, each with its own seed: vLLM seeds each request by itself, so an
        # answer does not depend on the batch either.
        for index in range(k):
            backend.sampling = SamplingParams(temperature=temperature, top_p=opts.top_p,
                                              max_tokens=opts.max_new_tokens, seed=answer_seed(seed, "", index))
            calls.append(backend.generate(requests))
        greedy_texts: list[str | None] = [None] * len(requests)
        if greedy:
            backend.sampling = SamplingParams(temperature=0.0, max_tokens=opts.max_new_tokens)
            greedy_texts = list(backend.generate(requests))
    finally:
        backend.sampling = default
    return [list(texts) for texts in zip(*calls)], greedy_texts


def generate_answers(samples: Sequence[EvalSample], backend: EvalBackend, settings: RunSettings, k: int,
                     seed: int, temperature: float = 1.0, greedy: bool = True) -> list[RecordAnswers]:
    """k sampled answers (and the greedy one) for each sample; a video that fails to decode gives an error."""
    if settings.search is not None:
        return _search_answers(samples, backend, k, temperature, greedy)
    prepared = run_eval._prepare(samples, backend.processor, settings)
    ready = [(sample, request) for sample, request, _ in prepared if request is not None]
    requests = [request for _, request in ready]
    if isinstance(backend, VLLMBackend):
        sampled, greedy_texts = _vllm_generate(backend, requests, k, seed, temperature, greedy)
    elif isinstance(backend, HFBackend):
        sampled, greedy_texts = _hf_generate(backend, requests, k, seed, temperature, greedy)
    else:  # any other backend (tests, user backends): its own generate, one call per answer index
        sampled = [list(t) for t in zip(*[backend.generate(requests) for _ in range(k)])] if requests else []
        greedy_texts = [None] * len(requests)
    answers = {id(sample): RecordAnswers(sample, texts, g) for (sample, _), texts, g in
               zip(ready, sampled, greedy_texts)}
    return [answers.get(id(sample)) or RecordAnswers(sample, [], error=error) for sample, _, error in prepared]


def _search_answers(samples: Sequence[EvalSample], backend: Any, k: int, temperature: float,
                    greedy: bool) -> list[RecordAnswers]:
    """k trajectories of the search loop (and a greedy one) per sample; `backend` is a `search_eval.SearchBackend`."""
    results = backend.answer(samples, [temperature] * k + ([0.0] if greedy else []))
    answers = []
    for sample, result in zip(samples, results):
        if isinstance(result, str):
            answers.append(RecordAnswers(sample, [], error=result))
            continue
        texts = [t.text for t in result]
        answers.append(RecordAnswers(sample, texts[:k], texts[k] if greedy else None,
                                     trajectories=[t.fields for t in result]))
    return answers


def answer_style(sample: EvalSample) -> str | None:
    """The answer style of the record's template (chosen as evaluation and training do), which the format check follows."""
    return get_template(sample.item.template).answer_style


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """Evaluation's model, generation and video flags (selection samples exactly as evaluation does)."""
    probe = argparse.ArgumentParser(add_help=False)
    run_eval.add_arguments(probe)
    skip = {"--model", "--data", "--output-dir", "--overwrite", "--limit", "--temperature", "--no-plots"}
    for action in probe._actions:
        if not action.option_strings or set(action.option_strings) & skip or action.dest == "help":
            continue
        # Scoring flags are left out: answers are scored by the training reward and its parser.
        if any(o in ("--strict", "--thresholds", "--drop-unparsed", "--by", "--buckets", "--match", "--fallback",
                     "--reversed", "--no-clip", "--normalized") for o in action.option_strings):
            continue
        parser._add_action(action)
