"""End to end: GRPO steps through `python -m verl_video.main` on CPU, with video, real verl trainer.

One run (module fixture) of the tiny Qwen2.5-VL, warm-started so that it emits the answer format, on
generated videos; the tests then read what the run logged: verl's per-step metrics (file logger, with
our trainer's `video/*` checks of the actor's batch) and its per-trajectory rollout dump, where a probe
reward manager recorded each prompt's video token count.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 2
# Demo videos are 112x112, sampled at 2 fps: each pair of frames becomes 4x4 merged patches = 16 tokens.
TOKENS_PER_FRAME_PAIR = (112 // 28) * (112 // 28)
FPS = 2.0
# experiment=tiny_tvg_cpu: 8 prompts x 8 rollouts a step, no reference model.
PROMPTS_PER_STEP = 8
ROLLOUTS = 8


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "verl_video.cli", *args], check=True, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory) -> dict:
    """Build model and data, run STEPS GRPO steps, and return the paths of what the run wrote."""
    root = tmp_path_factory.mktemp("grpo_cpu")
    _cli("make-tiny-model", str(root / "tiny"))
    _cli("make-demo-data", str(root / "data"), "--num-train", "16", "--num-val", "4")
    _cli("warm-start", str(root / "tiny"), str(root / "data" / "train.yaml"), str(root / "warm"))
    # Bad input must not stop training: break a quarter of the training videos after the warm start.
    for video in sorted((root / "data" / "videos" / "train").glob("*.mp4"))[::4]:
        video.write_bytes(b"not a video" * 10)
    env = dict(os.environ, HF_HUB_OFFLINE="1", VERL_FILE_LOGGER_PATH=str(root / "metrics.jsonl"))
    command = [
        sys.executable,
        "-m",
        "verl_video.main",
        "experiment=tiny_tvg_cpu",
        f"actor_rollout_ref.model.path={root / 'warm'}",
        f"data.train_files={root / 'data' / 'train.yaml'}",
        f"data.val_files={root / 'data' / 'val.yaml'}",
        f"trainer.total_training_steps={STEPS}",
        "trainer.val_before_train=false",
        f"trainer.test_freq={STEPS}",
        f"trainer.default_local_dir={root / 'checkpoints'}",
        f"trainer.rollout_data_dir={root / 'rollouts'}",
        "reward.reward_manager.source=importlib",
        f"reward.reward_manager.module.path={REPO_ROOT / 'tests' / 'e2e' / 'probe_reward.py'}",
        "reward.reward_manager.name=VideoProbeRewardManager",
    ]
    log = root / "train.log"
    with log.open("w") as out:
        code = subprocess.run(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return {"root": root, "code": code, "log": log}


def _metrics(run: dict) -> list[dict]:
    lines = (run["root"] / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["data"] for line in lines if line.strip()]


def _trajectories(run: dict) -> list[dict]:
    rows = []
    for path in sorted((run["root"] / "rollouts").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_run_exits_cleanly(grpo_run):
    tail = grpo_run["log"].read_text()[-4000:]
    assert grpo_run["code"] == 0, tail
    assert len(_metrics(grpo_run)) == STEPS


def test_video_reached_the_actor(grpo_run):
    for step in _metrics(grpo_run):
        # Every sample of the actor's batch carried a video_grid_thw, matching its prompt's placeholders.
        assert step["video/with_grid_fraction"] == 1.0
        assert step["video/placeholder_grid_mismatches"] == 0.0
        assert step["video/tokens_per_sample"] > 0


def test_video_token_count_follows_the_duration(grpo_run):
    rows = _trajectories(grpo_run)
    assert rows, "no rollout dump written"
    for row in rows:
        duration = row["gts"]["duration"]
        frames = duration * FPS
        # Frames are taken every 0.5 s and paired; an odd count is padded to the next pair.
        expected = {math.floor(frames / 2) * TOKENS_PER_FRAME_PAIR, math.ceil(frames / 2) * TOKENS_PER_FRAME_PAIR}
        assert row["probe_video_tokens"] in expected, (duration, row["probe_video_tokens"])


def test_broken_videos_are_skipped_and_counted(grpo_run):
    steps = _metrics(grpo_run)
    assert len(steps) == STEPS
    # The start-up header probe finds them all (none is left to be replaced mid-run), and says how many.
    assert steps[-1]["data/unreadable_at_start"] == 4
    assert steps[-1]["data/replaced_total"] == 0


def test_rewards_vary_inside_a_group(grpo_run):
    groups: dict[str, list[float]] = {}
    for row in _trajectories(grpo_run):
        groups.setdefault(row["input"], []).append(float(row["score"]))
    assert any(len(set(scores)) > 1 for scores in groups.values()), groups


def test_policy_is_updated(grpo_run):
    assert any(step["actor/grad_norm"] > 0 for step in _metrics(grpo_run))


def test_rollout_log_probs_match_the_actor(grpo_run):
    for step in _metrics(grpo_run):
        # verl's metrics: mean |p_rollout - p_actor| per token, and per sequence |mean log-prob difference|.
        assert step["training/rollout_probs_diff_mean"] < 1e-3
        assert step["training/rollout_probs_diff_max"] < 1e-3
        assert step["rollout_corr/log_ppl_abs_diff"] < 1e-3


def test_each_video_is_encoded_once_per_step(grpo_run):
    videos_per_step: dict[int, set] = {}
    for row in _trajectories(grpo_run):
        # One video per demo record; a record can be drawn twice in a step across an epoch boundary.
        videos_per_step.setdefault(int(row["step"]), set()).add((row["input"], json.dumps(row["gts"], sort_keys=True)))
    for number, step in enumerate(_metrics(grpo_run), start=1):
        videos = len(videos_per_step[number])
        # The encoder is frozen (default), so vision.reuse_features is on: the old-log-prob pass encodes each
        # video once; the other rollouts and both update mini-batches reuse it.
        assert step["actor/vision/unique_videos"] == videos
        assert step["actor/vision/encoder_passes"] == videos
        assert step["actor/vision/encoder_passes_per_video"] == 1.0
        rows_through_the_tower = step["actor/vision/encoder_passes"] + step["actor/vision/feature_reuses"]
        assert rows_through_the_tower == PROMPTS_PER_STEP * ROLLOUTS * 2  # old-log-prob pass + one update epoch
        assert step["actor/vision/encoder_sync_passes"] == 0
