"""The task-dependent parts of a training or evaluation row: prompt, ground truth, video request, preset.

The data pipeline calls `task_row` for every item, so the pipeline itself never branches on a task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from verl_video.video.probe import probe_video
from verl_video.tasks.prompts import PromptTemplate
from verl_video.annotations.records import DEFAULT_FRAME_RATE_KEY, Record
from verl_video.video.loader import VideoRequest

from verl_video.tasks.base import Task
from verl_video.tasks.registry import get_task

# Templates that only choose a prompt style (think or not): every task honours them, whatever its prompts.
STYLE_TEMPLATES = ("think", "answer_only")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class TaskRow:
    """What a row takes from the record's task."""

    messages: list[dict]
    ground_truth: dict[str, Any]
    video: VideoRequest
    reward_preset: str | None


def record_frame_rate(record: Record, default: float | None = None) -> float | None:
    """The frame rate of the record's video when it is a folder of frames (record's own, else `default`)."""
    rate = record.extra.get(DEFAULT_FRAME_RATE_KEY)
    return float(rate) if rate else default


def task_problems(record: Record) -> list[tuple[str, str]]:
    """(field, problem) of the record's task fields; an unknown task is a problem of field `task`."""
    try:
        return get_task(record.task).validate(record)
    except ValueError as exc:
        return [("task", str(exc))]


def uses_templates(task_name: str) -> bool:
    """Whether the task writes its prompt from the row's template (grounding), not only its style from it."""
    try:
        return type(get_task(task_name)).messages is not Task.messages
    except ValueError:
        return True  # an unknown task is reported as such, not as a template problem


def drop_reason(changes: list[str], problems: list[tuple[str, str]]) -> str:
    """Why training leaves a record out, numbers blanked so that records dropped for one reason count together."""
    if problems:
        text = f"{problems[0][0]}: {problems[0][1]}"
    else:
        text = next((c.removeprefix("dropped: ") for c in changes if c.startswith("dropped: ")), "unusable record")
    return text if text.startswith("task: ") else _NUMBER.sub("#", text)


def task_row(
    record: Record, template: PromptTemplate, duration: float | None, video: VideoRequest,
    reward_preset: str | None = None,
) -> TaskRow:  # fmt: skip
    """Messages, ground truth, the video request (exact frames when the task needs them) and the entry's preset.

    The task's own default preset is not copied into the row: the scorer applies it after the run's
    `task_presets` (rewards/scorer.py `composite_for`, the one place that picks a row's preset).
    """
    task = get_task(record.task)
    messages = task.messages(record, template, duration)
    return TaskRow(messages, task.ground_truth(record, duration), task_video(record, video), reward_preset)


def task_video(record: Record, video: VideoRequest) -> VideoRequest:
    """The video request the record's task shows the model: `video`, or its exact frames when the task needs them."""
    task = get_task(record.task)
    if not task.exact_frames:
        return video
    total = probe_video(video.path, video.frame_rate).num_frames
    return replace(video, frame_indices=tuple(task.frame_indices(record, total)))
