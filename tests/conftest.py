"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real third-party data lives beside the checkout, never inside it (see ../shared/data/SOURCES.md).
SHARED_DATA = Path(os.environ.get("VERL_VIDEO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def one_torch_thread():
    """Run the tiny model on one thread: on a shared CPU, spinning OpenMP threads made steps ~50x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL built offline once per test session."""
    from verl_video.tools.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp("tiny_model") / "model"
    make_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def tiny_qwen3_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen3-VL built offline once per test session."""
    from verl_video.tools.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp("tiny_qwen3_model") / "model"
    make_tiny_model(out, family="qwen3_vl")
    return out
