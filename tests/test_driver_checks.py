"""The driver's start-up checks, run as a user runs them: `python -m verl_video.main ...` stops in seconds with
one clear message, before Ray starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("driver") / "model"
    subprocess.run([sys.executable, "-m", "verl_video.cli", "make-tiny-model", str(out), "--family", "qwen3_vl"],
                   check=True, capture_output=True, timeout=600)
    return out


def _main(cwd: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "verl_video.main", *overrides], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return done, time.monotonic() - started


def test_a_warm_model_under_another_prompt_than_it_learnt_is_refused(tiny_model, tmp_path):
    (tiny_model / "warm_start.json").write_text(json.dumps({"steps": 700, "prompt_template": "answer_only"}))
    done, seconds = _main(tmp_path, "experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={tiny_model}",
                          f"trainer.default_local_dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "warm-started to answer the 'answer_only' prompt" in done.stderr
    assert "experiment=tiny_tvg_demo" in done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr and seconds < 120
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started
