"""End to end: GRPO with dynamic sampling (verl's `algorithm.filter_groups.*` keys) on the CPU demo.

Two steps of the tiny experiment with groups whose rewards all agree dropped and the batch topped up with new
prompts, at most `max_num_gen_batches` batches a step. Read from the run's per-step metrics and rollout dump.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
from test_grpo_cpu import PROMPTS_PER_STEP, ROLLOUTS, _assert_ran, _metrics, _train, _trajectories

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREFIX = "training/filter_groups"
MAX_GEN_BATCHES = 3


@pytest.fixture(scope="module")
def dynamic_run(prepared) -> dict:
    return _train(prepared, "dynamic", "algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=reward",
                  f"algorithm.filter_groups.max_num_gen_batches={MAX_GEN_BATCHES}")


def test_groups_are_dropped_and_every_batch_is_still_full(dynamic_run):
    _assert_ran(dynamic_run)
    steps = _metrics(dynamic_run)
    for step in steps:
        assert step[f"{PREFIX}/groups_kept"] == PROMPTS_PER_STEP
        generated = step[f"{PREFIX}/groups_generated"]
        assert generated >= PROMPTS_PER_STEP
        assert step[f"{PREFIX}/gen_batches"] == math.ceil(generated / PROMPTS_PER_STEP)
        # Groups that agree are what is dropped: unless the bound stopped the filter, none reached the update.
        if step[f"{PREFIX}/budget_exhausted"] == 0.0:
            assert step["groups/zero_variance_fraction"] == 0.0
    dropped = sum(step.get(f"{PREFIX}/evicted_samples", 0) for step in steps)
    assert dropped > 0, steps
    assert any(step[f"{PREFIX}/groups_generated"] > PROMPTS_PER_STEP for step in steps)
    # The trained batch is full: every step dumped 8 prompts x 8 rollouts.
    per_step = Counter(row["step"] for row in _trajectories(dynamic_run))
    assert sorted(per_step.values()) == [PROMPTS_PER_STEP * ROLLOUTS] * len(steps), per_step
