"""`verl-video select`: choose the records GRPO trains on.

    verl-video select DATA_CONFIG --model M -k 8 -o OUT          # sample k answers per record, then select
    verl-video select --from-predictions FILE --strategy difficulty -o OUT   # reuse an eval / Time-R1 file
    verl-video select --from-stats OUT/stats.jsonl --strategy variance -p top=500 -o OUT2

With a model, OUT/stats.jsonl gets one line per record (verl_video.selection.stats) as each batch
finishes; rerunning the same command resumes. Then the strategy writes OUT/annotations/, OUT/data_config.yaml
(train on it with `data.train_files=OUT/data_config.yaml`) and a report (verl_video.selection.output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from typing import Any

import yaml
from tqdm import tqdm

from verl_video.pipeline.items import read_data_config
from verl_video.pipeline.run_settings import RunSettings, settings_from_args
from verl_video.evaluation.eval_set import EvalSample, load_eval_set
from verl_video.evaluation.grading import grade_response
from verl_video.evaluation.predictions import PredictionFileError, PredictionWriter, recover, start_or_resume
from verl_video.rewards.registry import load_modules
from verl_video.rewards.scorer import RewardScorer
from verl_video.selection.output import EmptySelection, write_selection
from verl_video.selection.stats import RecordStats, read_stats, stats_from_json, stats_from_predictions
from verl_video.selection.strategies import STRATEGIES, select

STATS_FILE = "stats.jsonl"
RUN_FILE = "select_run.json"


def parse_params(items: list[str]) -> dict[str, Any]:
    """`name=value` strings to strategy keyword arguments (values read as YAML: numbers, null, strings)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {item!r}: expected NAME=VALUE, e.g. mode=linspace or count=2500")
        out[name.strip()] = yaml.safe_load(value)
    return out


def attach_data(stats: list[RecordStats], data: str, source: str, video_root: str | None = None) -> dict:
    """Give each record its data_config record and dataset; ValueError if an id is not in the data."""
    samples = {s.id: s for s in load_eval_set(data, video_root)}
    missing = [s for s in stats if s.id not in samples]
    if missing:
        first = missing[0]
        raise ValueError(f"{first.where or source}: id {first.id!r} is not in {data} ({len(missing)} of {len(stats)} "
                         f"ids do not match; e.g. the data has {next(iter(samples))!r}): the predictions were "
                         "made on other data")
    for s in stats:
        sample = samples[s.id]
        s.record, s.dataset = {**sample.record.to_json(), "id": sample.record.id}, sample.dataset
    return {entry.name: entry for entry in read_data_config(data, video_root).datasets}


def record_stats(sample: EvalSample, sampled: list[str], greedy: str | None, scorer: RewardScorer,
                 style: str | None, trajectories: list[dict] | None = None) -> RecordStats:
    """Score every answer with the training reward; IoU against the best window as evaluation grades it.
    `trajectories`: the search loop's facts of each answer (sampled, then greedy), kept in the line."""
    record = sample.record
    truth = {"timestamps": record.timestamps, "duration": record.duration}
    info = {"task": record.task, "duration": record.duration, "answer_style": style, "id": record.id}
    scores = [scorer(sample.dataset, text, truth, info) for text in sampled]
    grade = grade_response(greedy, record.timestamps, record.duration) if greedy is not None else None
    return RecordStats(id=sample.id, record={**record.to_json(), "id": record.id}, dataset=sample.dataset,
                       ious=[float(s["iou"]) for s in scores], rewards=[float(s["score"]) for s in scores],
                       greedy_iou=grade.iou if grade else None, greedy_parsed=grade.parsed if grade else None,
                       parse_failures=sum(1 for s in scores if not s["parse_ok"]),
                       extra={"answers": sampled, "greedy": greedy,
                              **({"trajectories": trajectories} if trajectories is not None else {})})


def run_settings(args: argparse.Namespace, run: RunSettings, samples: list[EvalSample]) -> dict:
    """What determines the answers and their scores; a resumed run must match it."""
    keys = ("video_root", "model", "k", "seed", "temperature", "greedy", "reward_preset", "template", "think",
            "max_new_tokens", "top_p", "backend", "decoder", "fps", "max_frames", "min_frames", "total_pixels",
            "min_pixels", "max_pixels")
    # The flags alone miss what --set / --run change (seed, video budget, template, response length).
    resolved = {**run.values(), "reward": run.reward, **({"search": run.search} if run.search else {}),
                "datasets": {s.dataset: {"template": s.item.template, **asdict(s.item.video.budget)} for s in samples}}
    return {"data": os.path.abspath(args.data), **{k: getattr(args, k, None) for k in keys},
            "resolved": json.loads(json.dumps(resolved))}


def sample_stats(args: argparse.Namespace, backend_factory=None) -> list[RecordStats]:
    """Run (or resume) k answers per record into OUT/stats.jsonl; returns every record's statistics."""
    from verl_video.evaluation import run_eval
    from verl_video.evaluation.checkpoint import resolve_model
    from verl_video.selection.rollouts import answer_style, generate_answers

    model = resolve_model(args.model)
    # The run's (or the YAML's) settings with select's explicit flags, exactly as `eval` resolves them.
    flags = run_eval.flag_values(args)
    run = run_eval.apply_flags(settings_from_args(args, model=args.model), flags)
    run_eval.check_backend(args, run)
    samples = [replace(s, item=run_eval.force_flags(s.item, flags))
               for s in load_eval_set(args.data, args.video_root, run.video)]
    settings = run_settings(args, run, samples)
    if args.limit:
        samples = samples[:args.limit]
    os.makedirs(args.output_dir, exist_ok=True)
    stats_file, run_file = os.path.join(args.output_dir, STATS_FILE), os.path.join(args.output_dir, RUN_FILE)
    start_or_resume(run_file, stats_file, settings, args.overwrite, run_eval.check_resumable)
    with open(run_file, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)
    done = recover(stats_file)
    pending = [s for s in samples if s.id not in done]
    scorer = RewardScorer.from_kwargs({"preset": args.reward_preset} if args.reward_preset else {})
    if pending:
        backend = (backend_factory or run_eval._default_backend(args, run))(model)
        started, answers = time.perf_counter(), 0
        progress = tqdm(total=len(samples), initial=len(samples) - len(pending), unit="record",
                        desc="verl-video select", dynamic_ncols=True)
        failed = 0
        with PredictionWriter(stats_file) as writer:
            for start in range(0, len(pending), args.batch_size):
                batch = pending[start:start + args.batch_size]
                for result in generate_answers(batch, backend, run, args.k, run.seed, args.temperature,
                                               greedy=args.greedy):
                    if result.error:
                        failed += 1
                        print(f"verl-video select: {result.sample.record.origin}: video not decoded, record left "
                              f"out (rerun to retry): {result.error}", file=sys.stderr)
                    else:
                        writer.write(record_stats(result.sample, result.sampled, result.greedy, scorer,
                                                  answer_style(result.sample), result.trajectories).to_json())
                        answers += len(result.sampled) + int(result.greedy is not None)
                    progress.update(1)
        progress.close()
        elapsed = time.perf_counter() - started
        generated = len(pending) - failed
        print(f"select: {generated} records, {answers} answers in {elapsed:.1f} s ({generated / elapsed:.3f} "
              f"records/s, {answers / elapsed:.2f} answers/s; video decoding included, model loading excluded)",
              file=sys.stderr)
    return [stats_from_json(obj, f"{STATS_FILE}:{obj.get('id')}") for obj in recover(stats_file).values()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video select`."""
    from verl_video.selection.rollouts import add_generation_arguments

    parser.add_argument("data", nargs="?", help="data_config YAML (or annotation file) whose records are selected; "
                                                "with --from-predictions/--from-stats: check ids against it and "
                                                "take the records from it")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="sample k answers per record with this model (HF folder or checkpoint)")
    source.add_argument("--from-predictions", metavar="FILE",
                        help="an eval/score predictions JSONL, or Time-R1's annotation JSON with a `pred` field")
    source.add_argument("--from-stats", metavar="FILE", help="a stats.jsonl written by an earlier select run")
    parser.add_argument("--output-dir", "-o", required=True, help="output folder (with --model: rerun to resume)")
    parser.add_argument("--strategy", help="difficulty (Time-R1), variance (Temporal-R1) or a registered name; "
                                           "default: variance when there are k >= 2 answers, else difficulty")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                        help="strategy parameter (repeatable): difficulty low, high, mode=all|linspace|gaussian, "
                             "count, mu, sigma, seed; variance threshold, top")
    parser.add_argument("--data-folder", help="videos folder of the written data_config when the records come from "
                                              "a predictions file (default: that file's folder)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG histogram")
    g = parser.add_argument_group("sampling (with --model)")
    g.add_argument("-k", type=int, default=8, help="answers per record (default 8, GRPO's group size)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0, as training)")
    g.add_argument("--no-greedy", dest="greedy", action="store_false",
                   help="skip the extra greedy answer per record (difficulty then uses the mean IoU)")
    g.add_argument("--reward-preset", help="reward preset scoring the answers (default: training's default)")
    g.add_argument("--limit", type=int, help="only the first N records")
    g.add_argument("--overwrite", action="store_true", help="discard OUT/stats.jsonl instead of resuming")
    add_generation_arguments(parser)


def _load_stats(args: argparse.Namespace, backend_factory=None) -> tuple[list[RecordStats], str]:
    if args.model:
        if not args.data:
            raise ValueError("--model needs DATA_CONFIG: the records to run the model on")
        if args.k < 1:
            raise ValueError("-k must be at least 1")
        return sample_stats(args, backend_factory), os.path.abspath(args.data)
    if args.from_stats:
        return read_stats(args.from_stats), args.from_stats
    return stats_from_predictions(args.from_predictions), args.from_predictions


def run(args: argparse.Namespace, backend_factory=None) -> int:
    """Entry point of `verl-video select`."""
    try:
        load_modules(args.modules, named_in="--modules")
        stats, source = _load_stats(args, backend_factory)
        entries = {}
        if args.model:
            entries = {e.name: e for e in read_data_config(args.data, args.video_root).datasets}
        elif args.data:
            entries = attach_data(stats, args.data, source, args.video_root)
        strategy = args.strategy or ("variance" if all(s.answers >= 2 for s in stats) else "difficulty")
        if strategy not in STRATEGIES:
            select(stats, strategy)  # raises the error listing the registered names
        params = parse_params(args.param)
        unparsed = sum(s.all_unparsed for s in stats)
        if unparsed:
            print(f"select: {unparsed} of {len(stats)} records have no parseable answer at all", file=sys.stderr)
        selection = select(stats, strategy, **params)
        counts = selection.counts()
        print(f"select ({strategy}) on {len(stats)} records: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        written = write_selection(selection, stats, args.output_dir, strategy=strategy, params=params, source=source,
                                  entries=entries, data_folder=args.data_folder, plots=not args.no_plots)
    except EmptySelection as exc:
        print(f"verl-video select: {exc}", file=sys.stderr)
        return 1
    except (ValueError, PredictionFileError, FileNotFoundError, OSError, RuntimeError) as exc:
        print(f"verl-video select: {exc}", file=sys.stderr)
        return 2
    except TypeError as exc:  # a parameter the strategy does not take
        print(f"verl-video select: strategy parameters: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
