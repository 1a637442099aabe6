"""Our trainer's jobs, each through its own module: step metrics, the rollout dump, the curriculum hook, the
composition with verl, and the driver refusing verl's old trainer (the end-to-end run: tests/e2e/test_grpo_cpu.py)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from verl_video.verl_adapter.agent_loop import DECODE_FAILED_FIELD
from verl_video.verl_adapter.curriculum_hook import curriculum_loader, index_scores
from verl_video.verl_adapter.resume import ResumableTrainer
from verl_video.verl_adapter.rollout_dump import with_reward_extras
from verl_video.verl_adapter.step_metrics import RunningTotals, cannot_learn_warning, data_metrics, step_metrics
from verl_video.verl_adapter.trainer import VideoTrainer

REPO_ROOT = Path(__file__).resolve().parents[1]


class FakeQueue:
    """TransferQueue's `kv_batch_get` over fixed rows: each field a list aligned with the batch's keys."""

    def __init__(self, keys: list[str], **fields: list) -> None:
        self.rows = {name: dict(zip(keys, values)) for name, values in fields.items()}

    def kv_batch_get(self, keys, partition_id, select_fields):
        missing = [field for field in select_fields if field not in self.rows]
        if missing:
            raise KeyError(f"no field {missing} in partition {partition_id}")
        return {field: np.array([self.rows[field][k] for k in keys], dtype=object) for field in select_fields}


def _batch(keys: list[str], padding: tuple[int, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(keys=keys, partition_id="train", tags=[{"is_padding": i in padding} for i in range(len(keys))])


def test_failed_decodes_count_once_per_prompt_and_add_up_over_steps():
    # Two prompts of n=2 trajectories; prompt "b" failed to decode (both its trajectories are flagged).
    keys = ["a_0_0", "a_1_0", "b_0_0", "b_1_0"]
    flags = [{}, {}, {DECODE_FAILED_FIELD: 1}, {DECODE_FAILED_FIELD: 1}]
    queue = FakeQueue(keys, extra_info=[{"data_replaced": 0}, {"data_replaced": 0}, {"data_replaced": 2}, {"data_replaced": 2}],
                      extra_fields=flags)
    totals = RunningTotals()
    first = data_metrics(queue, _batch(keys), totals, unreadable_at_start=3)
    second = data_metrics(queue, _batch(keys), totals, unreadable_at_start=3)
    assert first == {"data/replaced_total": 2.0, "data/unreadable_at_start": 3.0, "data/decode_failed_total": 1.0}
    assert second["data/decode_failed_total"] == 2.0 and second["data/replaced_total"] == 4.0


def test_a_family_that_fails_is_left_out_and_the_others_are_logged():
    # Rewards of group "a" agree, group "b" disagrees; the padding row (a zero reward) must not count.
    keys = ["a_0_0", "a_1_0", "b_0_0", "b_1_0", "a_2_0"]
    scores = [torch.tensor([0.0, 1.0]), torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.5]), torch.tensor([0.0])]
    queue = FakeQueue(keys, rm_scores=scores, extra_info=[{}] * 5, extra_fields=[{}] * 5)  # no data_source: rewards fail
    metrics = step_metrics(queue, _batch(keys, padding=(4,)), processor=None, totals=RunningTotals(),
                           unreadable_at_start=0, with_reference=True)
    assert metrics["groups/zero_variance_fraction"] == 0.5
    assert metrics["data/decode_failed_total"] == 0.0
    assert not any(key.startswith(("reward/", "video/", "rollout_vs_ref/")) for key in metrics)


def test_a_step_whose_groups_all_agree_says_it_cannot_learn(caplog):
    # Every rollout unparseable: every group's rewards are 0, GRPO's advantages all vanish.
    keys = ["a_0_0", "a_1_0", "b_0_0", "b_1_0"]
    # (token-level scores of different lengths, as verl stores them; the sum is each trajectory's reward)
    scores = [torch.tensor([0.0, 0.0]), torch.tensor([0.0]), torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0])]
    queue = FakeQueue(keys, rm_scores=scores, extra_info=[{}] * 4, extra_fields=[{}] * 4)
    with caplog.at_level("WARNING", logger="verl_video"):
        metrics = step_metrics(queue, _batch(keys), processor=None, totals=RunningTotals(), unreadable_at_start=0,
                               with_reference=False)
    assert metrics["groups/zero_variance_fraction"] == 1.0
    warnings = [r.getMessage() for r in caplog.records if "cannot learn" in r.getMessage()]
    assert len(warnings) == 1 and "100% of the prompt groups" in warnings[0] and "prompt_template" in warnings[0]
    # With the parse rate and cut responses known, the warning gives them.
    text = cannot_learn_warning({"groups/zero_variance_fraction": 1.0, "reward/demo/parse_ok": 0.0,
                                 "response_length/clip_ratio": 1.0})
    assert "answers parsed: 0%" in text and "cut at the length limit: 100%" in text
    # One group with a spread is enough for GRPO: no warning.
    assert cannot_learn_warning({"groups/zero_variance_fraction": 0.875}) is None


def test_rollout_dump_rows_get_their_reward_extras_and_validation_rows_are_left_alone():
    keys = ["p_0_0", "p_1_0"]
    queue = FakeQueue(keys, extra_fields=[{"reward_extra_info": {"iou": 0.25}},
                                          {"reward_extra_info": {"iou": 0.5, "parse_ok": 1.0}}])
    trained = _batch(keys)
    dump = with_reward_extras(queue, trained, {"uid": ["p_1_0", "p_0_0"]})
    assert dump == {"uid": ["p_1_0", "p_0_0"], "iou": [0.5, 0.25], "parse_ok": [1.0, None]}
    validation = {"uid": ["v_0_0"], "iou": [1.0]}
    assert with_reward_extras(queue, trained, dict(validation)) == validation
    assert with_reward_extras(queue, None, dict(validation)) == validation


def test_running_totals_continue_from_the_checkpoint_resumed_from():
    trainer = VideoTrainer.__new__(VideoTrainer)
    trainer.restore_resumable_state({"_replaced_total": 4, "_decode_failed_total": 1})
    keys = ["a_0_0"]
    queue = FakeQueue(keys, extra_info=[{"data_replaced": 1}], extra_fields=[{DECODE_FAILED_FIELD: 1}])
    metrics = data_metrics(queue, _batch(keys), trainer.totals, unreadable_at_start=0)
    assert metrics["data/replaced_total"] == 5.0 and metrics["data/decode_failed_total"] == 2.0
    assert trainer.resumable_state() == {"_replaced_total": 5, "_decode_failed_total": 2}


class HardestFirst(torch.utils.data.Sampler):
    """A curriculum stand-in: draws the indices by descending reward learned through `update`."""

    def __init__(self, data_source, data_config) -> None:
        self.size, self.reward = len(data_source), {}

    def __iter__(self):
        return iter(sorted(range(self.size), key=lambda i: (-self.reward.get(i, 0.0), i)))

    def __len__(self) -> int:
        return self.size

    def update(self, batch) -> None:
        self.reward.update(zip(batch["index"], batch["score"]))


def test_curriculum_sampler_orders_the_loader_and_learns_from_the_trained_batch():
    dataset = list(range(4))
    data_config = OmegaConf.create({"sampler": {"class_path": __file__, "class_name": "HardestFirst"},
                                    "dataloader_num_workers": 0})
    sampler, loader = curriculum_loader(data_config, dataset, StatefulDataLoader(dataset, batch_size=2))
    keys = ["a_0_0", "b_0_0", "pad_0_0"]
    queue = FakeQueue(keys, extra_info=[{"index": 3}, {"index": 1}, {"index": 0}],
                      rm_scores=[torch.tensor([0.0, 1.0]), torch.tensor([0.5]), torch.tensor([9.0])])
    sampler.update(index_scores(queue, _batch(keys, padding=(2,))))  # the padding row's reward must not count
    assert [batch.tolist() for batch in loader] == [[3, 1], [0, 2]]
    with_workers = OmegaConf.merge(data_config, {"dataloader_num_workers": 2})
    with pytest.raises(ValueError, match="dataloader_num_workers=0"):
        curriculum_loader(with_workers, dataset, StatefulDataLoader(dataset, batch_size=2))


def test_every_private_override_replaces_a_method_verl_has():
    # A private method verl renamed or dropped would silently stop being called: our job would vanish.
    for cls in (VideoTrainer, ResumableTrainer):
        private = [name for name in vars(cls) if name.startswith("_") and not name.startswith("__")
                   and callable(vars(cls)[name])]
        ours = {"_checkpoint_dir", "_mark_checkpoint"}  # helpers of the resume mixin, not overrides
        for name in set(private) - ours:
            assert callable(getattr(PPOTrainerSync, name, None)), f"{cls.__name__}.{name} overrides nothing in verl"


def test_verl_old_trainer_is_refused_before_ray_starts(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "verl_video.main", "trainer.use_v1=false", f"trainer.default_local_dir={tmp_path / 'out'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("verl-video: configuration error")]
    assert len(errors) == 1 and "trainer.use_v1=false" in errors[0] and "V1 trainer" in errors[0]
    # Nothing started: no run record written (it precedes Ray), no Ray instance.
    assert not (tmp_path / "out").exists()
    assert "Ray" not in result.stdout + result.stderr.replace(errors[0], "")
    # Imports only: ~8 s of CPU (30 s of wall clock on a loaded 2-core machine, hence CPU time for the bound).
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu_seconds < 30 and seconds < 180, (cpu_seconds, seconds)
