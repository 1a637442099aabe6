"""lmms-eval hooks for grounded video QA (NExT-GQA as VideoChat-R1 ships it) through verl-video's task registry.

Documents are the rows of VideoChat-R1's `nextgqa_val.json`, read as they are (`verl_video.annotations.formats`,
format `videochat_qa`); the prompt, the ground truth and the metrics are the `grounded_qa` task's
(`verl_video/tasks/grounded_qa.py`), so lmms-eval, `verl-video score` and the training reward agree.
Videos: $VERL_VIDEO_NEXTGQA_ROOT (NExT-QA's video folder), else $VERL_VIDEO_VIDEO_ROOT, else the working directory.
"""

from __future__ import annotations

import os
from typing import Any

from verl_video.annotations.formats import parse_object
from verl_video.annotations.records import Record
from verl_video.rewards import Sample
from verl_video.tasks import get_task
from verl_video.tasks.grounded_qa import GroundedQA

ROOT_VARIABLES = ("VERL_VIDEO_NEXTGQA_ROOT", "VERL_VIDEO_VIDEO_ROOT")
VIDEO_MARKER = "<video>"
METRICS = GroundedQA.metric_keys  # accuracy, parse_ok, evidence_iou (mean: mIoU), evidence_iou@0.5


def _record(doc: dict) -> Record:
    (record,) = parse_object("videochat_qa", doc, where=str(doc.get("id", "document")))
    return record


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
    """The document's video, made absolute with the NExT-QA video folder."""
    path = str(doc["video"])
    if not os.path.isabs(path):
        root = next((os.environ[name] for name in ROOT_VARIABLES if os.environ.get(name)), os.getcwd())
        path = os.path.join(root, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: video not found (set ${ROOT_VARIABLES[0]} to NExT-QA's video folder)")
    return [path]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The grounded_qa task's prompt (`style`: think or no_think); the model class places the video itself."""
    style = (lmms_eval_specific_kwargs or {}).get("style", "think")
    record = _record(doc)
    text = get_task(record.task).render_prompt(record, style, record.duration)
    return text.replace(VIDEO_MARKER + "\n", "").replace(VIDEO_MARKER, "").strip()


def doc_to_target(doc: dict) -> str:
    """The right letter and evidence windows, as the prompt asks for them."""
    record = _record(doc)
    return get_task(record.task).reference_answer(record, record.duration)


def process_results(doc: dict, results: list[str]) -> dict[str, Any]:
    """The task's metrics of the response (the training reward's parsing)."""
    record = _record(doc)
    task = get_task(record.task)
    sample = Sample(results[0] if results else "", task.ground_truth(record, record.duration), {"task": task.name})
    return dict(task.metrics(sample))


def mean_percent(items: list[float]) -> float:
    """The mean of a per-sample metric, in percent."""
    return 100.0 * sum(items) / len(items) if items else 0.0
