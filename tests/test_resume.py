"""Resuming: metrics of a killed run kept up to the resumed step, the checkpoint marked once its step is logged.

The trainer below stands in for verl's v1 PPO trainer with the parts of `fit` that matter here, in verl's
order (verl's own Tracking and file logger, its tracker file and lookup); the end-to-end test
(tests/e2e/test_grpo_cpu.py::test_killed_run_resumes_as_if_never_stopped) kills the real one.
"""

from __future__ import annotations

import json
import os

import pytest
from omegaconf import OmegaConf
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path
from verl.utils.tracking import Tracking

from verl_video.verl_adapter.resume import STATE_NAME, ResumableTrainer, metrics_up_to, read_tracker


class Killed(Exception):
    pass


class VerlLikeTrainer:
    """verl's checkpoint, resume and logging order: save in the step, then validate, then log."""

    def __init__(self, out, save_freq: int, total: int, kill_after_save_of: int | None = None):
        self.config = OmegaConf.create({
            "trainer": {
                "default_local_dir": str(out / "checkpoints"), "resume_mode": "auto", "resume_from_path": None,
                "logger": ["file"], "project_name": "p", "experiment_name": "e", "val_before_train": True,
                "save_freq": save_freq, "total_training_steps": total,
            },
            "actor_rollout_ref": {"actor": {"checkpoint": {"async_save": False}}},
        })
        self.kill_after_save_of = kill_after_save_of
        self.counter = 0

    def _save_checkpoint(self):
        folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
        os.makedirs(os.path.join(folder, "actor"), exist_ok=True)
        with open(os.path.join(folder, "actor", "weights"), "w") as f:
            f.write(str(self.counter))
        with open(os.path.join(self.config.trainer.default_local_dir, "latest_checkpointed_iteration.txt"), "w") as f:
            f.write(str(self.global_steps))

    def _load_checkpoint(self):
        self.global_steps = 0
        folder = find_latest_ckpt_path(self.config.trainer.default_local_dir)
        if folder is not None:
            self.global_steps = int(folder.split("global_step_")[-1])
            with open(os.path.join(folder, "actor", "weights")) as f:
                self.weights_loaded = int(f.read())

    def on_train_begin(self):
        return

    def fit(self, agent_loop_manager=None):
        self.logger = Tracking("p", "e", default_backend=list(self.config.trainer.logger))
        if self.config.trainer.val_before_train:
            self.logger.log(data={"val": 0.0}, step=self.global_steps)
        self.global_steps += 1
        self.on_train_begin()
        while self.global_steps <= self.config.trainer.total_training_steps:
            self.counter += 1
            if self.global_steps % self.config.trainer.save_freq == 0:
                self._save_checkpoint()
            if self.kill_after_save_of == self.global_steps:
                raise Killed
            self.logger.log(data={"counter": float(self.counter)}, step=self.global_steps)
            self.global_steps += 1


class Trainer(ResumableTrainer, VerlLikeTrainer):
    def resumable_state(self):
        return {"counter": self.counter}

    def restore_resumable_state(self, state):
        self.counter = state["counter"]


def _steps(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.fixture
def metrics_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    return path


def _run(tmp_path, **kwargs) -> Trainer:
    trainer = Trainer(tmp_path, **kwargs)
    trainer._load_checkpoint()
    trainer.fit(None)
    return trainer


def test_metrics_up_to_keeps_earlier_steps_and_drops_a_cut_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"step": 0, "data": {}}\n{"step": 1, "data": {}}\n{"step": 2, "data": {}}\n{"step": 3, "da')
    assert [json.loads(line)["step"] for line in metrics_up_to(str(path), 1)] == [0, 1]
    assert len(metrics_up_to(str(path), 9)) == 3
    assert metrics_up_to(str(tmp_path / "absent.jsonl"), 1) == []


def test_steps_logged_after_the_checkpoint_are_dropped_and_earlier_ones_kept(tmp_path, metrics_file):
    # Checkpoint at 2, step 3 logged, killed in step 4 after its checkpoint is saved but before it is logged.
    with pytest.raises(Killed):
        _run(tmp_path, save_freq=2, total=6, kill_after_save_of=4)
    assert _steps(metrics_file) == [0, 1, 2, 3]
    # The checkpoint of step 4 is on disk, but its step was never logged: resume from step 2.
    assert read_tracker(str(tmp_path / "checkpoints")) == "2"
    resumed = _run(tmp_path, save_freq=2, total=6)
    assert resumed.weights_loaded == 2
    # verl's file logger truncates its file: the steps up to 2 come back, 3 and 4 are trained and logged again,
    # and no second validation is logged at step 2.
    assert _steps(metrics_file) == [0, 1, 2, 3, 4, 5, 6]
    uninterrupted = tmp_path / "reference"
    uninterrupted.mkdir()
    os.environ["VERL_FILE_LOGGER_PATH"] = str(uninterrupted / "metrics.jsonl")
    _run(uninterrupted, save_freq=2, total=6)
    # The trainer's own running state continued across the restart.
    assert metrics_file.read_text() == (uninterrupted / "metrics.jsonl").read_text()
    assert json.loads((tmp_path / "checkpoints" / "global_step_6" / STATE_NAME).read_text()) == {"counter": 6}


def test_previous_checkpoint_deleted_keeps_verls_mark(tmp_path, metrics_file):
    with pytest.raises(Killed):
        _run(tmp_path, save_freq=1, total=3, kill_after_save_of=1)
    # First checkpoint, never logged: nothing to resume from.
    assert read_tracker(str(tmp_path / "checkpoints")) is None
    with pytest.raises(Killed):
        _run(tmp_path, save_freq=1, total=3, kill_after_save_of=3)
    assert read_tracker(str(tmp_path / "checkpoints")) == "2"
    # max_actor_ckpt_to_keep=1 deleted step 2's weights when step 3 was saved: step 3's mark must stay.
    (tmp_path / "checkpoints" / "global_step_2" / "actor" / "weights").unlink()
    (tmp_path / "checkpoints" / "global_step_2" / "actor").rmdir()
    trainer = Trainer(tmp_path, save_freq=1, total=3)
    trainer.global_steps = 3
    trainer._save_checkpoint()
    assert read_tracker(str(tmp_path / "checkpoints")) == "3"
