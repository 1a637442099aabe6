"""Temporal video grounding: when does the sentence happen? The answer is one interval in seconds."""

from __future__ import annotations

from typing import Any

from verl_video.tasks.prompts import TEMPLATES, PromptTemplate, build_messages
from verl_video.annotations.records import DEFAULT_TASK, Record
from verl_video.rewards.grounding_metrics import per_sample_metrics
from verl_video.rewards.components import overlap_metrics

from .base import Task
from .registry import register_task


@register_task
class Grounding(Task):
    """One query, one or more ground-truth windows (the best-matching one counts)."""

    name = DEFAULT_TASK
    fields = ("query", "timestamps")
    default_preset = None  # the run's `preset` option, as before tasks existed
    metric_keys = tuple(per_sample_metrics(0.0, False))
    prompts = {"think": TEMPLATES["think"].user, "no_think": TEMPLATES["answer_only"].user}

    def messages(self, record: Record, template: PromptTemplate, duration: float | None) -> list[dict]:
        """The row's prompt template (a name in tasks/prompts.py or custom text) around the query, as always."""
        return build_messages(record.query, template, duration=duration)

    def ground_truth(self, record: Record, duration: float | None) -> dict[str, Any]:
        """The windows in seconds and the duration the model sees."""
        return {"timestamps": record.timestamps, "duration": duration}  # answer_kind "interval" is the default

    def reference_answer(self, record: Record, duration: float | None) -> str:
        """The first window as `<answer>s to e</answer>`."""
        start, end = record.timestamps[0]
        return f"<answer>{start:.2f} to {end:.2f}</answer>"

    def metrics(self, sample: Any) -> dict[str, float]:
        """IoU, parse rate and R1@m, exactly as `verl-video score` computes them (the row's diagnostics, reused)."""
        return overlap_metrics(sample)
