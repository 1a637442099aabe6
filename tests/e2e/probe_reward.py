"""A `tvg` reward manager that also reports how many video tokens each trajectory's prompt carried.

Used only by the end-to-end test (selected with reward.reward_manager.source=importlib): the batch a
reward manager scores is the batch the actor trains on. The extra key lands in verl's rollout dump
(trainer.rollout_data_dir), one line per trajectory, next to the ground truth and its video duration.
"""

from __future__ import annotations

from verl_video.rewards.reward_manager import TVGRewardManager


class VideoProbeRewardManager(TVGRewardManager):
    """TVG rewards plus `probe_video_tokens`, the `<|video_pad|>` count of the trajectory's prompt."""

    def __init__(self, config, tokenizer, *args, **kwargs):
        super().__init__(config, tokenizer, *args, **kwargs)
        self.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")

    async def run_single(self, data):
        result = await super().run_single(data)
        item = data[-1]
        prompt_ids = item.batch["prompts"]
        prompt_mask = item.batch["attention_mask"][: prompt_ids.shape[-1]].bool()
        result["reward_extra_info"]["probe_video_tokens"] = int((prompt_ids[prompt_mask] == self.video_token_id).sum())
        return result
