"""Fixtures for the tools tests: one tiny model and one small demo dataset per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _tools_one_torch_thread(one_torch_thread):
    """Every tools test runs the tiny model on one thread (tests/conftest.py says why)."""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built tiny Qwen2.5-VL (built once per session: about 2 s)."""
    from verl_video.tools.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp("tiny") / "model"
    make_tiny_model(out, seed=0)
    return out


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo dataset with 4 training and 2 validation videos."""
    from verl_video.tools.demo_data import generate

    out = tmp_path_factory.mktemp("demo") / "data"
    generate(out, num_train=4, num_val=2, seed=0)
    return out
