"""`verl-video score` for the tasks other than grounding: each task's metrics, kept apart per task.

A predictions line of such a task carries `task` (its name), `response` (the model's text) and `ground_truth`
(the row's reward ground truth, as the task builds it: `verl_video/tasks/`), optionally `source` and `id`.
Lines are graded by their task's own metrics (`Task.metrics`), parse failures counted by status; a task's
numbers are never averaged with another task's, nor into the grounding report's R1@m.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verl_video.data.records import DEFAULT_TASK, GroundingRecord
from verl_video.evaluation.predictions import PredictionFileError, iter_objects
from verl_video.rewards import Sample
from verl_video.rewards.components import answer_status
from verl_video.tasks import get_task

TASK_JSON = "task_metrics.json"
TASK_MD = "task_metrics.md"


@dataclass
class TaskScores:
    """The mean of each metric of one task over its lines, the line count and the parse statuses."""

    task: str
    count: int = 0
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statuses: Counter = field(default_factory=Counter)

    @property
    def means(self) -> dict[str, float]:
        """Each metric's mean over the task's lines."""
        return {name: total / self.count for name, total in self.sums.items()}


def is_task_line(obj: Any) -> bool:
    """Whether a predictions line belongs to a task other than grounding (grounding lines keep their format)."""
    return isinstance(obj, Mapping) and obj.get("task") not in (None, "", DEFAULT_TASK)


def score_task_lines(path: str) -> dict[str, TaskScores]:
    """Grade every non-grounding line of a predictions file, per task; errors name file, line and field."""
    scores: dict[str, TaskScores] = {}
    for where, obj in iter_objects(path):
        if not is_task_line(obj):
            continue
        try:
            task = get_task(str(obj["task"]))
        except ValueError as exc:
            raise PredictionFileError(f"{where}: field 'task': {exc}") from None
        if not isinstance(obj.get("ground_truth"), Mapping):
            raise PredictionFileError(f"{where}: field 'ground_truth' must be the row's ground truth mapping")
        sample = Sample(obj.get("response") or "", obj["ground_truth"], {"task": task.name})
        entry = scores.setdefault(task.name, TaskScores(task.name))
        entry.count += 1
        # No response ever existed (eval: the video did not decode): counted apart, scored 0, as for grounding.
        failed = obj.get("response") is None and obj.get("error")
        entry.statuses["error" if failed else answer_status(sample)] += 1
        for metric, value in task.metrics(sample).items():
            entry.sums[metric] += float(value)
    return scores


def task_line(record: GroundingRecord, response: str | None) -> dict[str, Any]:
    """What `eval` writes for a record of a task other than grounding: its ground truth (as training's row
    has it), its parse status and its metrics (`score` recomputes them from `response` and `ground_truth`)."""
    task = get_task(record.task)
    truth = task.ground_truth(record, record.duration)
    sample = Sample(response or "", truth, {"task": task.name})
    return {"ground_truth": truth, "parse_status": answer_status(sample), **task.metrics(sample)}


def write_task_scores(scores: Mapping[str, TaskScores], out_dir: str) -> list[str]:
    """Write task_metrics.json (per task: count, metric means, parse statuses) and task_metrics.md into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    data = {t: {"count": e.count, "metrics": e.means, "parse_status": dict(sorted(e.statuses.items()))}
            for t, e in scores.items()}  # fmt: skip
    paths = [os.path.join(out_dir, TASK_JSON), os.path.join(out_dir, TASK_MD)]
    for path, text in zip(paths, (json.dumps(data, indent=2) + "\n", task_scores_markdown(scores))):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return paths


def task_scores_markdown(scores: Mapping[str, TaskScores]) -> str:
    """One table per task: its metrics (means) and parse status counts."""
    out = []
    for task, entry in scores.items():
        names = list(entry.means)
        out += [f"# {task}: {entry.count} samples", "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        out += ["| " + " | ".join(f"{entry.means[n]:.4f}" for n in names) + " |", ""]
        out += ["parse status counts: " + ", ".join(f"{k}: {v}" for k, v in sorted(entry.statuses.items())), ""]
    return "\n".join(out)
