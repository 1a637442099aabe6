"""Spatial boxes for tracking (VideoChat-R1): box IoU and mean box IoU over frames.

A box is `[x0, y0, x1, y1]` (any consistent unit, e.g. normalised); corners are ordered before use.
The answer holds one box per frame: `<answer>[[x0, y0, x1, y1], ...]</answer>`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .iou import clamp_unit
from .parser import answer_block

# NUMBER with possessive quantifiers (the same matches, no backtracking into a number: 1.5x faster on box lists).
_NUMBER = r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+"
_BOX_RE = re.compile(rf"\[\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+\]")

Box = tuple[float, float, float, float]


def parse_boxes(text: str) -> list[Box]:
    """Every `[x0, y0, x1, y1]` in the last answer block, in order (empty when there is none)."""
    content = answer_block(text) if isinstance(text, str) else None
    return [] if content is None else read_boxes(content)


def read_boxes(content: str) -> list[Box]:
    """Every `[x0, y0, x1, y1]` in an answer's content (no tag handling), in order."""
    return [tuple(map(float, groups)) for groups in _BOX_RE.findall(content)]  # type: ignore[misc]


def box_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two boxes in [0, 1]; 0 for a malformed box, 1 for two identical zero-area boxes."""
    try:
        ax0, ay0, ax1, ay1 = map(float, pred)
        bx0, by0, bx1, by1 = map(float, gt)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    isfinite = math.isfinite
    if not (isfinite(ax0) and isfinite(ay0) and isfinite(ax1) and isfinite(ay1)
            and isfinite(bx0) and isfinite(by0) and isfinite(bx1) and isfinite(by1)):  # fmt: skip
        return 0.0
    # Corners in either order describe the same box.
    if ax0 > ax1:
        ax0, ax1 = ax1, ax0
    if ay0 > ay1:
        ay0, ay1 = ay1, ay0
    if bx0 > bx1:
        bx0, bx1 = bx1, bx0
    if by0 > by1:
        by0, by1 = by1, by0
    w = (ax1 if ax1 < bx1 else bx1) - (ax0 if ax0 > bx0 else bx0)
    h = (ay1 if ay1 < by1 else by1) - (ay0 if ay0 > by0 else by0)
    inter = w * h if w > 0.0 and h > 0.0 else 0.0
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    if union <= 0:
        return 1.0 if (ax0, ay0, ax1, ay1) == (bx0, by0, bx1, by1) else 0.0
    return clamp_unit(inter / union)


def mean_box_iou(preds: Sequence[Sequence[float]], gts: Sequence[Sequence[float]], exact: bool = False) -> float:
    """Mean IoU over ground-truth frames; a missing predicted frame scores 0, extra ones are ignored.

    `exact=True` is VideoChat-R1's rule: 0 unless there is exactly one predicted box per frame.
    """
    if len(gts) == 0 or (exact and len(preds) != len(gts)):
        return 0.0
    return sum(box_iou(pred, gt) for pred, gt in zip(preds, gts)) / len(gts)
