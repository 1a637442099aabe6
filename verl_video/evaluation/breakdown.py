"""Breakdowns: the same metrics per source dataset, per numeric bucket, or per value of any field.

Built-in dimensions (the first ground-truth window stands for the moment when there are several):
    source            the line's `source` field
    duration          video duration, seconds
    moment_length     moment length as a percentage of the video
    moment_position   moment centre as a percentage of the video
Any other name is read from the line (`qsemtype`, or a dotted path such as `bins.qlen`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from verl_video.evaluation.grading import Grade
from verl_video.grounding_metrics import Convention, summarize
from verl_video.evaluation.predictions import PredictionLine

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Buckets:
    """Half-open numeric intervals [e_i, e_i+1) (the last one closed) with readable labels."""

    edges: tuple[float, ...]
    unit: str = ""

    def __post_init__(self) -> None:
        if len(self.edges) < 2 or any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"bucket edges must be at least two increasing numbers, got {self.edges!r}")

    def labels(self) -> list[str]:
        """Every label, in increasing order."""
        return [self._label(a, b) for a, b in zip(self.edges, self.edges[1:])]

    def label(self, value: float | None) -> str:
        """The bucket of one value; values beyond the outer edges join the outer buckets."""
        if value is None or not math.isfinite(value):
            return UNKNOWN
        inner = self.edges[1:-1]
        index = sum(1 for edge in inner if value >= edge)
        return self.labels()[index]

    def _label(self, low: float, high: float) -> str:
        if math.isinf(high):
            return f">={low:.3g}{self.unit}"
        return f"{low:.3g}-{high:.3g}{self.unit}"


@dataclass(frozen=True)
class Dimension:
    """A named way to assign each sample a group label; `order` lists the labels in display order."""

    name: str
    value: Callable[[PredictionLine], str]
    order: tuple[str, ...] = ()


def _first_window(line: PredictionLine) -> tuple[float, float]:
    return line.timestamps[0][0], line.timestamps[0][1]


def _fraction(line: PredictionLine, what: str) -> float | None:
    if line.duration is None:
        return None
    start, end = _first_window(line)
    return 100.0 * ((end - start) if what == "length" else (start + end) / 2.0) / line.duration


def field_value(fields: dict, path: str) -> str:
    """A line's field (dotted path into nested objects) as a group label."""
    value: object = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return UNKNOWN
        value = value[part]
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def numeric_dimension(name: str, buckets: Buckets, value: Callable[[PredictionLine], float | None]) -> Dimension:
    """A dimension that buckets a number computed from each line."""
    return Dimension(name, lambda line: buckets.label(value(line)), tuple(buckets.labels()) + (UNKNOWN,))


DEFAULT_BUCKETS: dict[str, Buckets] = {
    "duration": Buckets((0, 30, 60, 120, 300, math.inf), "s"),
    "moment_length": Buckets((0, 10, 20, 40, math.inf), "%"),
    "moment_position": Buckets((0, 100 / 3, 200 / 3, math.inf), "%"),
}
_NUMERIC = {
    "duration": lambda line: line.duration,
    "moment_length": lambda line: _fraction(line, "length"),
    "moment_position": lambda line: _fraction(line, "centre"),
}
BUILTIN_DIMENSIONS = ("source", "duration", "moment_length", "moment_position")


def make_dimensions(fields: Sequence[str] = (), buckets: dict[str, Buckets] | None = None) -> list[Dimension]:
    """The built-in dimensions plus one per named field; `buckets` overrides the default edges."""
    edges = {**DEFAULT_BUCKETS, **(buckets or {})}
    unknown = set(edges) - set(_NUMERIC)
    if unknown:
        raise ValueError(f"no numeric dimension named {sorted(unknown)}; bucketable: {sorted(_NUMERIC)}")
    dims = [Dimension("source", lambda line: field_value(line.fields, "source"))]
    dims += [numeric_dimension(name, edges[name], _NUMERIC[name]) for name in BUILTIN_DIMENSIONS[1:]]
    for name in fields:
        if name not in BUILTIN_DIMENSIONS:
            dims.append(Dimension(name, lambda line, path=name: field_value(line.fields, path)))
    return dims


def breakdown(lines: Sequence[PredictionLine], grades: Sequence[Grade], dimension: Dimension,
              convention: Convention) -> dict[str, dict]:
    """Metrics per label of one dimension, labels in display order (empty buckets left out)."""
    groups: dict[str, list[Grade]] = {}
    for line, grade in zip(lines, grades):
        groups.setdefault(dimension.value(line), []).append(grade)
    rank = {label: i for i, label in enumerate(dimension.order)}
    ordered = sorted(groups, key=lambda label: (rank.get(label, len(rank)), label))
    return {label: summarize([g.iou for g in groups[label]], [g.parsed for g in groups[label]], convention)
            for label in ordered}
