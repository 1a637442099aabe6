"""Record-level checks and their fixes, shared by the validator and the training-time loader.

A record problem names the field and says which fix applies: `clip` (move spans into [0, duration]),
`swap` (reversed start/end), or `drop` (nothing sensible can be done: NaN, zero length, no span left).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from verl_video.annotations.records import Record

# Annotations are rounded to 0.01-0.1 s; an end this close past the duration is not worth reporting.
DURATION_TOLERANCE = 0.05
FIXES = ("clip", "swap", "drop")


@dataclass(frozen=True)
class RecordProblem:
    """One problem of one record."""

    field: str
    problem: str
    fix: str  # which of FIXES repairs it


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def check_record(record: Record) -> list[RecordProblem]:
    """Every problem of `record` that can be seen without opening its video."""
    problems = []
    if not str(record.query).strip():
        problems.append(RecordProblem("query", "empty query", "drop"))
    duration = record.duration
    if duration is not None and (not _finite(duration) or duration <= 0):
        problems.append(RecordProblem("duration", f"duration is {duration}", "drop"))
        duration = None
    if record.video_start is not None and record.video_end is not None and record.video_end <= record.video_start:
        problems.append(
            RecordProblem("video_end", f"clip end {record.video_end} <= clip start {record.video_start}", "drop")
        )
    for i, (start, end) in enumerate(record.timestamps):
        name = f"timestamps[{i}]"
        if not (_finite(start) and _finite(end)):
            problems.append(RecordProblem(name, f"not a finite number: [{start}, {end}]", "drop"))
            continue
        if start > end:
            problems.append(RecordProblem(name, f"start {start} > end {end}", "swap"))
            start, end = end, start
        if end - start <= 0:
            problems.append(RecordProblem(name, f"zero length at {start}", "drop"))
            continue
        if start < 0:
            problems.append(RecordProblem(name, f"start {start} < 0", "clip"))
        if duration is not None and end > duration + DURATION_TOLERANCE:
            problems.append(RecordProblem(name, f"end {end} > duration {duration}", "clip"))
            if start >= duration:
                problems.append(RecordProblem(name, f"starts at {start}, after the video ends ({duration})", "drop"))
    return problems


def fix_record(record: Record, fixes: set[str]) -> tuple[Record | None, list[str]]:
    """Apply the allowed `fixes` to `record`; return the record (None when dropped) and what changed.

    A problem whose fix is not allowed leaves the record unchanged (the validator keeps reporting it).
    """
    problems = check_record(record)
    if not problems:
        return record, []
    if "drop" in fixes and any(p.fix == "drop" for p in problems):
        return None, [f"dropped: {p.field}: {p.problem}" for p in problems if p.fix == "drop"]
    changes = []
    spans = []
    for i, (start, end) in enumerate(record.timestamps):
        new_start, new_end = start, end
        if "swap" in fixes and _finite(start) and _finite(end) and start > end:
            new_start, new_end = end, start
        if "clip" in fixes and _finite(new_start) and _finite(new_end):
            upper = record.duration if _finite(record.duration) and record.duration > 0 else math.inf
            new_start, new_end = max(0.0, min(new_start, upper)), max(0.0, min(new_end, upper))
        if [new_start, new_end] != [start, end]:
            changes.append(f"timestamps[{i}]: [{start}, {end}] -> [{new_start}, {new_end}]")
        spans.append([new_start, new_end])
    return replace(record, timestamps=spans), changes


def training_ready(record: Record) -> tuple[Record | None, list[str]]:
    """The record as training uses it: reversed spans swapped, spans clipped, hopeless records dropped."""
    fixed, changes = fix_record(record, set(FIXES))
    if fixed is not None and check_record(fixed):
        return None, changes + [f"dropped: {p.field}: {p.problem}" for p in check_record(fixed)]
    return fixed, changes
