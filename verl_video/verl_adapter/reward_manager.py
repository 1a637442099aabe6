"""The `video` reward manager for verl 0.9.1's reward loop (`reward.reward_manager.name=video`).

Importing this module registers it (verl_video.verl_adapter.plugin does so in every process). Options come from
`reward.reward_kwargs` (the mapping verl's own DAPO manager reads), e.g.

    reward.reward_manager.name=video
    +reward.reward_kwargs.preset=time_r1            # default: "default" (Time-R1's tIoU + partial format)
    +reward.reward_kwargs.strictness=strict         # format strictness for every preset
    +reward.reward_kwargs.task_presets.mcq=my_mcq   # preset per task
    +reward.reward_kwargs.presets_file=/path/presets.yaml
    '+reward.reward_kwargs.modules=[/path/my_rewards.py]'

See docs/rewards.md for every option.
"""

from __future__ import annotations

import logging
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from verl_video.annotations.data_config import data_config_modules
from verl_video.rewards.scorer import RewardScorer

logger = logging.getLogger("verl_video.rewards")

# An agent loop whose response holds several turns (`video_search`) records in its extra fields where the
# model's final turn starts in the response; only that turn is scored. Absent (single-turn loops): 0.
FINAL_TURN_START = "final_turn_start"


def final_turn_start(extras: Any) -> int:
    """Where the final model turn starts in a row's response: its agent loop's extra field, else 0.

    verl hands the reward manager a loop's extra fields under `tool_extra_fields` when it scores inside the
    agent loop, and as columns of their own when it scores a finished batch.
    """
    fields = extras.get("tool_extra_fields")
    value = fields.get(FINAL_TURN_START) if isinstance(fields, dict) else None
    if value is None:
        value = extras.get(FINAL_TURN_START)
    return 0 if value is None else int(value)


def final_turn_text(tokenizer: Any, response_ids: Any, valid_length: int, extras: Any) -> str:
    """The text scored for a response: its final model turn (`final_turn_start`) up to `valid_length`."""
    start = min(final_turn_start(extras), valid_length)
    return tokenizer.decode(response_ids[start:valid_length], skip_special_tokens=True)


@register("video")
class VideoRewardManager(RewardManagerBase):
    """Rule-based rewards for every task: one composite per row, every component logged per data source."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        reward_config = config.get("reward") or {}
        if (reward_config.get("custom_reward_function") or {}).get("path"):
            logger.warning("verl-video: reward_manager=video ignores custom_reward_function; use reward_manager=naive")
        # The data_configs' `modules:` (user tasks, rewards, presets), also when verl's own entry point started the run.
        data = config.get("data") or {}
        data_config_modules(data.get("train_files"), data.get("val_files"))
        self.scorer = RewardScorer.from_kwargs(reward_config.get("reward_kwargs"))

    async def run_single(self, data: DataProto) -> dict:
        """Score the last sequence of `data`: `{"reward_score": float, "reward_extra_info": {...}}`."""
        item = data[-1]
        response_ids = item.batch["responses"]
        valid_length = item.batch["attention_mask"][-response_ids.shape[-1] :].sum()
        extras = item.non_tensor_batch
        # Scoring takes tens of microseconds: an executor hop would cost more than it saves.
        response = final_turn_text(self.tokenizer, response_ids, int(valid_length), extras)
        result = self.scorer(
            extras.get("data_source", "unknown"),
            response,
            (extras.get("reward_model") or {}).get("ground_truth"),
            extras.get("extra_info") or {},
        )
        return {"reward_score": result["score"], "reward_extra_info": result}


# The name this manager had when it scored grounding only; configs written then keep working.
register("tvg")(VideoRewardManager)

