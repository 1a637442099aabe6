"""DAPO dynamic sampling with verl's own keys, bounded by `max_num_gen_batches`, with per-step metrics.

    algorithm.filter_groups.enable=true
    algorithm.filter_groups.metric=reward        # or any reward key: iou, parse_ok, a component name
    algorithm.filter_groups.max_num_gen_batches=3

verl 0.9.1's synchronous replay buffer already drops groups whose metric is identical across the group
and refills the batch with new prompts, but it ignores `max_num_gen_batches` (it warns so), so a data set
where most groups agree can generate for ever. `GroupFilter` adds the bound: once `max_num_gen_batches`
x `train_batch_size` prompts have been generated in a step, filtering stops and the next groups fill the
batch whatever their variance (the batch is always full; `budget_exhausted` says it happened). Prompts
already promised to refill earlier evictions are still generated, so a step may go a little past the bound.

It also picks the batch deterministically among the surplus groups (by step, then the uid, whose
`{step}-{position}` prefix is the dataloader order) where verl's choice follows set order.

Metrics per step (`training/filter_groups/...`): `groups_generated`, `groups_kept`,
`zero_variance_fraction` (of the groups classified this step), `gen_batches` (generated / batch size,
rounded up), `budget_exhausted` (0/1); verl adds `evicted_samples` and `discarded_surplus_samples`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

logger = logging.getLogger("verl_video")

PREFIX = "training/filter_groups"


def bounded(buffer: ReplayBuffer, filter_groups: Any) -> ReplayBuffer:
    """The buffer verl built, as a `GroupFilter` when it is verl's own sync buffer filtering groups."""
    # A user's custom sampler owns its filtering; without filtering there is nothing to bound.
    if type(buffer) is not ReplayBuffer or buffer.filter_groups_metric is None:
        return buffer
    bound = int(filter_groups.get("max_num_gen_batches", 0) or 0)
    logger.warning("verl-video: dynamic sampling on %r; max_num_gen_batches=%d is honoured by "
                   "verl_video.verl_adapter.dynamic_sampling (verl's warning above does not apply)",
                   buffer.filter_groups_metric, bound)
    return GroupFilter.adopt(buffer, bound)


class GroupFilter(ReplayBuffer):
    """verl's sync replay buffer with DAPO filtering bounded by max_num_gen_batches, and step metrics."""

    @classmethod
    def adopt(cls, buffer: ReplayBuffer, max_num_gen_batches: int) -> GroupFilter:
        """Take over a buffer verl built (same state and settings), adding the bound and the counters."""
        # verl's trainer builds the buffer with kwargs only it knows; taking its state keeps one source of truth.
        adopted = cls.__new__(cls)
        adopted.__dict__.update(buffer.__dict__)
        adopted.max_num_gen_batches = int(max_num_gen_batches or 0)
        adopted._dispatch = buffer.refill_fn
        adopted.refill_fn = adopted._counted_refill
        adopted._reset_step(0)
        return adopted

    def _reset_step(self, initial: int) -> None:
        self._generated = initial
        self._classified: dict[str, bool] = {}
        self._exhausted = False

    def note_dispatched(self, count: int) -> None:
        """The trainer submitted a new step's first prompts (outside refill): start the step's counters."""
        self._reset_step(count)

    def _counted_refill(self, count: int) -> int:
        self._generated += int(count)
        return self._dispatch(count)

    def budget_left(self) -> bool:
        """Whether filtering may still drop groups this step (max_num_gen_batches <= 0: no bound)."""
        if self.max_num_gen_batches <= 0:
            return True
        return self._generated < self.max_num_gen_batches * int(self.train_batch_size)

    def _dapo_filtered_keys(self, partition_id: str) -> tuple[set[str], Counter]:
        uids, counts = super()._dapo_filtered_keys(partition_id)
        if partition_id == "val" or self.filter_groups_metric is None:
            return uids, counts
        for uid, value in self._dapo_classification_cache[partition_id].items():
            self._classified.setdefault(uid, value is not None)
        if self.budget_left():
            return uids, counts
        self._exhausted = True
        return set(), Counter()

    def _select_prompt_uids(self, partition_id, sampleable_keys, batch_size):
        ordered, partition_snapshot, steps = super()._select_prompt_uids(partition_id, sampleable_keys, batch_size)
        ordered = sorted(sampleable_keys, key=lambda uid: (steps.get(uid, 0), uid))[:batch_size]
        return ordered, partition_snapshot, steps

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        """verl's sampling; training batches also report the step's generation and filtering counts."""
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id != "val" and self.filter_groups_metric is not None:
            metrics.update(self.step_metrics(batch, batch_size))
        return batch, metrics

    def step_metrics(self, batch, batch_size: int) -> dict[str, float]:
        """Groups generated and kept, zero-variance fraction, generation batches used, bound reached."""
        kept = len({str(key).split("_")[0] for key in batch.keys})
        classified = len(self._classified)
        zero = sum(self._classified.values())
        return {
            f"{PREFIX}/groups_generated": float(self._generated),
            f"{PREFIX}/groups_kept": float(kept),
            f"{PREFIX}/zero_variance_fraction": zero / classified if classified else 0.0,
            f"{PREFIX}/gen_batches": float(math.ceil(self._generated / max(1, batch_size))),
            f"{PREFIX}/budget_exhausted": float(self._exhausted),
        }
