"""Breakdowns: the same metrics per source dataset, per numeric bucket, or per value of any field.

Task-agnostic: a dimension labels a predictions line (its JSON object), and `break_down` groups any per-sample
items by it and summarises each group with the caller's function (grounding: R1@m and mIoU; other tasks: their
own metric means), so one task's numbers never enter another's.

Built-in dimensions (the first ground-truth window stands for the moment when there are several):
    source            the line's `source` field                        } every task
    duration          video duration, seconds                          }
    moment_length     moment length as a percentage of the video       } grounding only
    moment_position   moment centre as a percentage of the video       }
Any other name is read from the line (`qsemtype`, or a dotted path such as `bins.qlen`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from verl_video.annotations.records import RecordError, parse_timestamps

UNKNOWN = "unknown"
Item = TypeVar("Item")
Summary = TypeVar("Summary")


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
    """A named way to assign each line (its JSON object) a group label; `order` lists the labels in display order."""

    name: str
    value: Callable[[Mapping[str, Any]], str]
    order: tuple[str, ...] = ()


def _duration(fields: Mapping[str, Any]) -> float | None:
    # As the predictions reader reads it: a positive finite number (or numeric string), else unknown.
    value = fields.get("duration")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _fraction(fields: Mapping[str, Any], what: str) -> float | None:
    duration = _duration(fields)
    try:
        windows = parse_timestamps(fields.get("timestamps"), "")
    except RecordError:  # a task whose lines carry no moment
        return None
    if duration is None or not windows:
        return None
    start, end = windows[0][0], windows[0][1]
    return 100.0 * ((end - start) if what == "length" else (start + end) / 2.0) / duration


def field_value(fields: Mapping[str, Any], path: str) -> str:
    """A line's field (dotted path into nested objects) as a group label."""
    value: object = fields
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return UNKNOWN
        value = value[part]
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def numeric_dimension(name: str, buckets: Buckets, value: Callable[[Mapping[str, Any]], float | None]) -> Dimension:
    """A dimension that buckets a number computed from each line."""
    return Dimension(name, lambda line: buckets.label(value(line)), tuple(buckets.labels()) + (UNKNOWN,))


DEFAULT_BUCKETS: dict[str, Buckets] = {
    "duration": Buckets((0, 30, 60, 120, 300, math.inf), "s"),
    "moment_length": Buckets((0, 10, 20, 40, math.inf), "%"),
    "moment_position": Buckets((0, 100 / 3, 200 / 3, math.inf), "%"),
}
_NUMERIC = {
    "duration": _duration,
    "moment_length": lambda fields: _fraction(fields, "length"),
    "moment_position": lambda fields: _fraction(fields, "centre"),
}
BUILTIN_DIMENSIONS = ("source", "duration", "moment_length", "moment_position")
# The built-ins every task's lines have; the moment ones describe a grounding window.
ALL_TASK_DIMENSIONS = ("source", "duration")


def make_dimensions(fields: Sequence[str] = (), buckets: dict[str, Buckets] | None = None,
                    builtins: Sequence[str] = BUILTIN_DIMENSIONS) -> list[Dimension]:
    """The built-in dimensions named in `builtins` plus one per named field; `buckets` overrides the default edges."""
    edges = {**DEFAULT_BUCKETS, **(buckets or {})}
    unknown = set(edges) - set(_NUMERIC)
    if unknown:
        raise ValueError(f"no numeric dimension named {sorted(unknown)}; bucketable: {sorted(_NUMERIC)}")
    dims = [Dimension("source", lambda line: field_value(line, "source"))] if "source" in builtins else []
    dims += [numeric_dimension(name, edges[name], _NUMERIC[name])
             for name in BUILTIN_DIMENSIONS[1:] if name in builtins]
    for name in fields:
        if name not in BUILTIN_DIMENSIONS:
            dims.append(Dimension(name, lambda line, path=name: field_value(line, path)))
    return dims


def group(items: Sequence[Item], fields_of: Callable[[Item], Mapping[str, Any]],
          dimension: Dimension) -> dict[str, list[Item]]:
    """The items per label of one dimension, labels in display order (empty buckets left out)."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(dimension.value(fields_of(item)), []).append(item)
    rank = {label: i for i, label in enumerate(dimension.order)}
    ordered = sorted(groups, key=lambda label: (rank.get(label, len(rank)), label))
    return {label: groups[label] for label in ordered}


def break_down(items: Sequence[Item], fields_of: Callable[[Item], Mapping[str, Any]],
               summarize_group: Callable[[list[Item]], Summary], dimensions: Sequence[Dimension],
               named: Sequence[str] = ()) -> dict[str, dict[str, Summary]]:
    """Each dimension's groups, each summarised by `summarize_group`, per dimension name.

    A dimension that no line carries says nothing and is left out; one named in `named` is kept so its absence shows.
    """
    out = {}
    for dim in dimensions:
        groups = group(items, fields_of, dim)
        if list(groups) != [UNKNOWN] or dim.name in named:
            out[dim.name] = {label: summarize_group(members) for label, members in groups.items()}
    return out
