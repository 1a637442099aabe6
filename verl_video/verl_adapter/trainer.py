"""The trainer verl-video runs: verl 0.9.1's synchronous V1 PPO trainer composed with our jobs.

Registered in verl's trainer registry as `video_sync` and selected by our config (`trainer.v1.trainer_mode`).
Its jobs, each in its own module beside this one:
- trajectory order (trajectory_order.py): prompts numbered in dataloader order, each batch sorted by them
  before verl balances it, so the update does not depend on which rollout finished first;
- dynamic sampling (dynamic_sampling.py): `algorithm.filter_groups.*` bounded by `max_num_gen_batches`,
  with `training/filter_groups/*` metrics;
- curriculum (curriculum_hook.py): `data.sampler.class_path/class_name` orders the training data and gets
  each step's rewards (the sampler: verl_video/selection/curriculum.py);
- step metrics (step_metrics.py): `reward/<data_source>/*`, `data/*`, `rollout_vs_ref/*`, `video/*`, `groups/*`;
- rollout dump (rollout_dump.py): every reward component per trajectory in `trainer.rollout_data_dir`;
plus resuming a killed run (resume.py: checkpoint marking, running totals, metrics file) and failing the run
when a rollout worker dies (worker_watch.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu

from verl_video.verl_adapter import dynamic_sampling
from verl_video.verl_adapter.curriculum_hook import curriculum_loader, index_scores
from verl_video.verl_adapter.dynamic_sampling import GroupFilter
from verl_video.verl_adapter.resume import ResumableTrainer
from verl_video.verl_adapter.rollout_dump import with_reward_extras
from verl_video.verl_adapter.step_metrics import RunningTotals, step_metrics
from verl_video.verl_adapter.trajectory_order import numbered_uids, trajectory_order
from verl_video.verl_adapter.worker_watch import watch_replay_buffer

TRAINER_MODE = "video_sync"


@register_trainer(TRAINER_MODE)
class VideoTrainer(ResumableTrainer, PPOTrainerSync):
    """verl's sync trainer with deterministic trajectory order, bounded dynamic sampling, a curriculum hook,
    our step metrics and reward extras in the rollout dump."""

    curriculum = None
    totals: RunningTotals | None = None
    _prompts_fetched = 0
    _trained_batch = None

    def resumable_state(self) -> dict:
        """The running totals, as logged at the last step (keys as in checkpoints of earlier versions)."""
        totals = self.totals or RunningTotals()
        return {"_replaced_total": totals.replaced, "_decode_failed_total": totals.decode_failed}

    def restore_resumable_state(self, state: dict) -> None:
        """Continue the totals of the run resumed from."""
        self.totals = RunningTotals(int(state.get("_replaced_total", 0)), int(state.get("_decode_failed_total", 0)))

    def fit(self, agent_loop_manager):
        """verl's loop; a rollout worker that dies fails it instead of leaving it waiting (worker_watch.py)."""
        # verl 0.9.1 PPOTrainer.fit: the replay buffer's waits get the worker watch before the loop starts.
        watch_replay_buffer(self.replay_buffer, agent_loop_manager.agent_loop_workers)
        return super().fit(agent_loop_manager)

    def prepare_step(self) -> dict:
        """verl's dispatch of the step's prompts; the dynamic-sampling bound counts from there."""
        # verl 0.9.1 PPOTrainer.prepare_step: it submits the step's first prompts outside the buffer's refill.
        result = super().prepare_step()
        if isinstance(self.replay_buffer, GroupFilter):
            self.replay_buffer.note_dispatched(int(self.config.data.train_batch_size))
        return result

    def step(self, metrics: dict, timing_raw: dict):
        """verl's step; then the curriculum learns from the trained batch and our metrics join the step's."""
        # verl 0.9.1 PPOTrainer.step: the trained batch is in TransferQueue until fit clears it after the dump.
        batch = super().step(metrics, timing_raw)
        if self.curriculum is not None:
            self.curriculum.update(index_scores(trainer_base.tq, batch))
        if self.totals is None:
            self.totals = RunningTotals()
        metrics.update(step_metrics(
            trainer_base.tq, batch, processor=getattr(self, "processor", None), totals=self.totals,
            unreadable_at_start=getattr(self.train_dataset, "unreadable_videos", 0),
            with_reference=bool(getattr(self, "use_reference_policy", False)),
        ))
        self._trained_batch = batch
        return batch

    def _build_replay_buffer(self):
        # verl 0.9.1 PPOTrainer._build_replay_buffer: verl branches on the mode name; also bounds DAPO.
        self.trainer_mode = "sync"  # "video_sync" would get the async buffer, prompt fetches, checkpoint state
        buffer = super()._build_replay_buffer()
        return dynamic_sampling.bounded(buffer, self.config.algorithm.get("filter_groups", None) or {})

    def _init_dataloader(self):
        # verl 0.9.1 PPOTrainer._init_dataloader: verl never builds data.sampler; build it before state loads.
        super()._init_dataloader()
        self.curriculum, self.train_dataloader = curriculum_loader(self.config.data, self.train_dataset,
                                                                   self.train_dataloader)

    def _fetch_one_gen_batch(self):
        # verl 0.9.1 PPOTrainer._fetch_one_gen_batch: its random uuids become (step, position)-numbered uids.
        batch = super()._fetch_one_gen_batch()
        uids = list(batch["uid"])
        tu.assign_non_tensor_stack(batch, "uid", numbered_uids(uids, self.global_steps, self._prompts_fetched))
        self._prompts_fetched += len(uids)
        return batch

    def _balance_batch(self, batch, metrics, logging_prefix="global_seqlen", keep_minibatch=False):
        # verl 0.9.1 PPOTrainer._balance_batch: the batch arrives in completion order; balance it from one order.
        batch.reorder(trajectory_order(list(batch.keys)))
        return super()._balance_batch(batch, metrics, logging_prefix=logging_prefix, keep_minibatch=keep_minibatch)

    def _validate(self) -> dict[str, float]:
        # verl 0.9.1 PPOTrainer._validate: a task absent from the validation set gets NaN means; those are left out.
        return {key: value for key, value in super()._validate().items() if not _is_missing(value)}

    def _dump_generations(self, inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path):
        # verl 0.9.1 PPOTrainer._dump_generations: the rollout dump's rows (the trained batch) get their reward extras.
        with_reward_extras(trainer_base.tq, self._trained_batch, reward_extra_infos_dict)
        return super()._dump_generations(inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path)


def _is_missing(value: Any) -> bool:
    """True for None and NaN (a mean over no sample)."""
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))
