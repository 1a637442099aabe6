"""Grounded video QA (NExT-GQA in VideoChat-R1): an option letter plus the evidence windows in `<glue>`."""

from __future__ import annotations

from typing import Any

from verl_video.annotations.records import Record
from verl_video.rewards.components import evidence_iou

from .mcq import MultipleChoice
from .registry import register_task

EVIDENCE_TAG = "glue"
_ANSWER = (
    "Give the letter of the correct option inside <answer></answer>, and the time windows in seconds of the "
    f"video parts your answer rests on inside <{EVIDENCE_TAG}></{EVIDENCE_TAG}> as [(start, end), ...], "
    f"for example <answer>B</answer><{EVIDENCE_TAG}>[(5.2, 10.4)]</{EVIDENCE_TAG}>."
)


@register_task
class GroundedQA(MultipleChoice):
    """A multiple-choice question whose evidence windows (`timestamps`, seconds) are also scored."""

    name = "grounded_qa"
    fields = ("query", "options", "answer", "timestamps")
    default_preset = "grounded_qa"
    metric_keys = ("accuracy", "parse_ok", "evidence_iou", "evidence_iou@0.5")
    prompts = {
        "think": "<video>\n{query}\nOptions:\n{options}\nReason about it inside <think></think>. Then " + _ANSWER,
        "no_think": "<video>\n{query}\nOptions:\n{options}\n" + _ANSWER,
    }

    def ground_truth(self, record: Record, duration: float | None) -> dict[str, Any]:
        """The letter, the option count, the evidence windows and where the answer puts its evidence."""
        return {
            **super().ground_truth(record, duration),
            "timestamps": record.timestamps,
            "duration": duration,
            "evidence_tag": EVIDENCE_TAG,
        }

    def reference_answer(self, record: Record, duration: float | None) -> str:
        """The right letter and the evidence windows."""
        windows = ", ".join(f"({start:.1f}, {end:.1f})" for start, end in record.timestamps)
        return f"{super().reference_answer(record, duration)}<{EVIDENCE_TAG}>[{windows}]</{EVIDENCE_TAG}>"

    def metrics(self, sample: Any) -> dict[str, float]:
        """Accuracy, evidence IoU (mean: mIoU) and evidence IoU >= 0.5, parse rate."""
        overlap = evidence_iou(sample, EVIDENCE_TAG)
        return {**super().metrics(sample), "evidence_iou": overlap, "evidence_iou@0.5": float(overlap >= 0.5)}
