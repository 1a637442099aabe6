"""Spatial boxes for tracking (VideoChat-R1): box IoU and mean box IoU over frames.

A box is `[x0, y0, x1, y1]` (any consistent unit, e.g. normalised); corners are ordered before use.
The answer holds one box per frame: `<answer>[[x0, y0, x1, y1], ...]</answer>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .iou import as_interval, clamp_unit
from .parser import NUMBER, answer_block

_BOX_RE = re.compile(rf"\[\s*({NUMBER})\s*,\s*({NUMBER})\s*,\s*({NUMBER})\s*,\s*({NUMBER})\s*\]")

Box = tuple[float, float, float, float]


def parse_boxes(text: str) -> list[Box]:
    """Every `[x0, y0, x1, y1]` in the last answer block, in order (empty when there is none)."""
    content = answer_block(text) if isinstance(text, str) else None
    return [] if content is None else read_boxes(content)


def read_boxes(content: str) -> list[Box]:
    """Every `[x0, y0, x1, y1]` in an answer's content (no tag handling), in order."""
    return [tuple(float(v) for v in m.groups()) for m in _BOX_RE.finditer(content)]  # type: ignore[misc]


def box_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two boxes in [0, 1]; 0 for a malformed box, 1 for two identical zero-area boxes."""
    try:
        xs_a, ys_a = as_interval((pred[0], pred[2])), as_interval((pred[1], pred[3]))
        xs_b, ys_b = as_interval((gt[0], gt[2])), as_interval((gt[1], gt[3]))
    except (TypeError, IndexError, KeyError):
        return 0.0
    if None in (xs_a, ys_a, xs_b, ys_b):
        return 0.0
    inter = _overlap_length(xs_a, xs_b) * _overlap_length(ys_a, ys_b)
    union = _area(xs_a, ys_a) + _area(xs_b, ys_b) - inter
    if union <= 0:
        return 1.0 if (xs_a, ys_a) == (xs_b, ys_b) else 0.0
    return clamp_unit(inter / union)


def _overlap_length(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _area(xs: tuple[float, float], ys: tuple[float, float]) -> float:
    return (xs[1] - xs[0]) * (ys[1] - ys[0])


def mean_box_iou(preds: Sequence[Sequence[float]], gts: Sequence[Sequence[float]], exact: bool = False) -> float:
    """Mean IoU over ground-truth frames; a missing predicted frame scores 0, extra ones are ignored.

    `exact=True` is VideoChat-R1's rule: 0 unless there is exactly one predicted box per frame.
    """
    if len(gts) == 0 or (exact and len(preds) != len(gts)):
        return 0.0
    return sum(box_iou(pred, gt) for pred, gt in zip(preds, gts)) / len(gts)
