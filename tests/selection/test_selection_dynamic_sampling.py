"""Dynamic sampling: verl's sync replay buffer with our bound, on an in-memory TransferQueue.

The fake queue stores what verl's buffer reads (prompt tags, trajectory tags and rm_scores); its refill
dispatches prompts whose groups finish at once with scripted rewards, so each test knows which groups
have zero variance.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1 import replay_buffer as rb

from verl_video.verl_adapter.dynamic_sampling import PREFIX, GroupFilter
from verl_video.verl_adapter.step_metrics import zero_variance_fraction

ROLLOUTS = 4
BATCH = 4


class FakeQueue:
    """kv_list / kv_batch_get / kv_clear over dicts; `dispatch` plays the rollout of new prompts."""

    def __init__(self, rewards_by_position):
        self.tags = defaultdict(dict)
        self.values = defaultdict(dict)
        self.rewards_by_position = rewards_by_position
        self.position = 0
        self.step = 1

    def kv_list(self, partition_id=None):
        if partition_id is not None:
            return {partition_id: dict(self.tags[partition_id])}
        return {pid: dict(items) for pid, items in self.tags.items()}

    def kv_batch_get(self, keys, partition_id, select_fields):
        return {field: [self.values[partition_id][k][field] for k in keys] for field in select_fields}

    def kv_clear(self, keys, partition_id):
        for key in keys:
            self.tags[partition_id].pop(key, None)
            self.values[partition_id].pop(key, None)

    def dispatch(self, count: int) -> int:
        for _ in range(count):
            uid = f"{self.step:09d}-{self.position:09d}-x"
            rewards = self.rewards_by_position(self.position)
            self.tags["train"][uid] = {"is_prompt": True, "status": "finished", "global_steps": self.step}
            for i, reward in enumerate(rewards):
                key = f"{uid}_{i}_0"
                self.tags["train"][key] = {"global_steps": self.step}
                self.values["train"][key] = {"rm_scores": torch.tensor([0.0, float(reward)])}
            self.position += 1
        return count

    def group_rewards(self, batch: KVBatchMeta) -> dict[str, list[float]]:
        groups = defaultdict(list)
        for key in batch.keys:
            groups[key.split("_")[0]].append(float(self.values["train"][key]["rm_scores"].sum()))
        return groups


def make_buffer(queue: FakeQueue, monkeypatch, max_num_gen_batches: int) -> GroupFilter:
    monkeypatch.setattr(rb, "tq", queue)
    buffer = rb.ReplayBuffer(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None,
                             max_off_policy_strategy="drop", sampler_kwargs={}, poll_interval=0.0,
                             refill_fn=queue.dispatch, filter_groups_metric="reward", train_batch_size=BATCH,
                             gen_batch_size=1, max_inflight_gen_batches=1)
    return GroupFilter.adopt(buffer, max_num_gen_batches)


def first_step(queue: FakeQueue, buffer: GroupFilter):
    queue.dispatch(BATCH)  # what the trainer's prepare_step submits
    buffer.note_dispatched(BATCH)
    return buffer.sample(global_steps=1, partition_id="train", batch_size=BATCH)


def test_zero_variance_groups_are_replaced_and_the_batch_stays_full(monkeypatch):
    # Every other prompt's group agrees on its reward.
    queue = FakeQueue(lambda p: [1.0] * ROLLOUTS if p % 2 == 0 else [0.0, 1.0, 0.5, 1.0])
    buffer = make_buffer(queue, monkeypatch, max_num_gen_batches=4)
    batch, metrics = first_step(queue, buffer)
    groups = queue.group_rewards(batch)
    assert len(groups) == BATCH and all(len(r) == ROLLOUTS for r in groups.values())
    assert all(np.std(r) > 0 for r in groups.values())
    assert metrics[f"{PREFIX}/groups_kept"] == BATCH
    assert metrics[f"{PREFIX}/groups_generated"] == queue.position >= 2 * BATCH
    assert metrics[f"{PREFIX}/zero_variance_fraction"] == pytest.approx(0.5, abs=0.15)
    assert metrics[f"{PREFIX}/gen_batches"] == -(-queue.position // BATCH)
    assert metrics[f"{PREFIX}/budget_exhausted"] == 0.0
    # Surplus groups are dropped by position, not by set order: the earliest non-zero groups are kept.
    assert sorted(groups) == sorted(groups)[:BATCH] and sorted(groups)[0].startswith("000000001-000000001")


def test_the_bound_stops_filtering_and_still_fills_the_batch(monkeypatch):
    queue = FakeQueue(lambda p: [1.0] * ROLLOUTS)  # no group ever varies: unbounded DAPO would never finish
    buffer = make_buffer(queue, monkeypatch, max_num_gen_batches=2)
    batch, metrics = first_step(queue, buffer)
    assert len(queue.group_rewards(batch)) == BATCH
    assert metrics[f"{PREFIX}/budget_exhausted"] == 1.0
    assert metrics[f"{PREFIX}/zero_variance_fraction"] == 1.0
    # Refills already promised for earlier evictions may pass the bound, never by more than a batch.
    assert 2 * BATCH <= queue.position <= 3 * BATCH


def test_counters_restart_each_step(monkeypatch):
    queue = FakeQueue(lambda p: [1.0] * ROLLOUTS if p % 2 == 0 else [0.0, 1.0, 0.5, 1.0])
    buffer = make_buffer(queue, monkeypatch, max_num_gen_batches=4)
    first_step(queue, buffer)
    queue.step = 2
    queue.dispatch(BATCH)
    before = queue.position - BATCH
    buffer.note_dispatched(BATCH)
    _, metrics = buffer.sample(global_steps=2, partition_id="train", batch_size=BATCH)
    assert metrics[f"{PREFIX}/groups_generated"] == queue.position - before


def test_zero_variance_fraction_counts_groups_that_all_agree():
    assert zero_variance_fraction([[1.0, 1.0], [0.0, 1.0], [0.5, 0.5], [2.0]]) == pytest.approx(2 / 3)
    assert zero_variance_fraction([]) == 0.0
