"""`verl-video eval`: run a model over an evaluation set, write per-sample results, then score them.

Output folder:
    run.json            the settings that produced the responses (checked when resuming)
    predictions.jsonl   one line per sample, appended and flushed as each batch finishes
    metrics.json / metrics.md / *.png   the `verl-video score` report of predictions.jsonl

Rerunning the same command resumes: samples already in predictions.jsonl are not generated again,
a line torn by a crash is dropped, and samples whose video failed to decode are retried.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from tqdm import tqdm

from verl_video.data.prompts import DEFAULT_TEMPLATE, build_messages, get_template, render_prompt
from verl_video.data.settings import BUDGET_FIELDS, VideoBudget
from verl_video.data.video import decode_video
from verl_video.evaluation.backends import BACKENDS, EvalBackend, EvalRequest, GenerationOptions, make_backend
from verl_video.evaluation.checkpoint import resolve_model
from verl_video.evaluation.eval_set import EvalSample, load_eval_set
from verl_video.evaluation.grading import grade_response
from verl_video.evaluation.predictions import PredictionWriter, recover
from verl_video.evaluation.score import add_scoring_arguments, parse_buckets, score_file, scoring_from_args
from verl_video.rewards.parser import ParserConfig

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
VIDEO_ERROR = "video_error"
# Settings that may change between an interrupted run and its resumption without changing responses.
RESUMABLE_CHANGES = ("batch_size", "limit", "device", "dtype", "vllm")
_LINE_KEYS = ("id", "video", "query", "duration", "timestamps", "source", "task", "response", "prediction",
              "parse_status", "iou")


def template_for(sample: EvalSample, template: str | None, think: bool | None) -> str:
    """--template, else --think/--no-think, else the dataset's or record's template as in training, else think."""
    if template:
        return template
    if think is not None:
        return "think" if think else "answer_only"
    return sample.prompt_template or sample.record.extra.get("prompt_template") or DEFAULT_TEMPLATE


def budget_for(sample: EvalSample, overrides: dict) -> VideoBudget:
    """Video budget: defaults, then the dataset entry's overrides, then the command line's."""
    return VideoBudget().with_overrides(sample.budget_overrides).with_overrides(overrides)


def run_settings(args: argparse.Namespace, model: str, samples: Sequence[EvalSample], parser: ParserConfig) -> dict:
    """Everything that determines the responses and their grading, stored in run.json."""
    names: dict[str, set[str]] = {}
    for s in samples:
        names.setdefault(s.dataset, set()).add(template_for(s, args.template, args.think))
    templates = {name: get_template(name) for name in sorted(set().union(*names.values()))}
    budgets = {s.dataset: asdict(budget_for(s, _budget_overrides(args))) for s in samples}
    return {
        "model": model,
        "data": os.path.abspath(args.data),
        "video_root": os.path.abspath(args.video_root) if args.video_root else None,
        "backend": args.backend,
        "generation": asdict(_generation_options(args)),
        "dataset_templates": {dataset: sorted(used) for dataset, used in names.items()},
        "prompt_templates": {name: {"name": t.name, "user": t.user, "system": t.system, "think": t.think}
                             for name, t in templates.items()},
        "video_budgets": budgets,
        "decoder": args.decoder,
        "parser": asdict(parser),
        "batch_size": args.batch_size,
        "limit": args.limit,
        "device": args.device,
        "dtype": args.dtype,
        "vllm": {"tensor_parallel_size": args.tensor_parallel_size,
                 "gpu_memory_utilization": args.gpu_memory_utilization, "max_model_len": args.max_model_len},
    }


def check_resumable(previous: dict, current: dict, run_file: str) -> None:
    """Refuse to mix responses produced under different settings in one predictions file."""
    differing = sorted(k for k in set(previous) | set(current)
                       if k not in RESUMABLE_CHANGES and previous.get(k) != current.get(k))
    if differing:
        raise ValueError(f"{run_file}: the existing results were produced with different settings "
                         f"({', '.join(differing)}); use another --output-dir or pass --overwrite")


def output_line(sample: EvalSample, response: str | None, parser: ParserConfig, error: str | None = None) -> dict:
    """The per-sample result: the record, the response, its parsed interval, status and IoU."""
    record = sample.record
    grade = grade_response(response, record.timestamps, record.duration, parser)
    line = {
        "id": sample.id, "video": sample.video_path, "query": record.query, "duration": record.duration,
        "timestamps": record.timestamps, "source": record.source, "task": record.task, "response": response,
        "prediction": list(grade.prediction) if grade.prediction else None,
        "parse_status": VIDEO_ERROR if error else grade.status, "iou": grade.iou,
    }
    if record.is_clip:
        line.update(video_start=record.video_start, video_end=record.video_end)
    # Extra annotation fields (qsemtype, qid, ...) ride along for `score --by`.
    line.update({k: v for k, v in record.extra.items() if k not in _LINE_KEYS})
    if error:
        line["error"] = error
    return line


def _prepare(samples: Sequence[EvalSample], processor: Any, args: argparse.Namespace
             ) -> list[tuple[EvalSample, EvalRequest | None, str | None]]:
    """Decode one batch's videos and render prompts; a sample whose video fails carries the error instead."""
    out = []
    for sample in samples:
        try:
            video = decode_video(sample.video_path, budget_for(sample, _budget_overrides(args)),
                                 sample.record.video_start, sample.record.video_end, decoder=args.decoder)
        except Exception as exc:  # any decoder failure must not end a long run; it is recorded and retried
            out.append((sample, None, f"{type(exc).__name__}: {exc}"))
            continue
        if sample.record.duration is None:
            # As in training: without an annotated duration the model is told the length it sees.
            sample.record = replace(sample.record, duration=float(video.plan.duration))
        messages = build_messages(sample.record.query, template_for(sample, args.template, args.think), sample.record.duration)
        prompt = render_prompt(processor, messages)
        frames, metadata = video.as_processor_input()
        out.append((sample, EvalRequest(sample.id, prompt, frames, metadata), None))
    return out


def _batches(items: Sequence[EvalSample], size: int) -> Iterator[Sequence[EvalSample]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def generate_all(pending: Sequence[EvalSample], backend: EvalBackend, writer: PredictionWriter, parser: ParserConfig,
                 args: argparse.Namespace, progress: tqdm) -> int:
    """Generate, grade and append every pending sample; the next batch decodes while this one generates."""
    done = 0
    batches = list(_batches(pending, args.batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures: list[Future] = [pool.submit(_prepare, batches[0], backend.processor, args)]
        for index in range(len(batches)):
            prepared = futures.pop().result()
            if index + 1 < len(batches):
                futures.append(pool.submit(_prepare, batches[index + 1], backend.processor, args))
            ready = [request for _, request, _ in prepared if request is not None]
            responses = iter(backend.generate(ready) if ready else [])
            for sample, request, error in prepared:
                response = next(responses) if request is not None else None
                writer.write(output_line(sample, response, parser, error))
                done += 1
                progress.update(1)
    return done


def evaluate(args: argparse.Namespace, backend_factory: Callable[[str], EvalBackend] | None = None) -> dict:
    """Run (or resume) an evaluation and write its report; returns the report as JSON."""
    convention, parser = scoring_from_args(args)
    model = resolve_model(args.model)
    samples = load_eval_set(args.data, args.video_root)
    if args.limit:
        samples = samples[:args.limit]
    os.makedirs(args.output_dir, exist_ok=True)
    run_file = os.path.join(args.output_dir, RUN_FILE)
    pred_file = os.path.join(args.output_dir, PREDICTIONS_FILE)
    settings = run_settings(args, model, samples, parser)
    if args.overwrite:
        for path in (pred_file, run_file):
            if os.path.exists(path):
                os.remove(path)
    elif os.path.exists(run_file) and os.path.exists(pred_file):
        with open(run_file, encoding="utf-8") as f:
            check_resumable(json.load(f), settings, run_file)
    _write_json(run_file, settings)

    finished = _drop_failed(pred_file, recover(pred_file))
    pending = [s for s in samples if s.id not in finished]
    generated, elapsed = 0, 0.0
    if pending:
        backend = (backend_factory or _default_backend(args))(model)
        started = time.perf_counter()  # after loading the model: throughput, not start-up
        progress = tqdm(total=len(samples), initial=len(samples) - len(pending), unit="sample",
                        desc="verl-video eval", dynamic_ncols=True)
        try:
            with PredictionWriter(pred_file) as writer:
                generated = generate_all(pending, backend, writer, parser, args, progress)
        except KeyboardInterrupt:
            progress.close()
            print(f"\ninterrupted; rerun the same command to resume ({pred_file})", file=sys.stderr)
            raise
        progress.close()
        elapsed = time.perf_counter() - started
    report = score_file(pred_file, convention, parser, args.by, parse_buckets(args.buckets), "response", settings)
    report.write(args.output_dir, plots=not args.no_plots)
    print(report.to_markdown())
    if generated:
        print(f"generated {generated} samples in {elapsed:.1f} s ({generated / elapsed:.3f} samples/s, "
              "video decoding included, model loading excluded)", file=sys.stderr)
    return report.to_json()


def _drop_failed(pred_file: str, finished: dict[str, dict]) -> dict[str, dict]:
    """Remove lines of samples whose video failed, so that resuming retries them."""
    failed = {k for k, v in finished.items() if v.get("parse_status") == VIDEO_ERROR}
    if not failed:
        return finished
    kept = {k: v for k, v in finished.items() if k not in failed}
    tmp = f"{pred_file}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in kept.values():
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(tmp, pred_file)
    return kept


def _default_backend(args: argparse.Namespace) -> Callable[[str], EvalBackend]:
    options = _generation_options(args)
    if args.backend == "vllm":
        return lambda model: make_backend("vllm", model, options, tensor_parallel_size=args.tensor_parallel_size,
                                          gpu_memory_utilization=args.gpu_memory_utilization,
                                          max_model_len=args.max_model_len, dtype=args.dtype or "bfloat16")
    device = args.device if args.device != "auto" else _auto_device()
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    return lambda model: make_backend("hf", model, options, device=device, dtype=dtype)


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _generation_options(args: argparse.Namespace) -> GenerationOptions:
    return GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                             seed=args.seed)


def _budget_overrides(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in BUDGET_FIELDS if getattr(args, name, None) is not None}


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video eval`."""
    parser.add_argument("--model", required=True,
                        help="Hugging Face model folder or hub id, or a verl checkpoint global_step_N "
                             "(merged once, cached in it)")
    parser.add_argument("--data", required=True,
                        help="data_config YAML, or one annotation file (canonical JSONL, Time-R1, TVGBench, ...)")
    parser.add_argument("--video-root", help="folder the annotation file's video paths are relative to "
                                             "(default: the file's folder)")
    parser.add_argument("--output-dir", "-o", required=True, help="results folder; rerun to resume")
    parser.add_argument("--overwrite", action="store_true", help="discard existing results in --output-dir")
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    g = parser.add_argument_group("model and generation")
    g.add_argument("--backend", choices=BACKENDS, default="hf", help="hf (CPU or GPU) or vllm (GPU)")
    g.add_argument("--device", default="auto", help="hf backend: cpu, cuda, cuda:1 or auto (default)")
    g.add_argument("--dtype", help="float32 / bfloat16 (default: float32 on CPU, bfloat16 on GPU)")
    g.add_argument("--batch-size", type=int, default=8, help="samples per generate call (default 8)")
    think = g.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_true", default=None,
                       help="prompt for <think> reasoning before the answer (template 'think')")
    think.add_argument("--no-think", dest="think", action="store_false",
                       help="prompt for the answer only (template 'answer_only')")
    g.add_argument("--template", help="prompt template name or text with {query}; default: the dataset's, else think")
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm backend")
    g.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm backend")
    g.add_argument("--max-model-len", type=int, help="vllm backend")
    v = parser.add_argument_group("video sampling (default: the training defaults, then the dataset's overrides)")
    v.add_argument("--fps", type=float)
    v.add_argument("--max-frames", type=int)
    v.add_argument("--min-frames", type=int)
    v.add_argument("--total-pixels", type=int)
    v.add_argument("--min-pixels", type=int)
    v.add_argument("--max-pixels", type=int)
    v.add_argument("--decoder", choices=("auto", "decord", "pyav"), default="auto")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_scoring_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of `verl-video eval`."""
    if args.batch_size < 1:
        print("verl-video eval: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        evaluate(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"verl-video eval: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
