"""The localisation check tells a model that localises from one that answers the dataset's prior."""

from __future__ import annotations

import numpy as np
import pytest

from verl_video.evaluation.localisation import blind_baseline, localisation

RNG = np.random.default_rng(0)
DURATIONS = RNG.integers(8, 17, size=40).astype(float)
STARTS = RNG.uniform(0.0, 0.5, size=40) * DURATIONS
TRUTHS = np.stack([STARTS, STARTS + RNG.uniform(0.15, 0.4, size=40) * DURATIONS], axis=1)


def test_blind_baseline_finds_the_one_interval_every_video_shares():
    durations = [10.0, 20.0, 40.0]
    truths = [[2.0, 6.0], [4.0, 12.0], [8.0, 24.0]]  # 0.2-0.6 of every duration
    score, interval = blind_baseline(truths, durations)
    assert score == pytest.approx(1.0)
    assert interval == pytest.approx((0.2, 0.6))


def test_one_answer_for_every_video_does_not_beat_the_blind_baseline():
    constant = np.tile([0.1, 0.6], (40, 1)) * DURATIONS[:, None]
    result = localisation(constant.tolist(), TRUTHS.tolist(), DURATIONS.tolist())
    assert result.distinct == len(set(map(tuple, np.round(constant, 3).tolist())))
    assert result.centre_corr is None or abs(result.centre_corr) < 1e-6
    assert result.miou <= result.blind_miou + 1e-9


def test_answers_that_follow_the_moment_correlate_and_beat_the_baseline():
    shifted = TRUTHS + 0.3  # close to each moment, so informative about it
    result = localisation(shifted.tolist(), TRUTHS.tolist(), DURATIONS.tolist())
    assert result.distinct == 40
    assert result.centre_corr > 0.95
    assert result.miou > result.blind_miou + 0.2


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 predictions, 1 truths"):
        localisation([[0, 1], [1, 2]], [[0, 1]], [5.0])
