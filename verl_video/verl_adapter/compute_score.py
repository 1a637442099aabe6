"""verl's custom-reward-function entry point, backed by the same scorer as the `video` reward manager.

    reward.custom_reward_function.path=<site-packages or repo>/verl_video/verl_adapter/compute_score.py
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.preset=temporal_r1     # optional, same options as the manager

verl's `naive` manager calls it per response and logs every key of the returned dict as a metric.
"""

from __future__ import annotations

import json
from typing import Any

from verl_video.rewards.scorer import RewardScorer

_SCORERS: dict[str, RewardScorer] = {}
# verl adds these call-time arguments when a reward model router is configured; they are not reward options.
_NOT_OPTIONS = ("reward_router_address", "reward_model_tokenizer")


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None, **reward_kwargs: Any
) -> dict[str, float]:
    """Score one response: `{"score": total, <component>: value, "parse_ok": 0/1, ...}`."""
    options = {k: v for k, v in reward_kwargs.items() if k not in _NOT_OPTIONS}
    key = json.dumps(options, sort_keys=True, default=str)
    scorer = _SCORERS.get(key)
    if scorer is None:
        scorer = _SCORERS[key] = RewardScorer.from_kwargs(options)
    return scorer(data_source, solution_str, ground_truth, extra_info)
