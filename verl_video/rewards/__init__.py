"""Rewards for temporal video grounding: one answer parser, a reward library, YAML composites.

Registering the `video` reward manager with verl happens in `verl_video.verl_adapter.reward_manager`
(imported by the plugin), not here, so this package stays importable without verl.
"""

from .components import register_answer_kind
from .composite import Component, Composite, load_presets, register_preset
from .iou import best_iou, multi_iou, normalized_iou, temporal_iou, timestamp_iou
from .parser import ParserConfig, ParseResult, parse_interval, parse_intervals
from .registry import REWARDS, get_reward, register_reward
from .sample import Sample
from .scorer import RewardScorer

__all__ = [
    "Component",
    "Composite",
    "ParseResult",
    "ParserConfig",
    "REWARDS",
    "RewardScorer",
    "Sample",
    "best_iou",
    "get_reward",
    "load_presets",
    "multi_iou",
    "normalized_iou",
    "parse_interval",
    "parse_intervals",
    "register_answer_kind",
    "register_preset",
    "register_reward",
    "temporal_iou",
    "timestamp_iou",
]
