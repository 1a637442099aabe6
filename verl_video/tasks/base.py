"""The task interface: what a task declares so that a record can go from file to prompt to reward to metric.

A task is one small class, registered under its name (see registry.py):

    fields         the record fields it needs, each checked by `validate` (errors name the field)
    validate       problems of one record's task fields, as (field, message) pairs; empty when it is usable
                   (the spans, duration and clip of every record are checked apart, by annotations/checks.py)
    video_problems what the video reveals about the record (e.g. too few frames for its boxes)
    ground_truth   what the row's reward reads (`reward_model.ground_truth`), with an `answer_kind`
                   ("interval", "choice", "boxes") that tells the rewards how to read the answer
    prompts        user prompt templates by style ("think", "no_think"), `<video>` where the video goes
    default_preset the reward preset (rewards/presets.yaml or the run's presets file) its rows use when neither
                   the data_config entry nor the run's `task_presets` name one (rewards/scorer.py composite_for);
                   None: the run's `preset` option (reward.reward_kwargs.preset)
    metrics        evaluation metrics of one scored response (name -> value, names in `metric_keys`), averaged
                   per task; training and validation log them as `<task>/<name>` per data source

Records are the canonical ones (annotations/records.py): task fields that are not canonical live in `record.extra`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from verl_video.tasks.prompts import PromptTemplate
from verl_video.annotations.records import Record

PROMPT_STYLES = ("think", "no_think")


class Task:
    """Base class of a task; subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""
    # Record fields the task reads: canonical attributes (query, timestamps, duration) or `extra` keys.
    fields: ClassVar[tuple[str, ...]] = ()
    default_preset: ClassVar[str | None] = None
    prompts: ClassVar[Mapping[str, str]] = {}
    metric_keys: ClassVar[tuple[str, ...]] = ()
    # Whether the model must see exactly the frames `frame_indices` names (else frames are sampled by time).
    exact_frames: ClassVar[bool] = False

    def validate(self, record: Record) -> list[tuple[str, str]]:
        """(field, problem) for every problem of `record` for this task; the base checks presence."""
        return [(name, "missing field") for name in self.fields if _missing(field_value(record, name))]

    def video_problems(self, record: Record, num_frames: int) -> list[tuple[str, str]]:
        """(field, problem) that the video (`num_frames` frames, 0 when unknown) reveals; none by default."""
        return []

    def frame_indices(self, record: Record, num_frames: int) -> list[int] | None:
        """The exact source frames the model must see, in order, or None to sample by time (the default)."""
        return None

    def ground_truth(self, record: Record, duration: float | None) -> dict[str, Any]:
        """The row's reward ground truth for `record` (duration: seconds the model sees)."""
        raise NotImplementedError

    def prompt_values(self, record: Record, duration: float | None) -> dict[str, str]:
        """The values the prompt templates format in (`{query}`, `{duration}` and the task's own)."""
        return {"query": " ".join(str(record.query).split()), "duration": _seconds(duration)}

    def messages(self, record: Record, template: PromptTemplate, duration: float | None) -> list[dict]:
        """Chat messages of `record`: the task's prompt in the style the row's template asks for (think or not)."""
        style = PROMPT_STYLES[0] if template.think else PROMPT_STYLES[1]
        return [{"role": "user", "content": self.render_prompt(record, style, duration)}]

    def render_prompt(self, record: Record, style: str, duration: float | None) -> str:
        """The user prompt text (with `<video>`) of `record` in prompt `style`."""
        if style not in self.prompts:
            raise ValueError(f"task {self.name!r} has no {style!r} prompt; it has {', '.join(self.prompts)}")
        return self.prompts[style].format(**self.prompt_values(record, duration))

    def metrics(self, sample: Any) -> dict[str, float]:
        """Evaluation metrics of one scored response (a rewards `Sample` of this task's row)."""
        raise NotImplementedError

    def reference_answer(self, record: Record, duration: float | None) -> str:
        """The right answer as the prompt asks for it (answer blocks only), e.g. for a supervised warm start."""
        raise NotImplementedError(f"task {self.name!r} gives no reference answer")


def field_value(record: Record, name: str) -> Any:
    """A record field by name: a canonical attribute, else the `extra` key."""
    if name in ("query", "timestamps", "duration", "video"):
        return getattr(record, name)
    return record.extra.get(name)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple) and len(value) == 0)


def _seconds(duration: float | None) -> str:
    return f"{duration:.2f}" if duration is not None else ""
