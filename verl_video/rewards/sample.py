"""One row to score: the response plus what verl's row says about the expected answer.

Reading is tolerant because rows come from several converters and from parquet (lists become numpy
arrays): the ground truth may be `{"timestamps": [[s, e], ...], "duration": T}`, a bare `[s, e]` or
`[[s, e], ...]`, a string such as "12.5-17.8", or for other tasks `{"answer": "B"}` / `{"boxes": [...]}`.
The duration comes from the ground truth, else from `extra_info["duration"]`. What the prompt asked for
(`extra_info["think"]`, `extra_info["answer_style"]`) comes with the row: the data pipeline writes it,
so rewards never look up prompt templates (they sit below the data layer).
Parsed values are cached, so several reward components share one parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .boxes import box_iou, parse_boxes
from .iou import Interval, as_interval
from .parser import DEFAULT_CONFIG, ParseResult, ParserConfig, as_duration, find_pairs, parse_interval, parse_intervals

_WINDOW_KEYS = ("timestamps", "timestamp", "windows", "window", "solution")


class lazy:  # noqa: N801  (reads like the decorator it replaces)
    """`functools.cached_property` without its per-access lock on Python 3.11 (3x faster; rows are scored
    in one thread)."""

    def __init__(self, fn):
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)  # later reads hit the instance dict directly
        return value


@dataclass
class Sample:
    """A response with its ground truth and row info; properties parse lazily, once."""

    response: str
    ground_truth: Any = None
    extra_info: Mapping = field(default_factory=dict)
    data_source: str = ""
    parser_config: ParserConfig = DEFAULT_CONFIG

    def __post_init__(self) -> None:
        if not isinstance(self.response, str):
            self.response = "" if self.response is None else str(self.response)
        if type(self.extra_info) is not dict and not isinstance(self.extra_info, Mapping):  # dict: skip the ABC check
            self.extra_info = {}
        if _truthy(self.extra_info.get("answer_normalized")):
            self.parser_config = replace(self.parser_config, normalized=True)

    @lazy
    def truth(self) -> Mapping:
        """The ground truth as a mapping (a bare list or string becomes its `timestamps` or `answer`)."""
        gt = self.ground_truth
        if isinstance(gt, Mapping):
            return gt
        if gt is None:
            return {}
        if isinstance(gt, str) and not find_pairs(gt):
            return {"answer": gt}
        if _looks_like_boxes(gt):
            return {"boxes": gt}
        return {"timestamps": gt}

    @lazy
    def answer_kind(self) -> str:
        """What the main answer holds: "interval" (default), "choice" or "boxes" (set by the row's task)."""
        kind = self.truth.get("answer_kind")
        if kind:
            return str(kind)
        if self.truth.get("boxes") is not None:
            return "boxes"
        return "choice" if self.truth.get("answer") is not None else "interval"

    @lazy
    def task(self) -> str:
        """"tvg" (default), "mcq", "grounded_qa" or "tracking"."""
        return row_task(self.ground_truth, self.extra_info)

    @lazy
    def duration(self) -> float | None:
        """Video duration in seconds, or None when the row does not give a usable one."""
        duration = as_duration(self.truth.get("duration"))
        return duration if duration is not None else as_duration(self.extra_info.get("duration"))

    @lazy
    def windows(self) -> list[Interval]:
        """Ground-truth intervals in seconds (one or more)."""
        for key in _WINDOW_KEYS:
            if self.truth.get(key) is not None:
                return read_windows(self.truth[key])
        return []

    @lazy
    def parse(self) -> ParseResult:
        """The predicted interval and its parse status."""
        return parse_interval(self.response, self.duration, self.parser_config)

    @lazy
    def intervals(self) -> list[Interval]:
        """Every predicted interval, for multi-segment answers."""
        return [r.interval for r in parse_intervals(self.response, self.duration, self.parser_config) if r.interval]

    @lazy
    def predicted_boxes(self) -> list:
        """Every `[x0, y0, x1, y1]` of the last answer block (tracking answers), read once."""
        return parse_boxes(self.response)

    @lazy
    def truth_boxes(self) -> list:
        """The ground-truth boxes, one per asked frame (empty when the row has none)."""
        boxes = self.truth.get("boxes")
        return list(boxes) if boxes is not None and not isinstance(boxes, (str, bytes)) else []

    @lazy
    def box_ious(self) -> list[float]:
        """IoU of each predicted box with the ground-truth box of the same frame (pairs in order), computed once."""
        return [box_iou(pred, gt) for pred, gt in zip(self.predicted_boxes, self.truth_boxes)]

    @lazy
    def think(self) -> bool:
        """Whether the row's prompt asks for a <think> block first (`extra_info["think"]`; default yes)."""
        value = self.extra_info.get("think")
        return True if value is None else _truthy(value)

    @lazy
    def answer_style(self) -> str:
        """"interval" (default) or "json": the answer form the row's prompt asks for (`extra_info["answer_style"]`)."""
        return str(self.extra_info.get("answer_style") or "interval")


def row_task(ground_truth: Any, extra_info: Any) -> str:
    """The row's task: `extra_info["task"]`, else `ground_truth["task"]`, else "tvg"."""
    task = extra_info.get("task") if isinstance(extra_info, Mapping) else None
    if task is None and isinstance(ground_truth, Mapping):
        task = ground_truth.get("task")
    return str(task) if task else "tvg"


def read_windows(value: Any) -> list[Interval]:
    """Intervals from a bare `[s, e]`, a list of pairs (lists or numpy arrays) or a text like "12.5-17.8"."""
    if isinstance(value, str):
        return [w for w in map(as_interval, find_pairs(value)) if w]
    try:
        first = value[0]
    except (TypeError, IndexError, KeyError):
        return []
    if isinstance(first, (str, bytes)) or not hasattr(first, "__len__"):  # a bare [s, e]: numbers, numpy scalars
        single = as_interval(value)
        return [single] if single else []
    try:
        return [w for w in map(as_interval, value) if w]
    except TypeError:
        return []


def _looks_like_boxes(value: Any) -> bool:
    # A bare list of [x0, y0, x1, y1] (lists or numpy rows), never a bare [s, e] or a list of pairs.
    try:
        return len(value[0]) == 4 and not isinstance(value[0], (str, bytes))
    except (TypeError, IndexError, KeyError):
        return False


def _truthy(value: Any) -> bool:
    # True, numpy.True_, 1, "true", "yes" (parquet and YAML spell booleans differently).
    return value is not None and str(value).strip().lower() in ("1", "true", "yes")
