"""Temporal and box overlaps: the seeds' formulas where right, our corrections where not."""

from __future__ import annotations

import math

import pytest

from verl_video.rewards.boxes import box_iou, mean_box_iou, parse_boxes
from verl_video.rewards.iou import best_iou, merge_intervals, multi_iou, normalized_iou, temporal_iou, timestamp_iou


def test_plain_iou_matches_seed_formula():
    assert temporal_iou((2, 6), (4, 8)) == pytest.approx(2 / 6)
    assert temporal_iou((0, 1), (2, 3)) == 0.0
    assert temporal_iou((1, 9), (1, 9)) == 1.0


def test_zero_union_rule():
    # The seeds crash or return 1.0 here; only the exact same point earns 1.
    assert temporal_iou((5, 5), (5, 5)) == 1.0
    assert temporal_iou((5, 5), (6, 6)) == 0.0
    assert temporal_iou((5, 5), (4, 6)) == 0.0
    # A reversed prediction against a point used to give union 0 and a free 1.0 in the seeds' arithmetic.
    assert temporal_iou((5, 3), (3, 3)) == 0.0


def test_invalid_pairs_score_zero():
    for bad in (None, (), (1,), ("a", 2), (math.nan, 2), (0, math.inf), "12"):
        assert temporal_iou(bad, (1, 2)) == 0.0
        assert temporal_iou((1, 2), bad) == 0.0


def test_reversed_pairs_are_ordered():
    assert temporal_iou((8, 4), (4, 8)) == 1.0


def test_best_iou():
    assert best_iou((0, 2), [(10, 12), (0, 1)]) == 0.5
    assert best_iou((0, 2), []) == 0.0


def test_tiou_matches_time_r1_inside_the_video():
    pred, gt, duration = (10, 20), (12, 22), 100
    expected = temporal_iou(pred, gt) * (1 - 2 / 100) * (1 - 2 / 100)
    assert timestamp_iou(pred, gt, duration) == pytest.approx(expected)


def test_tiou_never_negative():
    # Time-R1: [0, 3T] vs [0, T] gives IoU 1/3 * 1 * (1 - 2T/T) = -1/3. Clipped: a perfect match.
    assert timestamp_iou((0, 300), (0, 100), 100) == 1.0
    assert timestamp_iou((250, 300), (0, 10), 100) == 0.0
    # A ground truth itself past the video cannot push the penalty negative either.
    assert 0.0 <= timestamp_iou((0, 1), (0, 250), 100) <= 1.0


def test_tiou_without_duration_is_plain_iou():
    for duration in (None, 0, -1, math.nan):
        assert timestamp_iou((2, 6), (4, 8), duration) == pytest.approx(2 / 6)


def test_normalized_iou():
    # Temporal-R1: pred seconds / T against the normalised truth; the prediction is clipped to [0, 1].
    assert normalized_iou((10, 20), (10, 20), 40) == 1.0
    assert normalized_iou((10, 60), (10, 40), 40) == 1.0
    assert normalized_iou((2, 6), (4, 8), None) == pytest.approx(2 / 6)


def test_merge_and_multi_iou():
    assert merge_intervals([(3, 4), (1, 2), (1.5, 2.5), (9, 8)]) == [(1, 2.5), (3, 4), (8, 9)]
    assert multi_iou([(0, 2), (1, 3)], [(0, 3)]) == 1.0
    assert multi_iou([(0, 1), (2, 3)], [(0, 3)]) == pytest.approx(2 / 3)
    assert multi_iou([], [(0, 1)]) == 0.0
    assert multi_iou([(4, 4)], [(4, 4)]) == 1.0


def test_box_iou():
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((1, 1, 0, 0), (0, 0, 1, 1)) == 1.0  # corners ordered
    assert box_iou((0, 0, 1), (0, 0, 1, 1)) == 0.0
    assert box_iou((0, 0, 0, 0), (1, 1, 1, 1)) == 0.0


def test_mean_box_iou_and_videochat_exact_rule():
    gts = [(0, 0, 1, 1)] * 8
    assert mean_box_iou(gts, gts) == 1.0
    assert mean_box_iou(gts[:4], gts) == 0.5  # missing frames score 0
    assert mean_box_iou(gts[:4], gts, exact=True) == 0.0  # VideoChat-R1: exactly 8 boxes or nothing
    assert mean_box_iou(gts, []) == 0.0


def test_parse_boxes():
    text = "<answer>[[0.1, 0.2, 0.3, 0.4], [0,0,1,1]]</answer>"
    assert parse_boxes(text) == [(0.1, 0.2, 0.3, 0.4), (0.0, 0.0, 1.0, 1.0)]
    assert parse_boxes("no answer") == []
