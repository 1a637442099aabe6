"""Fixtures of the evaluation tests: a tiny model, demo videos, and predictions files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight Qwen2.5-VL built offline (`verl-video make-tiny-model`)."""
    from verl_video.tools.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp("tiny_model")
    make_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """Four short generated validation videos with known windows (`verl-video make-demo-data`)."""
    from verl_video.tools.demo_data import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, num_train=1, num_val=4)
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def write_jsonl():
    """A function writing rows as JSONL to a path and returning the path."""
    return _write_jsonl
