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


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """Tiny model, demo data and warm start, shared by every run (hf and vLLM rollouts alike)."""
    root = tmp_path_factory.mktemp("grpo_cpu")
    _cli("make-tiny-model", str(root / "tiny"))
    _cli("make-demo-data", str(root / "data"), "--num-train", "16", "--num-val", "4")
    # The warm start sees the videos and prompts GRPO will: the same experiment's settings.
    _cli("warm-start", str(root / "tiny"), str(root / "data" / "train.yaml"), str(root / "warm"),
         "--set", "experiment=tiny_tvg_cpu")
    # Bad input must not stop training: break a quarter of the training videos after the warm start, and
    # erase the frames of three more, whose headers still pass the start-up check (they fail in the agent loop).
    videos = sorted((root / "data" / "videos" / "train").glob("*.mp4"))
    for video in videos[::4]:
        video.write_bytes(b"not a video" * 10)
    for video in videos[1::4][:3]:
        erase_frames(video)
    return root
