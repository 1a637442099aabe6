"""`verl-video score PRED.jsonl`: grounding metrics from anyone's per-sample predictions file.

The line format is documented in `verl_video.evaluation.predictions`. Flags reproduce the other
published conventions (strict `>`, first match, dropping failures) and are printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from verl_video.evaluation.breakdown import Buckets, break_down, make_dimensions
from verl_video.evaluation.grading import Grade, grade_prediction, grade_response
from verl_video.rewards.grounding_metrics import DEFAULT_THRESHOLDS, Convention, summarize
from verl_video.evaluation.predictions import VISUAL_TOKENS, PredictionFileError, PredictionLine, read_predictions
from verl_video.evaluation.report import ScoreReport
from verl_video.evaluation.task_scores import TaskScores, score_task_lines, task_scores_markdown, write_task_scores
from verl_video.rewards.parser import DEFAULT_CONFIG, ParserConfig
from verl_video.rewards.registry import load_modules
from verl_video.rewards.scorer import RewardScorer
from verl_video.annotations.data_config import data_config_modules

PREFER = ("response", "prediction")
ERROR = "error"


def _count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for text in f if text.strip())


def grade_line(line: PredictionLine, parser: ParserConfig, prefer: str = "response") -> Grade:
    """Grade one line: its response through our parser, or its given prediction (see `prefer`)."""
    if line.response is None and line.fields.get("error"):
        return Grade(None, ERROR, 0.0)  # no response ever existed (e.g. the video did not decode)
    use_response = line.has_response and (prefer == "response" or not line.has_prediction)
    if use_response:
        return grade_response(line.response, line.timestamps, line.duration, parser)
    return grade_prediction(line.prediction, line.timestamps, parser)


def score_lines(lines: Sequence[PredictionLine], source: str, convention: Convention, parser: ParserConfig,
                fields: Sequence[str] = (), buckets: dict[str, Buckets] | None = None, prefer: str = "response",
                settings: dict | None = None) -> ScoreReport:
    """Grade every line and compute the overall metrics and every breakdown."""
    grades = [grade_line(line, parser, prefer) for line in lines]
    ious, parsed = [g.iou for g in grades], [g.parsed for g in grades]

    def summarize_group(pairs: list[tuple[PredictionLine, Grade]]) -> dict:
        return summarize([g.iou for _, g in pairs], [g.parsed for _, g in pairs], convention)

    breakdowns = break_down(list(zip(lines, grades)), lambda pair: pair[0].fields, summarize_group,
                            make_dimensions(fields, buckets), fields)
    return ScoreReport(source=source, convention=convention, parser=parser,
                       overall=summarize(ious, parsed, convention), breakdowns=breakdowns,
                       statuses=Counter(g.status for g in grades), prefer=prefer, settings=settings or {},
                       ious=ious, parsed=parsed, trajectory=trajectory_metrics([line.fields for line in lines]))


def trajectory_metrics(fields: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """What the answers saw, averaged over the lines that record it: `visual_tokens_per_answer`, and the
    `zoom/*` means of a search eval's lines (the trainer's own `zoom_trajectory_metrics`)."""
    counts = [f[VISUAL_TOKENS] for f in fields if isinstance(f.get(VISUAL_TOKENS), int | float)]
    metrics = {"visual_tokens_per_answer": sum(counts) / len(counts)} if counts else {}
    if any(key.startswith("zoom_") for f in fields for key in f):
        # Imported only for a search eval's lines: it brings verl, which plain scoring does without.
        from verl_video.verl_adapter.step_metrics import zoom_trajectory_metrics

        metrics.update(zoom_trajectory_metrics(list(fields)))
    return metrics


def score_file(path: str, convention: Convention, parser: ParserConfig, fields: Sequence[str] = (),
               buckets: dict[str, Buckets] | None = None, prefer: str = "response",
               settings: dict | None = None) -> ScoreReport:
    """Read and score a predictions JSONL file."""
    return score_lines(read_predictions(path), path, convention, parser, fields, buckets, prefer, settings)


# ---------------------------------------------------------------- command line (shared with `eval`)

def add_modules_argument(parser: argparse.ArgumentParser) -> None:
    """`--modules FILE.py` (repeatable): user files that register tasks, rewards, presets or strategies."""
    parser.add_argument("--modules", action="append", default=[], metavar="FILE.py",
                        help="a file (or module) registering your tasks, rewards, presets or strategies (repeatable); "
                             "a data_config's own `modules:` load without it")


def load_prediction_modules(predictions: str, modules: Sequence[str]) -> None:
    """Import `--modules`, and the data_config `modules:` of the eval run that wrote `predictions` (its run.json)."""
    load_modules(modules, named_in="--modules")
    run_file = os.path.join(os.path.dirname(os.path.abspath(predictions)), "run.json")
    if os.path.isfile(run_file):
        with open(run_file, encoding="utf-8") as f:
            data_config_modules(json.load(f).get("data"))


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags choosing the scoring convention, the parser settings and the breakdowns, and `--modules`."""
    add_modules_argument(parser)
    g = parser.add_argument_group("scoring conventions (printed with the numbers)")
    g.add_argument("--strict", action="store_true", help="count R1@m with IoU > m (Time-R1's evaluation) instead of >=")
    g.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS), metavar="M",
                   help="IoU thresholds of R1@m (default: 0.3 0.5 0.7)")
    g.add_argument("--drop-unparsed", action="store_true",
                   help="leave unparseable answers out of the denominator (what dropping failed samples does); "
                        "default: they count as IoU 0")
    g.add_argument("--match", choices=("last", "first"),
                   help="which interval when an answer holds several (lmms-eval reads the first; default last)")
    g.add_argument("--fallback", choices=("none", "whole_text"),
                   help="parse the whole response when it has no <answer> block (default: no)")
    g.add_argument("--reversed", choices=("swap", "reject"), help="reversed pairs (default: the rule recorded in the run.json "
                   "`verl-video eval` wrote beside the predictions, else swap)")
    g.add_argument("--no-clip", action="store_true", help="do not clip parsed answers to [0, duration]")
    g.add_argument("--normalized", action="store_true", help="answers are fractions of the video duration")
    b = parser.add_argument_group("breakdowns")
    b.add_argument("--by", action="append", default=[], metavar="FIELD",
                   help="also break down by this field (repeatable; dotted paths reach nested fields, e.g. "
                        "qsemtype, bins.qlen). Always: source, duration, and for grounding moment_length, "
                        "moment_position")
    b.add_argument("--buckets", action="append", default=[], metavar="NAME=E0,E1,...",
                   help="bucket edges of duration (s), moment_length or moment_position (%% of video); "
                        "'inf' allowed, e.g. duration=0,60,180,inf")


def parse_buckets(specs: Sequence[str]) -> dict[str, Buckets]:
    """`NAME=e0,e1,...` strings to bucket definitions."""
    out = {}
    for spec in specs:
        name, sep, edges = spec.partition("=")
        try:
            values = tuple(float(e) for e in edges.split(",")) if sep else ()
            out[name.strip()] = Buckets(values, "s" if name.strip() == "duration" else "%")
        except ValueError as exc:
            raise ValueError(f"--buckets {spec!r}: expected NAME=E0,E1,... with increasing numbers ({exc})") from None
    return out


def scoring_from_args(args: argparse.Namespace, base: ParserConfig = DEFAULT_CONFIG) -> tuple[Convention, ParserConfig]:
    """The convention, and the parser configuration: `base` (e.g. the run's reward preset's) with the flags given."""
    convention = Convention(thresholds=tuple(args.thresholds), strict=args.strict, drop_unparsed=args.drop_unparsed)
    given = {"fallback": args.fallback, "match": args.match, "reversed": args.reversed,
             "clip": False if args.no_clip else None, "normalized": True if args.normalized else None}
    return convention, replace(base, **{name: value for name, value in given.items() if value is not None})


def recorded_parser(predictions: str) -> tuple[ParserConfig, str] | None:
    """The parser `verl-video eval` graded with, from the run.json it wrote beside these predictions, or None."""
    record_path = os.path.join(os.path.dirname(os.path.abspath(predictions)), "run.json")
    try:
        with open(record_path) as f:
            recorded = json.load(f).get("parser")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(recorded, dict):
        return None
    try:
        return ParserConfig(**recorded), record_path
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{record_path}: field 'parser' is not a parser configuration ({exc})") from None


def reward_parser(reward_kwargs: Mapping[str, Any] | None) -> ParserConfig:
    """The parser settings with which the reward (`reward.reward_kwargs`: preset, parser) read TVG answers."""
    # The composite training picked for a grounding row without an entry preset (the scorer's one rule).
    return RewardScorer.from_kwargs(reward_kwargs).composite_for(None, {"task": "tvg"}).parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video score`."""
    parser.add_argument("predictions", help="per-sample JSONL: timestamps + prediction or response per line "
                                            "(format: docs/evaluation.md)")
    parser.add_argument("--output-dir", "-o", help="write metrics.json, metrics.md and PNG plots here")
    parser.add_argument("--prefer", choices=PREFER, default="response",
                        help="which field to grade when a line has both (default: re-parse the response)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_scoring_arguments(parser)


def score_all(path: str, convention: Convention, parser: ParserConfig, fields: Sequence[str] = (),
              buckets: dict[str, Buckets] | None = None, prefer: str = "response",
              settings: dict | None = None) -> tuple[ScoreReport | None, dict[str, TaskScores]]:
    """The grounding report of the file's grounding lines (None when it has none) and each other task's scores."""
    tasks = score_task_lines(path, fields, buckets)
    report = None
    if not tasks or sum(t.count for t in tasks.values()) < _count_lines(path):
        report = score_file(path, convention, parser, fields, buckets, prefer, settings)
    return report, tasks


def show_and_write(report: ScoreReport | None, tasks: dict[str, TaskScores], out_dir: str | None,
                   plots: bool = True) -> list[str]:
    """Print every task's tables (grounding last) and write them into `out_dir` when given; the paths written."""
    if tasks:
        print(task_scores_markdown(tasks))
    if report is not None:
        print(report.to_markdown())
    if not out_dir:
        return []
    paths = write_task_scores(tasks, out_dir, plots=plots) if tasks else []
    return paths + (report.write(out_dir, plots=plots) if report is not None else [])


def _parser_text(parser: ParserConfig) -> str:
    return ", ".join(f"{name}={value}" for name, value in asdict(parser).items())


def run(args: argparse.Namespace) -> int:
    """Score a predictions file, print the markdown report, optionally write it with plots.

    Lines of other tasks (multiple choice, grounded QA, tracking, ...) get one table per task before it.
    """
    try:
        load_prediction_modules(args.predictions, args.modules)
        # One number per predictions file: grade as the eval that wrote it did, unless a flag says otherwise.
        base, origin = recorded_parser(args.predictions) or (DEFAULT_CONFIG, "the defaults")
        convention, parser = scoring_from_args(args, base)
        flagged = "" if parser == base else ", changed by the flags given"
        print(f"verl-video score: parser {_parser_text(parser)} (from {origin}{flagged})", file=sys.stderr)
        report, tasks = score_all(args.predictions, convention, parser, args.by, parse_buckets(args.buckets),
                                  args.prefer)
    except (PredictionFileError, ValueError, OSError) as exc:
        print(f"verl-video score: {exc}", file=sys.stderr)
        return 2
    for path in show_and_write(report, tasks, args.output_dir, plots=not args.no_plots):
        print(f"wrote {path}", file=sys.stderr)
    return 0

