"""The trainer verl-video runs: verl's synchronous V1 PPO trainer plus grounding-specific step metrics.

Registered in verl's trainer registry as `video_sync` and selected by our config
(`trainer.v1.trainer_mode`). Each training step additionally logs
- `reward/<data_source>/<component>`: reward extras per data source (verl logs them only at validation);
- `data/unreadable_at_start`: records dropped at start-up because their video header could not be read
  (the overlong-prompt filter probes every header); `data/replaced_total`: records skipped so far during
  training because their video had become missing or unreadable (each replaced by the next good record);
  `data/decode_failed_total`: samples so far whose video failed to decode in the agent loop (after the
  header check passed): their trajectories were masked out of the advantage and the loss;
- `rollout_vs_ref/log_ppl_abs_diff` (with a reference policy): verl's rollout-vs-actor log-perplexity
  difference, taken against the reference policy instead; a rollout engine that never received the
  actor's updates stays at the reference, so this stays ~0 while `rollout_corr/log_ppl_abs_diff` grows;
- `video/*`: what video input the actor's batch carried (share of samples with a video grid, video
  tokens per sample, and how many samples' prompt placeholders disagree with their grid: always 0
  unless frames and prompt were built from different decodes).
- `groups/zero_variance_fraction`: share of the trained batch's prompt groups whose rewards all agree
  (GRPO gives them zero advantage).
A rollout worker that dies while the trainer waits for its groups fails the run with Ray's reason instead of
hanging it (verl_adapter/worker_watch.py).
The rollout dump (`trainer.rollout_data_dir`) also gets every reward component per trajectory, which
verl's V1 dump leaves out.

Selection hooks (verl_video/selection): `algorithm.filter_groups.*` runs verl's dynamic sampling bounded by
`max_num_gen_batches`, with `training/filter_groups/*` metrics (verl_adapter/dynamic_sampling.py);
`data.sampler.class_path/class_name` installs a curriculum sampler whose `update` gets each step's
rewards (selection/curriculum.py).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.rollout_corr_helper import compute_offpolicy_metrics
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu
from verl.utils.import_utils import load_extern_object

from verl_video.verl_adapter.worker_watch import watch_replay_buffer
from verl_video.verl_adapter.agent_loop import DECODE_FAILED_FIELD
from verl_video.models.family import video_geometry, video_token
from verl_video.verl_adapter.resume import ResumableTrainer
from verl_video.rewards.metrics import transfer_queue_batch_metrics
from verl_video.verl_adapter.dynamic_sampling import GroupFilter

logger = logging.getLogger("verl_video")

TRAINER_MODE = "video_sync"


def video_input_metrics(prompts: list[torch.Tensor], mm_inputs: list[Any], video_token_id: int, merge: int) -> dict:
    """`video/*` metrics for one batch from each sample's prompt ids and multimodal inputs."""
    with_grid, tokens, mismatched = 0, [], 0
    for prompt, inputs in zip(prompts, mm_inputs):
        grid = (inputs or {}).get("video_grid_thw") if isinstance(inputs, dict) else None
        placeholders = int((torch.as_tensor(prompt) == video_token_id).sum())
        expected = 0
        if grid is not None:
            with_grid += 1
            expected = int(torch.as_tensor(grid).reshape(-1, 3).prod(dim=-1).sum()) // (merge * merge)
        tokens.append(placeholders)
        mismatched += int(placeholders != expected)
    count = max(1, len(tokens))
    return {
        "video/with_grid_fraction": with_grid / count,
        "video/tokens_per_sample": float(np.mean(tokens)) if tokens else 0.0,
        "video/placeholder_grid_mismatches": float(mismatched),
    }


def _is_missing(value: Any) -> bool:
    """True for None and NaN (a mean over no sample)."""
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))


def zero_variance_fraction(groups) -> float:
    """Fraction of groups (lists of rewards) with more than one reward, all equal."""
    sized = [g for g in groups if len(g) > 1]
    return sum(float(np.std(g)) == 0.0 for g in sized) / len(sized) if sized else 0.0


def trajectory_order(keys: list[str]) -> list[int]:
    """Positions of TransferQueue keys (`{uid}_{rollout}_{turn}`) sorted by prompt, then rollout, then turn."""

    def sort_key(position: int) -> tuple:
        uid, _, rest = str(keys[position]).partition("_")
        numbers = tuple(int(part) if part.isdigit() else -1 for part in rest.split("_"))
        return (uid, numbers)

    return sorted(range(len(keys)), key=sort_key)


@register_trainer(TRAINER_MODE)
class VideoTrainer(ResumableTrainer, PPOTrainerSync):
    """verl's sync trainer; each step's metrics also carry reward extras per source and video-input checks."""

    # Running totals of the `data/*_total` metrics, carried across a restart (verl_video/verl_adapter/resume.py).
    RESUMABLE = ("_replaced_total", "_decode_failed_total")

    def resumable_state(self) -> dict:
        """The running totals, as logged at the last step."""
        return {name: getattr(self, name, 0) for name in self.RESUMABLE}

    def restore_resumable_state(self, state: dict) -> None:
        """Continue the totals of the run resumed from."""
        for name in self.RESUMABLE:
            setattr(self, name, int(state.get(name, 0)))

    def _build_replay_buffer(self):
        # verl branches on the mode NAME in several places (replay buffer class, one-prompt dataloader
        # fetches, TransferQueue state in checkpoints, re-issuing prompts on resume): "video_sync" would
        # get the async behaviour. We are verl's sync trainer plus metrics, so say so.
        self.trainer_mode = "sync"
        buffer = super()._build_replay_buffer()
        # Only verl's own sync buffer is bounded; a user's custom sampler owns its filtering.
        if type(buffer) is ReplayBuffer and buffer.filter_groups_metric is not None:
            bound = int(self.config.algorithm.filter_groups.get("max_num_gen_batches", 0) or 0)
            logger.warning("verl-video: dynamic sampling on %r; max_num_gen_batches=%d is honoured by "
                           "verl_video.verl_adapter.dynamic_sampling (verl's warning above does not apply)",
                           buffer.filter_groups_metric, bound)
            buffer = GroupFilter.adopt(buffer, bound)
        return buffer

    def fit(self, agent_loop_manager):
        # verl waits for the workers' groups without watching the workers (verl_adapter/worker_watch.py).
        watch_replay_buffer(self.replay_buffer, agent_loop_manager.agent_loop_workers)
        return super().fit(agent_loop_manager)

    def _validate(self) -> dict[str, float]:
        # Every row carries every task's metric keys (verl needs equal keys), so a validation set without a
        # task gets NaN means for it (its file logger writes them as null): a metric of no sample is not logged.
        return {key: value for key, value in super()._validate().items() if not _is_missing(value)}

    def prepare_step(self) -> dict:
        result = super().prepare_step()
        if isinstance(self.replay_buffer, GroupFilter):
            self.replay_buffer.note_dispatched(int(self.config.data.train_batch_size))
        return result

    def _init_dataloader(self):
        super()._init_dataloader()
        sampler_config = self.config.data.get("sampler", None)
        self.curriculum = None
        if not sampler_config or not sampler_config.get("class_path"):
            return
        if self.config.data.dataloader_num_workers != 0:
            raise ValueError("data.sampler: a curriculum sampler needs data.dataloader_num_workers=0 (its update() "
                             "runs in the trainer; dataloader workers would keep drawing from stale copies)")
        sampler_cls = load_extern_object(sampler_config.class_path, sampler_config.class_name)
        self.curriculum = sampler_cls(data_source=self.train_dataset, data_config=self.config.data)
        loader = self.train_dataloader
        self.train_dataloader = StatefulDataLoader(dataset=self.train_dataset, batch_size=loader.batch_size,
                                                   num_workers=0, drop_last=True, collate_fn=loader.collate_fn,
                                                   sampler=self.curriculum)

    def step(self, metrics: dict, timing_raw: dict):
        batch = super().step(metrics, timing_raw)
        if getattr(self, "curriculum", None) is not None:
            self.curriculum.update(self._index_scores(batch))
        return batch

    @staticmethod
    def _index_scores(batch) -> dict[str, list]:
        """Dataset index and reward of each trajectory of a trained batch (padding rows left out)."""
        data = trainer_base.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                            select_fields=["extra_info", "rm_scores"])
        keep = [not (tag or {}).get("is_padding", False) for tag in batch.tags]
        infos, scores = list(data["extra_info"]), list(data["rm_scores"])
        return {"index": [(info or {}).get("index") for info, k in zip(infos, keep) if k],
                "score": [float(torch.as_tensor(s).sum()) for s, k in zip(scores, keep) if k]}

    def _fetch_one_gen_batch(self):
        # verl names prompts with random uuids; the batch later arrives in completion order. A uid that
        # starts with (step, position) lets _balance_batch restore one order whatever finished first.
        batch = super()._fetch_one_gen_batch()
        uids = list(batch["uid"])
        start = getattr(self, "_prompts_fetched", 0)
        self._prompts_fetched = start + len(uids)
        tu.assign_non_tensor_stack(batch, "uid", [f"{self.global_steps:09d}-{start + i:09d}-{uid}" for i, uid in enumerate(uids)])
        return batch

    def _balance_batch(self, batch, metrics, logging_prefix="global_seqlen", keep_minibatch=False):
        # Same samples in the same order on every run: micro-batches, and so the float sums of the
        # update, then do not depend on which rollout finished first.
        batch.reorder(trajectory_order(list(batch.keys)))
        return super()._balance_batch(batch, metrics, logging_prefix=logging_prefix, keep_minibatch=keep_minibatch)

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        result = super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        for name, compute in (
            ("reward", self._reward_metrics),
            ("video", self._video_metrics),
            ("data", self._data_metrics),
            ("rollout_vs_ref", self._rollout_vs_reference_metrics),
            ("groups", self._group_metrics),
        ):
            try:
                metrics.update(compute(batch))
            except Exception as exc:  # a metric must never stop training
                logger.warning("verl-video: %s metrics failed: %s: %s", name, type(exc).__name__, exc)
        return result

    def _log_rollout_data(self, batch, timing_raw, rollout_data_dir):
        # verl's dump builds its rows from this batch; remember it so _dump_generations can add reward extras.
        self._dumping_batch = batch
        try:
            return super()._log_rollout_data(batch, timing_raw, rollout_data_dir)
        finally:
            self._dumping_batch = None

    def _dump_generations(self, inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path):
        batch = getattr(self, "_dumping_batch", None)
        if batch is not None and "uid" in reward_extra_infos_dict:
            try:
                reward_extra_infos_dict.update(self._reward_extras(batch, reward_extra_infos_dict["uid"]))
            except Exception as exc:  # the dump is a convenience; never fail a step on it
                logger.warning("verl-video: reward extras left out of the rollout dump: %s", exc)
        return super()._dump_generations(inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path)

    @staticmethod
    def _reward_extras(batch, keys: list) -> dict[str, list]:
        """Each reward_extra_info key as a list aligned with `keys` (the dump's row order)."""
        data = trainer_base.tq.kv_batch_get(keys=list(keys), partition_id=batch.partition_id, select_fields=["extra_fields"])
        fields = list(data["extra_fields"])
        infos = [(f.get("reward_extra_info") if isinstance(f, dict) else None) or {} for f in fields]
        names = dict.fromkeys(name for info in infos for name in info)
        return {name: [info.get(name) for info in infos] for name in names}

    def _data_metrics(self, batch) -> dict:
        """Count each prompt's replaced records and failed decodes once (its n trajectories share the prompt)."""
        data = trainer_base.tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_info", "extra_fields"]
        )
        replaced_by_prompt, failed_prompts = {}, set()
        for key, info, fields in zip(batch.keys, list(data["extra_info"]), list(data["extra_fields"])):
            prompt_uid = str(key).rsplit("_", 2)[0]
            replaced_by_prompt[prompt_uid] = int((info or {}).get("data_replaced", 0) or 0)
            if isinstance(fields, dict) and fields.get(DECODE_FAILED_FIELD):
                failed_prompts.add(prompt_uid)
        self._replaced_total = getattr(self, "_replaced_total", 0) + sum(replaced_by_prompt.values())
        self._decode_failed_total = getattr(self, "_decode_failed_total", 0) + len(failed_prompts)
        return {
            "data/replaced_total": float(self._replaced_total),
            "data/unreadable_at_start": float(getattr(self.train_dataset, "unreadable_videos", 0)),
            "data/decode_failed_total": float(self._decode_failed_total),
        }

    def _rollout_vs_reference_metrics(self, batch) -> dict:
        """How far the rollout engine's log-probs are from the reference policy's (only with a reference)."""
        if not getattr(self, "use_reference_policy", False):
            return {}
        fields = ["response_mask", "rollout_log_probs", "ref_log_prob"]
        data = trainer_base.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        if any(field not in data.keys() for field in fields):
            return {}
        padded = data.to_padded_tensor()
        diff = compute_offpolicy_metrics(padded["ref_log_prob"], padded["rollout_log_probs"], padded["response_mask"])
        return {"rollout_vs_ref/log_ppl_abs_diff": diff["log_ppl_abs_diff"]}

    def _group_metrics(self, batch) -> dict:
        """Share of the batch's prompt groups whose rewards are all equal (no GRPO signal)."""
        data = trainer_base.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                            select_fields=["rm_scores"])
        groups: dict[str, list[float]] = {}
        for key, tag, score in zip(batch.keys, batch.tags, list(data["rm_scores"])):
            if not (tag or {}).get("is_padding", False):
                groups.setdefault(str(key).split("_")[0], []).append(float(torch.as_tensor(score).sum()))
        return {"groups/zero_variance_fraction": zero_variance_fraction(groups.values())}

    def _reward_metrics(self, batch) -> dict:
        return transfer_queue_batch_metrics(trainer_base.tq, batch)

    def _video_metrics(self, batch) -> dict:
        processor = getattr(self, "processor", None)
        if processor is None:
            return {}
        _, video_token_id = video_token(processor)
        merge = video_geometry(processor).merge_size
        data = trainer_base.tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["prompts", "multi_modal_inputs"]
        )
        keep = [i for i, tag in enumerate(batch.tags) if not (tag or {}).get("is_padding", False)]
        prompts = [data["prompts"][i] for i in keep]
        mm_inputs = data["multi_modal_inputs"]
        mm_inputs = [mm_inputs[i] for i in keep]
        return video_input_metrics(prompts, mm_inputs, video_token_id, merge)
