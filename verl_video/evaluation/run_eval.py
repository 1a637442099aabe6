"""`verl-video eval`: run a model over an evaluation set, write per-sample results, then score them.

Output folder:
    run.json            the settings that produced the responses (checked when resuming)
    predictions.jsonl   one line per sample, appended and flushed as each batch finishes
    metrics.json / metrics.md / *.png   the `verl-video score` report of predictions.jsonl
    task_metrics.json / .md / <task>_by_source.png   the same for each task other than grounding

Settings: a checkpoint of a training run (`.../global_step_N`, merged) is evaluated with the settings the
run trained with (its run.json: prompt template, video budget, decoder, reward preset's parser, seed,
response length, validation files); any other model with video_grpo.yaml composed with `--set` overrides
(`verl_video.pipeline.run_settings`). A flag given explicitly changes one setting, and every difference it
makes is printed ("max_frames: run 32 -> flag 64").

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

from verl_video.pipeline.items import DatasetItem, prepare_item
from verl_video.tasks.prompts import get_template
from verl_video.annotations.records import DEFAULT_TASK
from verl_video.pipeline.run_settings import RunSettings, add_settings_arguments, prompt_template_for, settings_from_args
from verl_video.video.settings import BUDGET_FIELDS
from verl_video.models.family import video_geometry
from verl_video.evaluation.backends import (
    BACKENDS, VLLM_UNSUPPORTED, EvalBackend, EvalRequest, GenerationOptions, make_backend,
)
from verl_video.evaluation.checkpoint import resolve_model
from verl_video.evaluation.eval_set import EvalSample, load_eval_set
from verl_video.evaluation.grading import grade_response
from verl_video.evaluation.predictions import VISUAL_TOKENS, PredictionWriter, recover, start_or_resume
from verl_video.evaluation.score import (
    add_scoring_arguments, parse_buckets, reward_parser, score_all, scoring_from_args, show_and_write,
)
from verl_video.evaluation.task_scores import task_line
from verl_video.rewards.grounding_metrics import Convention
from verl_video.rewards.parser import ParserConfig
from verl_video.rewards.registry import load_modules

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
VIDEO_ERROR = "video_error"
# Settings that may change between an interrupted run and its resumption without changing responses.
RESUMABLE_CHANGES = ("batch_size", "limit", "device", "dtype", "vllm", "settings_source")
# --think / --no-think name these templates.
THINK_TEMPLATES = {True: "think", False: "answer_only"}
_LINE_KEYS = ("id", "video", "query", "duration", "timestamps", "source", "task", "response", "prediction",
              "parse_status", "iou", "ground_truth")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings the command line gives explicitly, named as in `RunSettings.values()`."""
    values = {name: getattr(args, name) for name in BUDGET_FIELDS if getattr(args, name, None) is not None}
    template = args.template or THINK_TEMPLATES.get(args.think)
    named = {"prompt_template": template, "decoder": args.decoder, "seed": args.seed,
             "max_response_length": args.max_new_tokens}
    values.update((name, value) for name, value in named.items() if value is not None)
    return values


def differences(settings: RunSettings, flags: dict[str, Any], parser: ParserConfig, flagged: ParserConfig) -> list[str]:
    """One line per setting a flag changes: `max_frames: run 32 -> flag 64`."""
    origin = "run" if settings.source.startswith("run ") else "defaults"
    current = settings.values()
    lines = [f"{name}: {origin} {current.get(name)} -> flag {value}" for name, value in flags.items()
             if current.get(name) != value]
    lines += [f"parser.{name}: {origin} {getattr(parser, name)} -> flag {getattr(flagged, name)}"
              for name in asdict(parser) if getattr(parser, name) != getattr(flagged, name)]
    return lines


def apply_flags(settings: RunSettings, flags: dict[str, Any]) -> RunSettings:
    """The settings with the flagged values in place."""
    video = settings.video
    budget = video.budget.with_overrides({k: v for k, v in flags.items() if k in BUDGET_FIELDS})
    video = replace(video, budget=budget, decoder=flags.get("decoder", video.decoder),
                    prompt_template=flags.get("prompt_template", video.prompt_template))
    return replace(settings, video=video, seed=flags.get("seed", settings.seed),
                   max_response_length=flags.get("max_response_length", settings.max_response_length))


def force_flags(item: DatasetItem, flags: dict[str, Any]) -> DatasetItem:
    """A flag beats a dataset entry's own template or budget override too (the entry beats the run's)."""
    budget = item.video.budget.with_overrides({k: v for k, v in flags.items() if k in BUDGET_FIELDS})
    # item.template already applied the entry and record rules; the flag is prompt_template_for's `forced`.
    template = prompt_template_for(None, None, item.template, forced=flags.get("prompt_template"))
    return replace(item, video=replace(item.video, budget=budget), template=template)


def run_settings(args: argparse.Namespace, model: str, samples: Sequence[EvalSample], parser: ParserConfig,
                 settings: RunSettings) -> dict:
    """Everything that determines the responses and their grading, stored in run.json."""
    names: dict[str, set[str]] = {}
    for s in samples:
        names.setdefault(s.dataset, set()).add(s.item.template)
    templates = {name: get_template(name) for name in sorted(set().union(*names.values()))}
    budgets = {s.dataset: asdict(s.item.video.budget) for s in samples}
    return {
        "model": model,
        "data": os.path.abspath(args.data),
        "video_root": os.path.abspath(args.video_root) if args.video_root else None,
        "settings_source": settings.source,
        "backend": args.backend,
        "generation": asdict(_generation_options(args, settings)),
        "dataset_templates": {dataset: sorted(used) for dataset, used in names.items()},
        "prompt_templates": {name: {"name": t.name, "user": t.user, "system": t.system, "think": t.think}
                             for name, t in templates.items()},
        "video_budgets": budgets,
        "decoder": settings.video.decoder,
        "reward": settings.reward,
        "search": settings.search,
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


def output_line(sample: EvalSample, response: str | None, parser: ParserConfig, error: str | None = None,
                trajectory: dict[str, Any] | None = None) -> dict:
    """The per-sample result: the record, the response, its parsed interval, status and IoU, and what the answer
    saw (`trajectory`: visual tokens, and a search trajectory's zoom facts)."""
    record = sample.record
    line = {
        "id": sample.id, "video": sample.video_path, "query": record.query, "duration": record.duration,
        "timestamps": record.timestamps, "source": record.source, "task": record.task, "response": response,
    }
    if record.task == DEFAULT_TASK:
        grade = grade_response(response, record.timestamps, record.duration, parser)
        line.update(prediction=list(grade.prediction) if grade.prediction else None, parse_status=grade.status,
                    iou=grade.iou)
    else:  # the task's ground truth, so that `score` grades the line by that task's metrics
        line.update(task_line(record, response))
    if error:
        line["parse_status"] = VIDEO_ERROR
    line.update(trajectory or {})
    if record.is_clip:
        line.update(video_start=record.video_start, video_end=record.video_end)
    # Extra annotation fields (qsemtype, qid, ...) ride along for `score --by`.
    line.update({k: v for k, v in record.extra.items() if k not in _LINE_KEYS})
    if error:
        line["error"] = error
    return line


def _prepare(samples: Sequence[EvalSample], processor: Any, settings: RunSettings
             ) -> list[tuple[EvalSample, EvalRequest | None, str | None]]:
    """Decode one batch's videos and render prompts; a sample whose video fails carries the error instead."""
    out = []
    for sample in samples:
        try:
            # Each video is asked for once: keeping its frames in the process's decode cache would only hold RAM.
            prepared = prepare_item(sample.item, 0, settings.video, processor, keep_in_memory=False)
        except Exception as exc:  # any decoder failure must not end a long run; it is recorded and retried
            out.append((sample, None, f"{type(exc).__name__}: {exc}"))
            continue
        if sample.record.duration is None:
            # As in training: without an annotated duration the model is told the length it sees.
            sample.item = replace(sample.item, record=replace(sample.record, duration=prepared.duration))
        out.append((sample, EvalRequest(sample.id, prepared.prompt, prepared.frames, prepared.metadata), None))
    return out


def prompt_visual_tokens(request: EvalRequest, processor: Any) -> int:
    """Video tokens of a single-pass prompt: its frames under the model's patch geometry."""
    frames, _, height, width = request.frames.shape
    return video_geometry(processor).num_tokens(frames, height, width)


def _batches(items: Sequence[EvalSample], size: int) -> Iterator[Sequence[EvalSample]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def generate_all(pending: Sequence[EvalSample], backend: EvalBackend, writer: PredictionWriter, parser: ParserConfig,
                 args: argparse.Namespace, progress: tqdm, settings: RunSettings) -> int:
    """Generate, grade and append every pending sample; the next batch decodes while this one generates."""
    if settings.search is not None:
        return search_all(pending, backend, writer, parser, args, progress)
    done = 0
    batches = list(_batches(pending, args.batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures: list[Future] = [pool.submit(_prepare, batches[0], backend.processor, settings)]
        for index in range(len(batches)):
            prepared = futures.pop().result()
            if index + 1 < len(batches):
                futures.append(pool.submit(_prepare, batches[index + 1], backend.processor, settings))
            ready = [request for _, request, _ in prepared if request is not None]
            responses = iter(backend.generate(ready) if ready else [])
            for sample, request, error in prepared:
                response = next(responses) if request is not None else None
                seen = {VISUAL_TOKENS: prompt_visual_tokens(request, backend.processor)} if request else None
                writer.write(output_line(sample, response, parser, error, seen))
                done += 1
                progress.update(1)
    return done


def search_all(pending: Sequence[EvalSample], backend: Any, writer: PredictionWriter, parser: ParserConfig,
               args: argparse.Namespace, progress: tqdm) -> int:
    """Answer every pending sample with one trajectory of the search loop (a batch's run concurrently);
    `backend` is a `search_eval.SearchBackend`."""
    for batch in _batches(pending, args.batch_size):
        for sample, result in zip(batch, backend.answer(batch)):
            if isinstance(result, str):
                writer.write(output_line(sample, None, parser, result))
            else:
                writer.write(output_line(sample, result[0].text, parser, trajectory=result[0].fields))
            progress.update(1)
    return len(pending)


def resolve_settings(args: argparse.Namespace) -> tuple[RunSettings, dict[str, Any], ParserConfig, Convention]:
    """The run's (or the YAML's) settings with the explicit flags applied (each difference printed), the flags,
    and the scoring parser and convention."""
    settings = settings_from_args(args, model=args.model)
    print(f"verl-video eval: settings from {settings.source}", file=sys.stderr)
    base_parser = reward_parser(settings.reward)
    convention, parser = scoring_from_args(args, base_parser)
    flags = flag_values(args)
    for line in differences(settings, flags, base_parser, parser):
        print(f"verl-video eval: {line}", file=sys.stderr)
    return apply_flags(settings, flags), flags, parser, convention


def evaluate(args: argparse.Namespace, backend_factory: Callable[[str], EvalBackend] | None = None) -> dict:
    """Run (or resume) an evaluation and write its report; returns the report as JSON."""
    load_modules(args.modules, named_in="--modules")  # a data_config's own `modules:` load with it
    model = resolve_model(args.model)
    settings, flags, parser, convention = resolve_settings(args)
    check_backend(args, settings)
    if not args.data:
        if not settings.val_files:
            raise ValueError("no --data, and the settings name no validation files (data.val_files)")
        args.data = settings.val_files[0]
        print(f"verl-video eval: data {args.data} (data.val_files of the settings)", file=sys.stderr)
    samples = load_eval_set(args.data, args.video_root, settings.video)
    samples = [replace(s, item=force_flags(s.item, flags)) for s in samples]
    if args.limit:
        samples = samples[:args.limit]
    os.makedirs(args.output_dir, exist_ok=True)
    run_file = os.path.join(args.output_dir, RUN_FILE)
    pred_file = os.path.join(args.output_dir, PREDICTIONS_FILE)
    record = run_settings(args, model, samples, parser, settings)
    start_or_resume(run_file, pred_file, record, args.overwrite, check_resumable)
    _write_json(run_file, record)

    finished = _drop_failed(pred_file, recover(pred_file))
    pending = [s for s in samples if s.id not in finished]
    generated, elapsed = 0, 0.0
    if pending:
        backend = (backend_factory or _default_backend(args, settings))(model)
        started = time.perf_counter()  # after loading the model: throughput, not start-up
        progress = tqdm(total=len(samples), initial=len(samples) - len(pending), unit="sample",
                        desc="verl-video eval", dynamic_ncols=True)
        try:
            with PredictionWriter(pred_file) as writer:
                generated = generate_all(pending, backend, writer, parser, args, progress, settings)
        except KeyboardInterrupt:
            progress.close()
            print(f"\ninterrupted; rerun the same command to resume ({pred_file})", file=sys.stderr)
            raise
        progress.close()
        elapsed = time.perf_counter() - started
    report, tasks = score_all(pred_file, convention, parser, args.by, parse_buckets(args.buckets), "response", record)
    show_and_write(report, tasks, args.output_dir, plots=not args.no_plots)
    if generated:
        print(f"generated {generated} samples in {elapsed:.1f} s ({generated / elapsed:.3f} samples/s, "
              "video decoding included, model loading excluded)", file=sys.stderr)
    return {**(report.to_json() if report is not None else {}),
            **({"tasks": {t: e.means for t, e in tasks.items()}} if tasks else {})}


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


def check_backend(args: argparse.Namespace, settings: RunSettings) -> None:
    """Refuse, before any output is written, a backend that cannot run the run's agent loop."""
    if settings.search is not None and args.backend == "vllm":
        raise ValueError(VLLM_UNSUPPORTED)


def _default_backend(args: argparse.Namespace, settings: RunSettings) -> Callable[[str], EvalBackend]:
    """The backend factory the flags and settings ask for (callers have run check_backend)."""
    options = _generation_options(args, settings)
    if args.backend == "vllm":
        return lambda model: make_backend("vllm", model, options, tensor_parallel_size=args.tensor_parallel_size,
                                          gpu_memory_utilization=args.gpu_memory_utilization,
                                          max_model_len=args.max_model_len, dtype=args.dtype or "bfloat16")
    device = args.device if args.device != "auto" else _auto_device()
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if settings.search is not None:  # the run trains through the search loop: its numbers are the loop's
        from verl_video.evaluation.search_eval import SearchBackend, search_config

        return lambda model: SearchBackend(model, options, search_config(settings), device=device, dtype=dtype)
    return lambda model: make_backend("hf", model, options, device=device, dtype=dtype)


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _generation_options(args: argparse.Namespace, settings: RunSettings) -> GenerationOptions:
    return GenerationOptions(max_new_tokens=settings.max_response_length, temperature=args.temperature,
                             top_p=args.top_p, seed=settings.seed)


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
    parser.add_argument("--data", help="data_config YAML, or one annotation file (canonical JSONL, Time-R1, TVGBench, "
                                       "...); default: the settings' data.val_files")
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
    g.add_argument("--template", help="prompt template name or text with {query}, for every dataset; default: the "
                                      "dataset's, else the run's data.video.prompt_template")
    g.add_argument("--max-new-tokens", type=int, help="default: the run's data.max_response_length")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, help="generation seed; default: the run's trainer.seed")
    g.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm backend")
    g.add_argument("--gpu-memory-utilization", type=float, default=0.85, help="vllm backend")
    g.add_argument("--max-model-len", type=int, help="vllm backend")
    v = parser.add_argument_group("video sampling, for every dataset (default: the run's data.video, then the dataset's "
                                  "overrides)")
    v.add_argument("--fps", type=float)
    v.add_argument("--max-frames", type=int)
    v.add_argument("--min-frames", type=int)
    v.add_argument("--total-pixels", type=int)
    v.add_argument("--min-pixels", type=int)
    v.add_argument("--max-pixels", type=int)
    v.add_argument("--decoder", choices=("auto", "decord", "pyav"))
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_settings_arguments(parser, finds_run=True)
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
