"""Temporal overlap: IoU in seconds, on normalised time, timestamp-aware IoU, multi-segment IoU.

Every function returns a finite float in [0, 1] and never raises. Shared rules:
- an interval is a pair (start, end); its endpoints are ordered before use (a reversed pair covers the
  same times; rejecting reversed answers is the parser's job, `ParserConfig.reversed`);
- a pair that is not two finite numbers scores 0;
- zero union (both intervals are the same single point): 1.0, since the prediction is exactly the
  ground truth; any other degenerate case has a positive union, so there is no free 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Interval = tuple[float, float]


def as_interval(pair: object) -> Interval | None:
    """(start, end) ordered, as floats, or None when `pair` is not two finite numbers."""
    if type(pair) is tuple and len(pair) == 2 and type(pair[0]) is float and type(pair[1]) is float:
        start, end = pair  # the parser's and read_windows' own output: skip the conversions (hot path)
    elif isinstance(pair, (str, bytes)):
        return None
    else:
        try:
            start, end = float(pair[0]), float(pair[1])  # type: ignore[index]
        except (TypeError, ValueError, OverflowError, IndexError, KeyError):
            return None
    if not (math.isfinite(start) and math.isfinite(end)):
        return None
    return (start, end) if start <= end else (end, start)


def _overlap(a: Interval, b: Interval) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return clamp_unit(inter / union)


def clamp_unit(value: float) -> float:
    """A ratio clamped to [0, 1]; nan (overflowing endpoints) reads as 0."""
    # Huge finite endpoints can overflow to inf/inf = nan: read that as no overlap.
    return min(1.0, value) if value >= 0.0 else 0.0


def temporal_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two intervals in seconds (the seeds' plain IoU); 0 for an invalid pair."""
    a, b = as_interval(pred), as_interval(gt)
    if a is None or b is None:
        return 0.0
    return _overlap(a, b)


def best_iou(pred: Sequence[float], gts: Sequence[Sequence[float]]) -> float:
    """Highest IoU of one prediction against any of several ground-truth windows (0 if none)."""
    return max((temporal_iou(pred, gt) for gt in gts), default=0.0)


def clip_interval(interval: Interval, duration: float) -> Interval:
    """Clip an ordered interval to [0, duration]."""
    return (min(max(interval[0], 0.0), duration), min(max(interval[1], 0.0), duration))


def normalized_iou(pred: Sequence[float], gt: Sequence[float], duration: float | None) -> float:
    """IoU on normalised time (Temporal-R1): both divided by the duration, prediction clipped to [0, 1]."""
    a, b = as_interval(pred), as_interval(gt)
    if a is None or b is None:
        return 0.0
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return _overlap(a, b)
    a = clip_interval((a[0] / duration, a[1] / duration), 1.0)
    return _overlap(a, (b[0] / duration, b[1] / duration))


def timestamp_iou(pred: Sequence[float], gt: Sequence[float], duration: float | None) -> float:
    """Time-R1's IoU * (1 - |gs-ps|/T) * (1 - |ge-pe|/T) on the prediction clipped to [0, T]; in [0, 1].

    Time-R1 does not clip, so a prediction running past the video gets a negative reward there.
    Each penalty factor is floored at 0 (a ground truth itself past T cannot push it negative either).
    Without a usable duration this is plain IoU.
    """
    a, b = as_interval(pred), as_interval(gt)
    if a is None or b is None:
        return 0.0
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return _overlap(a, b)
    a = clip_interval(a, duration)
    start_factor = max(0.0, 1.0 - abs(b[0] - a[0]) / duration)
    end_factor = max(0.0, 1.0 - abs(b[1] - a[1]) / duration)
    return _overlap(a, b) * start_factor * end_factor


def merge_intervals(intervals: Sequence[Sequence[float]]) -> list[Interval]:
    """Union of intervals as sorted, disjoint intervals (invalid pairs dropped)."""
    if len(intervals) == 1:  # the common case (one window, one answer): nothing to merge
        single = as_interval(intervals[0])
        return [single] if single else []
    merged: list[list[float]] = []
    for start, end in sorted(filter(None, map(as_interval, intervals))):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _length(intervals: list[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def multi_iou(preds: Sequence[Sequence[float]], gts: Sequence[Sequence[float]]) -> float:
    """IoU of the merged union of predicted intervals with the merged union of ground-truth intervals."""
    a, b = merge_intervals(preds), merge_intervals(gts)
    if not a or not b:
        return 0.0
    if len(a) == 1 and len(b) == 1:  # two single intervals: their plain IoU, the same number
        return _overlap(a[0], b[0])
    inter, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        inter += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    union = _length(a) + _length(b) - inter
    if union <= 0:
        return 1.0 if a == b else 0.0
    return clamp_unit(inter / union)
