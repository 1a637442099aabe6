"""`verl-video score` for the tasks other than grounding: each task's metrics, kept apart per task.

A predictions line of such a task carries `task` (its name), `response` (the model's text) and `ground_truth`
(the row's reward ground truth, as the task builds it: `verl_video/tasks/`), optionally `source` and `id`.
Lines are graded by their task's own metrics (`Task.metrics`), parse failures counted by status; a task's
numbers are never averaged with another task's, nor into the grounding report's R1@m. Each task is also broken
down by source, video duration and any `--by` field (`breakdown.py`), and plotted per source (`plots.py`).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from verl_video.annotations.records import DEFAULT_TASK, Record
from verl_video.evaluation.breakdown import ALL_TASK_DIMENSIONS, Buckets, break_down, make_dimensions
from verl_video.evaluation.predictions import PredictionFileError, iter_objects
from verl_video.rewards import Sample
from verl_video.rewards.components import answer_status
from verl_video.rewards.parser import OK
from verl_video.tasks import get_task

TASK_JSON = "task_metrics.json"
TASK_MD = "task_metrics.md"


@dataclass(frozen=True)
class TaskSample:
    """One graded line of a task: the line itself (for breakdowns), its metrics and its parse status."""

    fields: Mapping[str, Any]
    metrics: Mapping[str, float]
    status: str


@dataclass
class TaskScores:
    """One task's graded lines, with their metric means, parse statuses and breakdowns."""

    task: str
    samples: list[TaskSample] = field(default_factory=list)
    breakdowns: dict[str, dict[str, TaskScores]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """The number of lines."""
        return len(self.samples)

    @property
    def means(self) -> dict[str, float]:
        """Each metric's mean over the task's lines."""
        sums: dict[str, float] = {}
        for sample in self.samples:
            for name, value in sample.metrics.items():
                sums[name] = sums.get(name, 0.0) + float(value)
        return {name: total / self.count for name, total in sums.items()}

    @property
    def statuses(self) -> Counter:
        """How many lines had each parse status."""
        return Counter(sample.status for sample in self.samples)

    def summary(self) -> dict[str, Any]:
        """Count, metric means, parse failures (lines not `ok`) and parse status counts, as JSON."""
        statuses = self.statuses
        return {"count": self.count, "metrics": self.means, "parse_failures": self.count - statuses[OK],
                "parse_status": dict(sorted(statuses.items()))}

    def break_down(self, fields: Sequence[str] = (), buckets: dict[str, Buckets] | None = None) -> None:
        """Group the lines by source, duration and each named field (grounding's moment dimensions do not apply)."""
        dims = make_dimensions(fields, buckets, builtins=ALL_TASK_DIMENSIONS)
        self.breakdowns = break_down(self.samples, lambda sample: sample.fields,
                                     lambda members: TaskScores(self.task, members), dims, fields)


def is_task_line(obj: Any) -> bool:
    """Whether a predictions line belongs to a task other than grounding (grounding lines keep their format)."""
    return isinstance(obj, Mapping) and obj.get("task") not in (None, "", DEFAULT_TASK)


def score_task_lines(path: str, fields: Sequence[str] = (),
                     buckets: dict[str, Buckets] | None = None) -> dict[str, TaskScores]:
    """Grade every non-grounding line of a predictions file, per task, with breakdowns; errors name file, line
    and field."""
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
        # No response ever existed (eval: the video did not decode): counted apart, scored 0, as for grounding.
        failed = obj.get("response") is None and obj.get("error")
        metrics = {name: float(value) for name, value in task.metrics(sample).items()}
        entry = scores.setdefault(task.name, TaskScores(task.name))
        entry.samples.append(TaskSample(obj, metrics, "error" if failed else answer_status(sample)))
    for entry in scores.values():
        entry.break_down(fields, buckets)
    return scores


def task_line(record: Record, response: str | None) -> dict[str, Any]:
    """What `eval` writes for a record of a task other than grounding: its ground truth (as training's row
    has it), its parse status and its metrics (`score` recomputes them from `response` and `ground_truth`)."""
    task = get_task(record.task)
    truth = task.ground_truth(record, record.duration)
    sample = Sample(response or "", truth, {"task": task.name})
    return {"ground_truth": truth, "parse_status": answer_status(sample), **task.metrics(sample)}


def task_scores_json(scores: Mapping[str, TaskScores]) -> dict[str, Any]:
    """Per task: its summary, and under `breakdowns` the summary of every group of every dimension."""
    return {task: {**entry.summary(),
                   "breakdowns": {dim: {label: g.summary() for label, g in groups.items()}
                                  for dim, groups in entry.breakdowns.items()}}
            for task, entry in scores.items()}


def plot_name(task: str) -> str:
    """The file name of a task's plot (task names are user text: only safe characters reach the path)."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}_by_source.png"


def write_task_scores(scores: Mapping[str, TaskScores], out_dir: str, plots: bool = True) -> list[str]:
    """Write task_metrics.json / .md and (optionally) one PNG per task into `out_dir`; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, TASK_JSON), os.path.join(out_dir, TASK_MD)]
    texts = (json.dumps(task_scores_json(scores), indent=2, ensure_ascii=False) + "\n", task_scores_markdown(scores))
    for path, text in zip(paths, texts):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if plots:
        from verl_video.evaluation.plots import plot_task_metrics

        for task, entry in scores.items():
            # Per source when the lines name their sources, else the task's totals alone.
            groups = entry.breakdowns.get("source") or {"all": entry}
            paths.append(plot_task_metrics({label: (g.count, g.means) for label, g in groups.items()},
                                           os.path.join(out_dir, plot_name(task)), f"{task}: metrics by source"))
    return paths


def _metrics_table(first: str, rows: Mapping[str, TaskScores], names: Sequence[str]) -> list[str]:
    header = [first, *names, "n", "parse failures"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, entry in rows.items():
        summary = entry.summary()
        values = [f"{summary['metrics'].get(n, 0.0):.4f}" for n in names]
        out.append("| " + " | ".join([label, *values, str(entry.count), str(summary["parse_failures"])]) + " |")
    return out


def task_scores_markdown(scores: Mapping[str, TaskScores]) -> str:
    """One table per task (its metric means and parse status counts), then one per breakdown."""
    out = []
    for task, entry in scores.items():
        names = list(entry.means)
        out += [f"# {task}: {entry.count} samples", "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        out += ["| " + " | ".join(f"{entry.means[n]:.4f}" for n in names) + " |", ""]
        out += ["parse status counts: " + ", ".join(f"{k}: {v}" for k, v in sorted(entry.statuses.items())), ""]
        for dim, groups in entry.breakdowns.items():
            out += [f"## {task} by {dim}", "", *_metrics_table(dim, groups, names), ""]
    return "\n".join(out)
