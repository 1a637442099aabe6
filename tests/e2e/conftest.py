"""What the end-to-end runs share: a tiny model, demo data and its warm start, built once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "data"))
from synthetic_video import erase_frames  # noqa: E402


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "verl_video.cli", *args], check=True, cwd=REPO_ROOT)


def _model_and_data(root: Path, family: str) -> Path:
    """A tiny model of `family`, demo data and its warm start under root (tiny/, data/, warm/)."""
    _cli("make-tiny-model", str(root / "tiny"), "--family", family)
    _cli("make-demo-data", str(root / "data"), "--num-train", "16", "--num-val", "4")
    # The warm start sees the videos and prompts GRPO will: the same experiment's settings.
    _cli("warm-start", str(root / "tiny"), str(root / "data" / "train.yaml"), str(root / "warm"),
         "--set", "experiment=tiny_tvg_cpu")
    return root


# 120 steps of 4 traces on 12 videos (40 passes over them). Measured at temperature 0.7 on version-2 long videos:
# 80 steps gave 1 of 64 trajectories a window, 120 steps 23 (test run 3.3 min on a loaded 2-core machine), 150
# steps 56; 150 steps on 48 videos, at temperature 1, gave 3 of 64.
SEARCH_WARM_STEPS = 120


@pytest.fixture(scope="session")
def prepared_search(tmp_path_factory) -> Path:
    """A tiny Qwen3-VL, 12 + 4 long videos and the search loop's warm start (`warm-start --trainer loop`),
    shared by the search runs of both rollout backends (the warm start is their expensive part)."""
    root: Path = tmp_path_factory.mktemp("grpo_search")
    _cli("make-tiny-model", str(root / "tiny"), "--family", "qwen3_vl")
    _cli("make-demo-data", str(root / "data"), "--long", "--num-train", "12", "--num-val", "4")
    _cli(
        "warm-start", str(root / "tiny"), str(root / "data" / "train.yaml"), str(root / "warm"), "--trainer", "loop",
        "--steps", str(SEARCH_WARM_STEPS), "--batch-size", "4", "--set", "experiment=tiny_tvg_search_cpu",
    )  # fmt: skip
    return root


@pytest.fixture(scope="session")
def prepared_qwen3(tmp_path_factory) -> Path:
    """The same for a tiny Qwen3-VL (healthy videos only: its run checks the family, not bad input)."""
    return _model_and_data(tmp_path_factory.mktemp("grpo_cpu_qwen3"), "qwen3_vl")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """Tiny Qwen2.5-VL, demo data and warm start, shared by every run (hf and vLLM rollouts alike)."""
    root = _model_and_data(tmp_path_factory.mktemp("grpo_cpu"), "qwen2_5_vl")
    # Bad input must not stop training: break a quarter of the training videos after the warm start, and
    # erase the frames of three more, whose headers still pass the start-up check (they fail in the agent loop).
    videos = sorted((root / "data" / "videos" / "train").glob("*.mp4"))
    for video in videos[::4]:
        video.write_bytes(b"not a video" * 10)
    for video in videos[1::4][:3]:
        erase_frames(video)
    return root
