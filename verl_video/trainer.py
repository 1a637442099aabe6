"""The trainer verl-video runs: verl's synchronous V1 PPO trainer plus grounding-specific step metrics.

Registered in verl's trainer registry as `grounding_sync` and selected by our config
(`trainer.v1.trainer_mode`). Each training step additionally logs
- `reward/<data_source>/<component>`: reward extras per data source (verl logs them only at validation);
- `data/unreadable_at_start`: records dropped at start-up because their video header could not be read
  (the overlong-prompt filter probes every header); `data/replaced_total`: records skipped so far during
  training because their video had become missing or unreadable (each replaced by the next good record);
  `data/decode_failed_total`: samples so far whose video failed to decode in the agent loop (after the
  header check passed): their trajectories were masked out of the advantage and the loss;
- `video/*`: what video input the actor's batch carried (share of samples with a video grid, video
  tokens per sample, and how many samples' prompt placeholders disagree with their grid: always 0
  unless frames and prompt were built from different decodes).
The rollout dump (`trainer.rollout_data_dir`) also gets every reward component per trajectory, which
verl's V1 dump leaves out.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu

from verl_video.data.agent_loop import DECODE_FAILED_FIELD
from verl_video.resume import ResumableTrainer
from verl_video.rewards.metrics import transfer_queue_batch_metrics

logger = logging.getLogger("verl_video")

TRAINER_MODE = "grounding_sync"


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


def trajectory_order(keys: list[str]) -> list[int]:
    """Positions of TransferQueue keys (`{uid}_{rollout}_{turn}`) sorted by prompt, then rollout, then turn."""

    def sort_key(position: int) -> tuple:
        uid, _, rest = str(keys[position]).partition("_")
        numbers = tuple(int(part) if part.isdigit() else -1 for part in rest.split("_"))
        return (uid, numbers)

    return sorted(range(len(keys)), key=sort_key)


@register_trainer(TRAINER_MODE)
class GroundingSyncTrainer(ResumableTrainer, PPOTrainerSync):
    """verl's sync trainer; each step's metrics also carry reward extras per source and video-input checks."""

    # Running totals of the `data/*_total` metrics, carried across a restart (verl_video/resume.py).
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
        # fetches, TransferQueue state in checkpoints, re-issuing prompts on resume): "grounding_sync" would
        # get the async behaviour. We are verl's sync trainer plus metrics, so say so.
        self.trainer_mode = "sync"
        return super()._build_replay_buffer()

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

    def _reward_metrics(self, batch) -> dict:
        return transfer_queue_batch_metrics(trainer_base.tq, batch)

    def _video_metrics(self, batch) -> dict:
        processor = getattr(self, "processor", None)
        video_token_id = getattr(getattr(processor, "tokenizer", None), "convert_tokens_to_ids", lambda _: None)(
            "<|video_pad|>"
        )
        if processor is None or video_token_id is None:
            return {}
        data = trainer_base.tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=["prompts", "multi_modal_inputs"]
        )
        keep = [i for i, tag in enumerate(batch.tags) if not (tag or {}).get("is_padding", False)]
        prompts = [data["prompts"][i] for i in keep]
        mm_inputs = data["multi_modal_inputs"]
        mm_inputs = [mm_inputs[i] for i in keep]
        merge = getattr(getattr(processor, "video_processor", None), "merge_size", 2)
        return video_input_metrics(prompts, mm_inputs, video_token_id, merge)
