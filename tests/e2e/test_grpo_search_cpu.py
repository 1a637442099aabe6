"""End to end: GRPO with the `video_search` agent loop (experiment=tiny_tvg_search_cpu) on long demo videos,
where trajectories zoom, so a sample carries several videos (the overview, then each served window) through the
hf rollout server, the actor's log-prob and update passes and the vision-feature reuse.

A tiny Qwen3-VL warm-started on the loop's supervised traces (`warm-start --trainer loop`) writes the zoom
syntax often enough for some of a step's 64 trajectories to be served a window. Rollouts are seeded per
trajectory, so the same warm model zooms the same way each run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import _cli
from test_grpo_cpu import (
    PROMPTS_PER_STEP, _assert_ran, _assert_rollout_log_probs_match_the_actor, _assert_video_reached_the_actor, _metrics,
    _train,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 1
# 120 steps of 4 traces on 12 videos (40 passes over them). Measured at temperature 0.7: 80 steps gave 1 of 64
# trajectories a window, 120 steps 23 (test run 3.3 min on a loaded 2-core machine), 150 steps 56; 150 steps on
# 48 videos, at temperature 1, gave 3 of 64.
WARM_STEPS = 120
TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> dict:
    """A tiny Qwen3-VL, 12 + 4 long videos, the loop's warm start and `STEPS` GRPO steps of the search loop."""
    root: Path = tmp_path_factory.mktemp("grpo_search")
    _cli("make-tiny-model", str(root / "tiny"), "--family", "qwen3_vl")
    _cli("make-demo-data", str(root / "data"), "--long", "--num-train", "12", "--num-val", "4")
    _cli(
        "warm-start", str(root / "tiny"), str(root / "data" / "train.yaml"), str(root / "warm"), "--trainer", "loop",
        "--steps", str(WARM_STEPS), "--batch-size", "4", "--set", "experiment=tiny_tvg_search_cpu",
    )  # fmt: skip
    return _train(
        root, "run", f"actor_rollout_ref.rollout.temperature={TEMPERATURE}", steps=STEPS,
        experiment="tiny_tvg_search_cpu",
    )  # fmt: skip


def test_grpo_with_zooming_trajectories(search_run):
    _assert_ran(search_run)
    steps = _metrics(search_run)
    for step in steps:
        for key in ("zoom/calls", "zoom/used", "zoom/invalid_calls", "zoom/visual_tokens"):
            assert key in step, sorted(k for k in step if k.startswith("zoom/"))
        # Windows are videos of the response: each sample's placeholders, prompt and response, match its grids.
        assert step["actor/vision/encoder_passes_per_video"] == 1.0
    assert any(step["zoom/used"] > 0 for step in steps), [step["zoom/calls"] for step in steps]
    # More distinct videos than prompts: the served windows reached the actor's vision tower as videos of their own.
    assert any(step["actor/vision/unique_videos"] > PROMPTS_PER_STEP for step in steps)
    _assert_video_reached_the_actor(search_run)
    # Rollout and actor agree on the log-probs of trajectories with several videos as on single-video ones.
    _assert_rollout_log_probs_match_the_actor(search_run)
