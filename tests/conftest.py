"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
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


@pytest.fixture
def user_registrations_undone():
    """What a test's user files register in this process is gone after it (their modules too, so that they load
    and register again): another test may register the same names from its own copy of a file."""
    from verl_video.annotations import formats
    from verl_video.rewards import components, composite, registry, scorer
    from verl_video.selection import strategies
    from verl_video.tasks import prompts
    from verl_video.tasks import registry as tasks

    tables = [tasks.TASKS, registry.REWARDS, composite.REGISTERED_PRESETS, scorer.ROW_METRICS, components._CONTENT_OK,
              prompts.TEMPLATES, formats._PARSERS, strategies.STRATEGIES]
    saved = [dict(table) for table in tables]
    signatures = list(formats._SIGNATURES)
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)
    formats._SIGNATURES[:] = signatures
    for name in [name for name in sys.modules if name.startswith("verl_video_user_")]:
        del sys.modules[name]  # loaded again next time, registering again
