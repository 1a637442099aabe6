"""`verl-video validate CONFIG`: check every record and video of a data_config before a run.

Records: missing fields, numbers that are not numbers, NaN, start > end, zero length, end > duration, and the
fields of each record's task (options and answer, boxes: verl_video/tasks/); an unknown task is a problem too.
Videos (each probed once): exists, header readable, decodes (a few frames across the file), duration
agrees with the annotation, a clip lies inside the file. A header without a duration is not a problem:
the video is measured (as training does) and the report lists how many had to be. Every problem is printed with its file and line
(or JSON key) and field. `--fix clip,swap,drop` writes repaired canonical JSONL files plus a data_config
pointing at them, and a report of every change; the original files are never modified.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field, replace

import yaml
from tqdm import tqdm

from verl_video.annotations.checks import FIXES, check_record, fix_record
from verl_video.annotations.data_config import DataConfig, DataConfigError, DatasetEntry, load_data_config, single_file_config
from verl_video.annotations.formats import read_annotations
from verl_video.video.probe import VideoError, VideoProbe, probe_video
from verl_video.annotations.records import DEFAULT_FRAME_RATE_KEY, Record, RecordError, write_canonical
from verl_video.video.settings import VideoBudget
from verl_video.video.decode import decode_video
from verl_video.tasks import get_task
from verl_video.pipeline.items import check_template

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?|\bnan\b|\binf\b")
# An annotated duration may differ from the file's by this much before it is reported (seconds, fraction).
DURATION_MISMATCH_SECONDS = 1.0
DURATION_MISMATCH_FRACTION = 0.05
# Enough to make every decoder touch the whole file, cheap enough for thousands of videos.
DECODE_CHECK_BUDGET = VideoBudget(fps=2.0, max_frames=8, min_frames=4, total_pixels=4 * 784 * 4, min_pixels=784)


@dataclass(frozen=True)
class Problem:
    """One problem: where (file:line or file[key]), which field, what, and which fix repairs it."""

    where: str
    field: str
    problem: str
    fix: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.problem}" + (f" [fix: {self.fix}]" if self.fix else "")


@dataclass
class VideoCheck:
    """What was learnt about one video file."""

    probe: VideoProbe | None = None
    error: str | None = None


@dataclass
class DatasetReport:
    """Problems and repairs of one dataset."""

    entry: DatasetEntry
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)
    kept: list[Record] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)  # videos whose header had no duration


def check_video(path: str, decode: bool, frame_rate: float | None = None) -> VideoCheck:
    """Probe `path` (and decode a few frames across it when `decode`); a frame folder plays at `frame_rate`."""
    try:
        probe = probe_video(path, frame_rate)
        if decode:
            decode_video(path, DECODE_CHECK_BUDGET, frame_rate=frame_rate)
    except VideoError as exc:
        return VideoCheck(error=str(exc).removeprefix(f"{path}: "))
    return VideoCheck(probe=probe)


def video_problems(record: Record, check: VideoCheck) -> list[Problem]:
    """Problems of `record` that its video reveals."""
    if check.error:
        return [Problem(record.origin, "video", check.error, "drop")]
    task = _task(record)[0]
    seen_by_task = task.video_problems(record, check.probe.num_frames) if task is not None else []
    if seen_by_task:
        return [Problem(record.origin, name, problem, "drop") for name, problem in seen_by_task]
    length = check.probe.duration
    if record.video_end is not None and record.video_end > length + DURATION_MISMATCH_SECONDS:
        return [Problem(record.origin, "video_end", f"clip ends at {record.video_end}, the video at {length:.2f}", "drop")]
    seen = (record.video_end or length) - (record.video_start or 0.0)
    if record.duration is not None and abs(record.duration - seen) > max(
        DURATION_MISMATCH_SECONDS, DURATION_MISMATCH_FRACTION * seen
    ):
        return [Problem(record.origin, "duration", f"annotated {record.duration}, the video shows {seen:.2f} s")]
    return []


def validate(config: DataConfig, fixes: set[str], check_videos: bool = True, decode: bool = True) -> list[DatasetReport]:
    """Check (and with `fixes`, repair) every dataset of `config`."""
    reports = []
    for entry in config.datasets:
        report = DatasetReport(entry)
        read_errors: list[RecordError] = []
        report.records = read_annotations(entry.json_path, entry.format, entry.read_options, on_error=read_errors.append)
        if entry.task:
            report.records = [replace(record, task=entry.task) for record in report.records]
        check_template(entry, report.records)
        for exc in read_errors:
            where, _, message = str(exc).partition(": ")
            report.problems.append(Problem(where, "record", message, "drop"))
            report.changes.append({"where": where, "change": f"dropped unreadable record: {message}"})
        reports.append(report)
    checks = _check_all_videos(reports, decode) if check_videos else {}
    for report in reports:
        _check_records(report, checks, fixes)
        paths = {report.entry.resolve_video(record.video) for record in report.records}
        report.measured = sorted(p for p in paths if checks.get(p) and checks[p].probe and checks[p].probe.measured)
    return reports


def _check_all_videos(reports: list[DatasetReport], decode: bool) -> dict[str, VideoCheck]:
    rates = {r.entry.resolve_video(rec.video): rec.extra.get(DEFAULT_FRAME_RATE_KEY) for r in reports for rec in r.records}
    paths = sorted(rates)
    return {p: check_video(p, decode, rates[p]) for p in tqdm(paths, desc="Checking videos", unit="video", mininterval=1)}


def _task(record: Record) -> tuple:
    """(task, []) for a registered task, else (None, [the problem])."""
    try:
        return get_task(record.task), []
    except ValueError as exc:
        return None, [Problem(record.origin, "task", str(exc), "drop")]


def task_problems(record: Record) -> list[Problem]:
    """Problems of the record's task fields (or of its task name)."""
    task, problems = _task(record)
    return problems or [Problem(record.origin, name, problem, "drop") for name, problem in task.validate(record)]


def _check_records(report: DatasetReport, checks: dict[str, VideoCheck], fixes: set[str]) -> None:
    for record in report.records:
        check = checks.get(report.entry.resolve_video(record.video))
        if record.duration is None and check and check.probe:
            # Without an annotated duration, end > duration is checked against what the video shows.
            seen = round((record.video_end or check.probe.duration) - (record.video_start or 0.0), 3)
            record = replace(record, duration=seen)
            report.changes.append({"where": record.origin, "id": record.id, "change": f"duration: None -> {seen} (from the video)"})
        from_video = video_problems(record, check) if check else []
        task = _task(record)[0]
        if task is None or "timestamps" in task.fields:  # spans a task does not read are not its problem
            report.problems.extend(Problem(record.origin, p.field, p.problem, p.fix) for p in check_record(record))
        own = task_problems(record)
        report.problems.extend(own)
        report.problems.extend(from_video)
        if "drop" in fixes and own:
            report.changes.append({"where": record.origin, "id": record.id, "change": f"dropped: {own[0].field}: {own[0].problem}"})
            continue
        if "drop" in fixes and any(p.fix == "drop" for p in from_video):
            report.changes.append({"where": record.origin, "id": record.id, "change": f"dropped: {from_video[0].field}: {from_video[0].problem}"})
            continue
        fixed, changes = fix_record(record, fixes)
        report.changes.extend({"where": record.origin, "id": record.id, "change": c} for c in changes)
        if fixed is not None:
            report.kept.append(fixed)


def write_fixed(config: DataConfig, reports: list[DatasetReport], out_dir: str) -> str:
    """Write each dataset's kept records as canonical JSONL, a data_config over them, and changes.jsonl."""
    os.makedirs(out_dir, exist_ok=True)
    datasets = []
    for report in reports:
        jsonl = os.path.join(out_dir, f"{report.entry.name}.jsonl")
        write_canonical(report.kept, jsonl)
        entry = {"name": report.entry.name, "json_path": os.path.abspath(jsonl), "data_folder": report.entry.data_folder, "format": "canonical"}
        for key in ("sampling_strategy", "weight", "task", "prompt_template"):
            if getattr(report.entry, key) not in (None, "all"):
                entry[key] = getattr(report.entry, key)
        datasets.append({**entry, **report.entry.budget_overrides})
    config_path = os.path.join(out_dir, os.path.basename(config.path).rsplit(".", 1)[0] + ".fixed.yaml")
    with open(config_path, "w", encoding="utf-8") as f:
        yaml.safe_dump({**({"seed": config.seed} if config.seed is not None else {}), "datasets": datasets}, f, sort_keys=False)
    with open(os.path.join(out_dir, "changes.jsonl"), "w", encoding="utf-8") as f:
        for report in reports:
            for change in report.changes:
                f.write(json.dumps({"dataset": report.entry.name, **change}, ensure_ascii=False) + "\n")
    return config_path


def print_report(reports: list[DatasetReport], fixes: set[str], show: int | None) -> int:
    """Print the summary and each problem; return how many problems no requested fix repairs."""
    unresolved = 0
    for report in reports:
        videos = len({report.entry.resolve_video(r.video) for r in report.records})
        kinds = Counter(f"{p.field.split('[')[0]}: {_NUMBER.sub('#', p.problem)}" for p in report.problems)
        print(f"{report.entry.name}: {len(report.records)} records, {videos} videos, {len(report.problems)} problems")
        for kind, count in kinds.most_common(10):
            print(f"    {count:6d}  {kind}")
        if report.measured:
            print(
                f"    {len(report.measured)} videos have no duration in their header; measured from their last "
                f"frame (training does the same), e.g. {report.measured[0]}"
            )
        if fixes:
            print(f"    fixed ({','.join(sorted(fixes))}): kept {len(report.kept)} records, {len(report.changes)} changes")
        unresolved += sum(p.fix not in fixes for p in report.problems)
    problems = [p for report in reports for p in report.problems]
    if problems:
        print("problems:")
        for problem in problems[:show]:
            print(f"  {problem}")
        if show is not None and len(problems) > show:
            print(f"  ... {len(problems) - show} more (use --show-all)")
    return unresolved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video validate`."""
    parser.add_argument("config", help="data_config YAML, or one annotation file")
    parser.add_argument("--data-folder", help="video folder for a bare annotation file (default: its folder)")
    parser.add_argument("--fix", default="", help=f"comma-separated repairs to apply: {', '.join(FIXES)}")
    parser.add_argument("--out", help="folder for the repaired JSONL, data_config and changes.jsonl (with --fix)")
    parser.add_argument("--no-videos", action="store_true", help="check records only (no video is opened)")
    parser.add_argument("--no-decode", action="store_true", help="probe video headers but decode nothing")
    parser.add_argument("--show-all", action="store_true", help="print every problem (default: the first 200)")


def run(args: argparse.Namespace) -> int:
    """Validate; exit 0 when no problem is left unrepaired, 1 otherwise, 2 on a bad config."""
    fixes = {f.strip() for f in args.fix.split(",") if f.strip()}
    if fixes - set(FIXES):
        print(f"verl-video validate: unknown fix {sorted(fixes - set(FIXES))}; choose from {', '.join(FIXES)}", file=sys.stderr)
        return 2
    try:
        config = (
            load_data_config(args.config)
            if args.config.endswith((".yaml", ".yml"))
            else single_file_config(args.config, args.data_folder)
        )
        reports = validate(config, fixes, check_videos=not args.no_videos, decode=not args.no_decode)
    except (DataConfigError, RecordError) as exc:
        print(f"verl-video validate: {exc}", file=sys.stderr)
        return 2
    unresolved = print_report(reports, fixes, None if args.show_all else 200)
    if fixes:
        out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.config)), "validated")
        config_path = write_fixed(config, reports, out)
        print(f"wrote repaired data to {out} (data_config {config_path}, every change in changes.jsonl)")
    print("OK" if unresolved == 0 else f"{unresolved} problems left")
    return 0 if unresolved == 0 else 1
