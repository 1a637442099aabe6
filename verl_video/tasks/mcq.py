"""Multiple-choice video QA: the answer is one option letter (VideoChat-R1's `mc_answer`)."""

from __future__ import annotations

from typing import Any

from verl_video.annotations.records import Record
from verl_video.rewards.choice import choice_letter
from verl_video.rewards.components import accuracy, parse_ok

from .base import Task
from .fields import numbered_options, options_problems
from .registry import register_task

_ANSWER_LETTER = "Give only the letter of the correct option inside <answer></answer>, for example <answer>B</answer>."


@register_task
class MultipleChoice(Task):
    """A question (`query`), its `options` and the correct one (`answer`: "B", "(B)" or a 0-based index)."""

    name = "mcq"
    fields = ("query", "options", "answer")
    default_preset = "mcq"
    metric_keys = ("accuracy", "parse_ok")
    prompts = {
        "think": "<video>\n{query}\nOptions:\n{options}\nReason about it inside <think></think>. Then " + _ANSWER_LETTER,
        "no_think": "<video>\n{query}\nOptions:\n{options}\n" + _ANSWER_LETTER,
    }

    def validate(self, record: Record) -> list[tuple[str, str]]:
        """Presence, then the options and that the answer is one of them."""
        return super().validate(record) or options_problems(record.extra["options"], record.extra["answer"])

    def ground_truth(self, record: Record, duration: float | None) -> dict[str, Any]:
        """The correct letter and how many options there are (a letter beyond them is no answer)."""
        options = record.extra["options"]
        return {"answer_kind": "choice", "answer": choice_letter(record.extra["answer"]), "num_options": len(options)}

    def prompt_values(self, record: Record, duration: float | None) -> dict[str, str]:
        """The question, and the options one per line with their letters."""
        return {**super().prompt_values(record, duration), "options": numbered_options(record.extra["options"])}

    def reference_answer(self, record: Record, duration: float | None) -> str:
        """The right letter."""
        return f"<answer>{choice_letter(record.extra['answer'])}</answer>"

    def metrics(self, sample: Any) -> dict[str, float]:
        """Accuracy and whether a letter could be read at all."""
        return {"accuracy": accuracy(sample), "parse_ok": parse_ok(sample)}
