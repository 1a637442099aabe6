"""The driver's start-up checks, run as a user runs them: `python -m verl_video.main ...` stops in seconds with
one clear message, before Ray starts."""

from __future__ import annotations

import json
import os
import shutil
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
    warm = tmp_path / "warm"
    shutil.copytree(tiny_model, warm)
    (warm / "warm_start.json").write_text(json.dumps({"steps": 700, "prompt_template": "answer_only"}))
    done, seconds = _main(tmp_path, "experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={warm}",
                          f"trainer.default_local_dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "warm-started to answer the 'answer_only' prompt" in done.stderr
    assert "experiment=tiny_tvg_demo" in done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr and seconds < 120
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started


@pytest.fixture(scope="module")
def six_records(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("driver") / "data"
    subprocess.run([sys.executable, "-m", "verl_video.cli", "make-demo-data", str(out), "--num-train", "6",
                    "--num-val", "4", "--workers", "1"], check=True, capture_output=True, timeout=600)
    return out


def _train_on(data: Path, model: Path, run: Path, *overrides: str) -> list[str]:
    return ["experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={model}", f"data.train_files={data / 'train.yaml'}",
            f"data.val_files={data / 'val.yaml'}", f"trainer.default_local_dir={run}", *overrides]


def test_a_data_set_smaller_than_a_batch_stops_at_start_up_with_the_numbers(tiny_model, six_records, tmp_path):
    done, seconds = _main(tmp_path, *_train_on(six_records, tiny_model, tmp_path / "run"))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "6 usable record(s), fewer than data.train_batch_size=8" in done.stderr
    assert "set data.train_batch_size=6 or lower" in done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr and seconds < 120
    assert "ZeroDivisionError" not in done.stderr and not (tmp_path / "run").exists()


def test_a_misspelt_reward_option_stops_at_start_up_with_its_own_message(tiny_model, six_records, tmp_path):
    done, seconds = _main(tmp_path, *_train_on(six_records, tiny_model, tmp_path / "run", "data.train_batch_size=4",
                                                "actor_rollout_ref.actor.ppo_mini_batch_size=4",
                                                "+reward.reward_kwargs.strictnes=strict"))
    assert done.returncode == 2, done.stderr[-3000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("verl-video: configuration error")]
    assert len(error) == 1 and "unknown option(s) 'strictnes'" in error[0] and "strictness" in error[0], done.stderr[-2000:]
    assert "Started a local Ray instance" not in done.stdout + done.stderr and seconds < 120


def test_a_missing_annotation_file_is_named_before_anything_is_written(tiny_model, tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text(f"datasets:\n  - json_path: {tmp_path / 'missing.jsonl'}\n    data_folder: {tmp_path}\n")
    done, seconds = _main(tmp_path, "experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={tiny_model}",
                          f"data.train_files={config}", f"data.val_files={config}", f"trainer.default_local_dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "missing.jsonl" in done.stderr and "data.yaml:2" in done.stderr, done.stderr[-2000:]
    assert "Started a local Ray instance" not in done.stdout + done.stderr and seconds < 120
    assert not (tmp_path / "run").exists()
