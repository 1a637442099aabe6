"""Data selection: which records GRPO trains on (Time-R1 difficulty, Temporal-R1 variance, user strategies),
dynamic sampling during training, and a difficulty curriculum sampler."""

from verl_video.selection.stats import RecordStats
from verl_video.selection.strategies import Selection, register_strategy

__all__ = ["RecordStats", "Selection", "register_strategy"]
