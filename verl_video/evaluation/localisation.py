"""Does a grounding model localise, or has it learnt where moments usually are?

A rising mIoU alone cannot tell. A model that ignores the video and answers one interval for every video (as a
fraction of its duration) already scores the *video-blind baseline*: the best such constant interval on the set.
GRPO can lift mIoU up to that baseline by moving a constant answer, which is learning the dataset's prior, not
localising. Three numbers separate the two:

    distinct     how many different intervals the model answered (1 = the same answer for every video)
    centre_corr  Pearson correlation of predicted and true moment centres, as fractions of the duration
                 (0 when the answers carry no information about the moment)
    blind_miou   the video-blind baseline on this set

Intervals are in seconds; the first ground-truth window stands for the moment when there are several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Candidate constant intervals: every [a, b) on this grid of fractions of the duration (1,275 pairs).
BLIND_GRID_STEP = 0.02


@dataclass(frozen=True)
class Localisation:
    """How a set of greedy answers relates to the moments they answer (see the module doc)."""

    n: int  # answers that parsed to an interval
    distinct: int
    centre_corr: float | None  # None when the answers or the truths do not vary
    miou: float  # over the parsed answers
    blind_miou: float  # over the same videos
    blind_interval: tuple[float, float]  # fractions of the duration


def _fractions(intervals: Sequence[Sequence[float]], durations: Sequence[float]) -> np.ndarray:
    return np.asarray(intervals, dtype=float).reshape(-1, 2) / np.asarray(durations, dtype=float)[:, None]


def _iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of each row of `pred` (..., 2) with the matching row of `truth`, elementwise over broadcast axes."""
    inter = np.clip(np.minimum(pred[..., 1], truth[..., 1]) - np.maximum(pred[..., 0], truth[..., 0]), 0.0, None)
    union = np.maximum(pred[..., 1], truth[..., 1]) - np.minimum(pred[..., 0], truth[..., 0])
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def blind_baseline(truths: Sequence[Sequence[float]], durations: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """mIoU of the best single interval (fractions of each video's duration) answered for every video, and it."""
    truth = _fractions(truths, durations)
    grid = np.round(np.arange(0.0, 1.0 + BLIND_GRID_STEP / 2, BLIND_GRID_STEP), 6)
    starts, ends = np.meshgrid(grid, grid, indexing="ij")
    keep = ends > starts
    candidates = np.stack([starts[keep], ends[keep]], axis=-1)  # (C, 2)
    scores = _iou(candidates[:, None, :], truth[None, :, :]).mean(axis=1)
    best = int(np.argmax(scores))
    return float(scores[best]), (float(candidates[best, 0]), float(candidates[best, 1]))


def localisation(
    predictions: Sequence[Sequence[float]], truths: Sequence[Sequence[float]], durations: Sequence[float]
) -> Localisation:
    """Distinct answers, centre correlation, mIoU and the video-blind baseline for parsed (pred, truth) pairs."""
    if not predictions:
        raise ValueError("localisation needs at least one parsed answer")
    if not len(predictions) == len(truths) == len(durations):
        raise ValueError(f"{len(predictions)} predictions, {len(truths)} truths and {len(durations)} durations")
    pred, truth = _fractions(predictions, durations), _fractions(truths, durations)
    pred_centre, truth_centre = pred.mean(axis=1), truth.mean(axis=1)
    varies = pred_centre.std() > 1e-9 and truth_centre.std() > 1e-9
    corr = float(np.corrcoef(pred_centre, truth_centre)[0, 1]) if varies else None
    blind, interval = blind_baseline(truths, durations)
    return Localisation(
        n=len(predictions),
        distinct=len({(round(float(a), 3), round(float(b), 3)) for a, b in np.asarray(predictions, dtype=float)}),
        centre_corr=corr,
        miou=float(_iou(pred, truth).mean()),
        blind_miou=blind,
        blind_interval=interval,
    )
