"""End to end with verl's other advantage estimators on video, CPU, the hf rollout: PPO with a critic (GAE)
for two steps, and one step each of RLOO and REINFORCE++ (the same tiny model, data and probe reward as
test_grpo_cpu.py). The critic is a second Qwen2.5-VL (value head) that must read the video as the actor does.
"""

from __future__ import annotations

import math

import pytest
from test_grpo_cpu import PROMPTS_PER_STEP, ROLLOUTS, _assert_ran, _assert_video_reached_the_actor, _metrics, _train

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OTHER_ESTIMATORS = ["rloo", "reinforce_plus_plus"]


@pytest.fixture(scope="module")
def ppo_run(prepared) -> dict:
    """Two PPO steps: GAE advantages from a critic (verl's value-head engine, with our vision settings)."""
    return _train(prepared, "ppo_gae", "algorithm.adv_estimator=gae")


@pytest.fixture(scope="module", params=OTHER_ESTIMATORS)
def estimator_run(request, prepared) -> dict:
    """One step with another group estimator."""
    return _train(prepared, request.param, f"algorithm.adv_estimator={request.param}", steps=1)


def test_ppo_with_a_critic_trains_actor_and_critic_on_video(ppo_run):
    _assert_ran(ppo_run)
    _assert_video_reached_the_actor(ppo_run)
    for step in _metrics(ppo_run):
        assert math.isfinite(step["critic/vf_loss"]) and step["critic/grad_norm"] > 0
        assert step["actor/grad_norm"] > 0
        # GAE advantages come from the critic's values: they differ between tokens and trajectories.
        assert step["critic/advantages/max"] > step["critic/advantages/min"]


def test_the_critic_reads_the_video(ppo_run):
    # The vision tower counts every row it sees in a step (this process's passes: the critic shares it). Without
    # the critic it is the actor's old-log-prob pass and update; the critic adds its values pass and its update.
    for step in _metrics(ppo_run):
        rows = step["actor/vision/encoder_passes"] + step["actor/vision/feature_reuses"]
        assert rows == PROMPTS_PER_STEP * ROLLOUTS * 4


def test_other_estimators_compose_and_train(estimator_run):
    _assert_ran(estimator_run)
    (step,) = _metrics(estimator_run)
    assert step["critic/advantages/max"] > step["critic/advantages/min"]
    assert step["actor/grad_norm"] > 0
