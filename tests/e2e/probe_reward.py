"""A `tvg` reward manager that also reports what multimodal input each trajectory carried.

Used only by the end-to-end test (selected with reward.reward_manager.source=importlib): the batch a
reward manager scores is the batch the actor trains on, so its `multi_modal_inputs` and prompt token ids
show whether the video reached the actor. The extra keys land in verl's rollout dump (trainer.rollout_data_dir).
"""

from __future__ import annotations

import torch

from verl_video.rewards.reward_manager import TVGRewardManager


class VideoProbeRewardManager(TVGRewardManager):
    """TVG rewards plus `probe_video_tokens` and `probe_grid_t/h/w` per trajectory."""

    def __init__(self, config, tokenizer, *args, **kwargs):
        super().__init__(config, tokenizer, *args, **kwargs)
        self.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")

    async def run_single(self, data):
        result = await super().run_single(data)
        item = data[-1]
        prompt_ids = item.batch["prompts"]
        prompt_mask = item.batch["attention_mask"][: prompt_ids.shape[-1]].bool()
        extra = result["reward_extra_info"]
        extra["probe_video_tokens"] = int((prompt_ids[prompt_mask] == self.video_token_id).sum())
        mm_inputs = item.non_tensor_batch.get("multi_modal_inputs") or {}
        grid = mm_inputs.get("video_grid_thw")
        grid = torch.as_tensor(grid).reshape(-1, 3) if grid is not None else torch.zeros(1, 3, dtype=torch.long)
        for axis, name in enumerate(("t", "h", "w")):
            extra[f"probe_grid_{name}"] = int(grid[0, axis])
        return result
