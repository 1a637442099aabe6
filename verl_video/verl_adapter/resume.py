"""Resuming a killed run so that it continues as if never stopped: checkpoint marking, trainer state, metrics.

verl 0.9.1 resumes from `latest_checkpointed_iteration.txt` (`trainer.resume_mode=auto`): the actor's
weights, optimizer, LR scheduler and RNG states (`global_step_N/actor/`) and the dataloader's position
(`global_step_N/data.pt`). Three things it leaves to us, done by `ResumableTrainer` (a mixin of our trainer):

- verl marks step N's checkpoint as the latest *before* the step's validation and metrics are logged; a
  kill in between resumed after a step that never got a metrics line. The mark is written once the step is
  logged (unless the previous checkpoint's weights were already deleted by `max_actor_ckpt_to_keep`).
- Our trainer's running counters (`data/*_total`) restarted at 0; they are saved with the mark
  (`global_step_N/verl_video_state.json`) and restored.
- verl's file logger opens `VERL_FILE_LOGGER_PATH` with "wb", so a resumed run erased every metric logged
  before. The lines up to the resumed step are kept and written back; lines of steps after it (logged
  after the checkpoint, before the kill) are dropped, because those steps run again. The pre-training
  validation is skipped on resume: its step already has its metrics.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from omegaconf import open_dict

logger = logging.getLogger("verl_video")

TRACKER_NAME = "latest_checkpointed_iteration.txt"
STATE_NAME = "verl_video_state.json"


def file_logger_path(project_name: str, experiment_name: str) -> str:
    """Where verl's file logger writes (its own rule: VERL_FILE_LOGGER_PATH, else ROOT/project/experiment.jsonl)."""
    path = os.getenv("VERL_FILE_LOGGER_PATH")
    if path:
        return path
    root = os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", "."))
    return os.path.join(root, project_name, f"{experiment_name}.jsonl")


def metrics_up_to(path: str, step: int) -> list[bytes]:
    """The metric lines of `path` logged at `step` or before, in order; a line cut short by a kill is left out."""
    if not os.path.isfile(path):
        return []
    kept = []
    with open(path, "rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                kept.append(line if line.endswith(b"\n") else line + b"\n")
    return kept


def read_tracker(checkpoint_dir: str) -> str | None:
    """The content of verl's latest-checkpoint tracker, or None when there is none."""
    path = os.path.join(checkpoint_dir, TRACKER_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return f.read()


def write_tracker(checkpoint_dir: str, content: str | None) -> None:
    """Set the tracker to `content` (None removes it), atomically: a kill never leaves it half-written."""
    path = os.path.join(checkpoint_dir, TRACKER_NAME)
    if content is None:
        if os.path.exists(path):
            os.remove(path)
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.replace(tmp, path)


class ResumableTrainer:
    """Mixin for verl's v1 PPO trainer (before it in the bases): a resumed run continues the killed one."""

    def resumable_state(self) -> dict[str, Any]:
        """Trainer state to carry across a restart (JSON-serialisable); subclasses extend it."""
        return {}

    def restore_resumable_state(self, state: dict[str, Any]) -> None:
        """Take back what `resumable_state` returned at the checkpoint resumed from."""

    def _checkpoint_dir(self) -> str:
        return str(self.config.trainer.default_local_dir)

    def _save_checkpoint(self):
        # verl 0.9.1 PPOTrainer._save_checkpoint marks the step latest before its metrics are logged: take it back.
        previous = read_tracker(self._checkpoint_dir())
        super()._save_checkpoint()
        if self.config.actor_rollout_ref.actor.get("checkpoint", {}).get("async_save", False):
            return  # verl does not write the tracker with async saves
        previous_actor = os.path.join(self._checkpoint_dir(), f"global_step_{(previous or '').strip()}", "actor")
        if previous is not None and not os.path.isdir(previous_actor):
            logger.warning("verl-video: checkpoint %s marked before its metrics are logged: the previous one was "
                           "deleted (max_actor_ckpt_to_keep)", self.global_steps)
            self._unmarked_step = None
            return
        write_tracker(self._checkpoint_dir(), previous)
        self._unmarked_step = self.global_steps

    def _mark_checkpoint(self, step: int) -> None:
        """Step `step` is logged: save our state beside its checkpoint and make it the one to resume from."""
        if getattr(self, "_unmarked_step", None) != step:
            return
        folder = os.path.join(self._checkpoint_dir(), f"global_step_{step}")
        tmp = os.path.join(folder, STATE_NAME + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.resumable_state(), f)
        os.replace(tmp, os.path.join(folder, STATE_NAME))
        write_tracker(self._checkpoint_dir(), str(step))
        self._unmarked_step = None

    def _load_checkpoint(self):
        # verl 0.9.1 PPOTrainer._load_checkpoint restores verl's state; ours (resumable_state) is restored here.
        super()._load_checkpoint()
        if not self.global_steps:
            return
        trainer = self.config.trainer
        if trainer.resume_mode == "resume_path":
            folder = str(trainer.resume_from_path)
        else:
            folder = os.path.join(os.path.abspath(self._checkpoint_dir()), f"global_step_{self.global_steps}")
        print(f"verl-video: resuming after step {self.global_steps} from {folder}")
        state_file = os.path.join(folder, STATE_NAME)
        if os.path.isfile(state_file):
            with open(state_file) as f:
                self.restore_resumable_state(json.load(f))
        else:
            logger.warning("verl-video: %s missing: running counters restart at 0", state_file)

    def fit(self, agent_loop_manager):
        """verl's loop, continuing the killed run's metrics file and skipping its already-logged validation."""
        # verl 0.9.1 PPOTrainer.fit: keep the metric lines up to the resumed step; no second validation of it.
        self._kept_metrics = []
        if self.global_steps:
            trainer = self.config.trainer
            if "file" in list(trainer.logger):
                path = file_logger_path(trainer.project_name, trainer.experiment_name)
                self._kept_metrics = metrics_up_to(path, self.global_steps)
            if trainer.get("val_before_train", True):
                print(f"verl-video: step {self.global_steps}'s validation is already logged: none before training")
                with open_dict(self.config):
                    trainer.val_before_train = False
        return super().fit(agent_loop_manager)

    def on_train_begin(self):
        """Restore the kept metric lines; from now on a logged step marks its checkpoint as the one to resume."""
        # verl 0.9.1 PPOTrainer.on_train_begin (a hook): write the kept lines back, mark checkpoints once logged.
        super().on_train_begin()
        file_logger = self.logger.logger.get("file")
        if file_logger is not None and self._kept_metrics:
            file_logger.fp.write(b"".join(self._kept_metrics))
        log = self.logger.log

        def log_then_mark(data, step, backend=None):
            log(data=data, step=step, backend=backend)
            self._mark_checkpoint(step)

        self.logger.log = log_then_mark
