"""A `video` reward manager that also reports what each trajectory's prompt carried.

Used only by the end-to-end test (selected with reward.reward_manager.source=importlib): the batch a
reward manager scores is the batch the actor trains on. The extra keys land in verl's rollout dump
(trainer.rollout_data_dir), one line per trajectory, next to the ground truth and its video duration:
`probe_video_tokens` (the prompt's video tokens), `probe_decode_failed` (the agent loop's flag for a
video that failed to decode, whose trajectory it masked out of training) and `probe_id` (the record's id,
to compare the data order of two runs).
"""

from __future__ import annotations

from verl_video.verl_adapter.agent_loop import DECODE_FAILED_FIELD
from verl_video.verl_adapter.reward_manager import VideoRewardManager


class VideoProbeRewardManager(VideoRewardManager):
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
        agent_fields = item.non_tensor_batch.get("tool_extra_fields") or {}
        result["reward_extra_info"]["probe_decode_failed"] = int(bool(agent_fields.get(DECODE_FAILED_FIELD)))
        result["reward_extra_info"]["probe_id"] = str((item.non_tensor_batch.get("extra_info") or {}).get("id"))
        return result
