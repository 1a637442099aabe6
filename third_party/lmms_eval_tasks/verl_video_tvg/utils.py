"""lmms-eval hooks for the verl-video grounding tasks: our prompt, our parser, our metrics.

lmms-eval imports this file through the `!function utils.<name>` entries of the task YAMLs. Every
function delegates to the installed `verl_video` package, so lmms-eval, `verl-video eval` and the
training reward read answers and count R1@m identically.

Documents are canonical verl-video records (`verl-video convert` output): `video`, `query`,
`timestamps`, `duration`. Relative video paths are resolved against the task's own video folder
(VIDEO_ROOTS below: one variable per task, so that the `verl_video_tvg` tag runs all three in one
command), else $VERL_VIDEO_VIDEO_ROOT, else the working directory.

Clip records (`video_start` / `video_end`: the model must see only that part of the file, and their
ground truth counts from the clip start) are refused with an error: lmms-eval hands the model class a
video path, which it decodes whole, and scoring a whole video against clip-relative times would be
silently wrong. Evaluate such data with `verl-video eval`, which decodes the clip.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from verl_video.tasks.prompts import build_messages
from verl_video.evaluation.grading import grade_response
from verl_video.rewards.grounding_metrics import DEFAULT_CONVENTION, Convention, summarize
from verl_video.rewards.parser import ParserConfig

VIDEO_ROOT_ENV = "VERL_VIDEO_VIDEO_ROOT"
# The video folder of each task; the tasks' YAMLs pick their doc_to_visual below.
VIDEO_ROOTS = {
    "vv_charades_sta": "VERL_VIDEO_CHARADES_STA_ROOT",
    "vv_activitynet": "VERL_VIDEO_ACTIVITYNET_ROOT",
    "vv_tvgbench": "VERL_VIDEO_TVGBENCH_ROOT",
}
VIDEO_MARKER = "<video>"
METRICS = ("r1@0.3", "r1@0.5", "r1@0.7", "miou", "parse_failure_rate")


def _windows(doc: dict) -> list[list[float]]:
    windows = doc["timestamps"]
    if windows and not isinstance(windows[0], list | tuple):
        windows = [windows]  # a single [s, e]
    return [[float(s), float(e)] for s, e in windows]


def _duration(doc: dict) -> float | None:
    value = doc.get("duration")
    return float(value) if value not in (None, "") else None


def video_path(doc: dict, task: str | None = None) -> str:
    """The document's video path, made absolute with the task's video folder; refuses clip records."""
    clip = [doc.get(key) for key in ("video_start", "video_end")]
    if any(value not in (None, "") for value in clip):
        raise ValueError(
            f"{doc.get('id', doc['video'])}: a clip record (video_start={clip[0]}, video_end={clip[1]}); lmms-eval "
            "would show the model the whole file while the ground truth counts from the clip start. "
            "Evaluate clip records with `verl-video eval`, or convert them without clips."
        )
    path = str(doc["video"])
    variables = [VIDEO_ROOTS[task]] if task in VIDEO_ROOTS else []
    variables.append(VIDEO_ROOT_ENV)
    if not os.path.isabs(path):
        root = next((os.environ[name] for name in variables if os.environ.get(name)), os.getcwd())
        path = os.path.join(root, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: video not found (set ${variables[0]} to the dataset's video folder)")
    return path


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
    """The video of a document of no particular task ($VERL_VIDEO_VIDEO_ROOT)."""
    return [video_path(doc)]


def _visual_for(task: str) -> Callable[..., list[str]]:
    def visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
        return [video_path(doc, task)]

    visual.__doc__ = f"The video of a {task} document (${VIDEO_ROOTS[task]}, else ${VIDEO_ROOT_ENV})."
    return visual


charades_sta_visual = _visual_for("vv_charades_sta")
activitynet_visual = _visual_for("vv_activitynet")
tvgbench_visual = _visual_for("vv_tvgbench")


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The training prompt for the document's query; the model class places the video itself."""
    template = (lmms_eval_specific_kwargs or {}).get("template", "think")
    messages = build_messages(doc["query"], template, duration=_duration(doc))
    # lmms-eval has no per-document system turn: a template's system text leads the user text.
    text = "\n".join(m["content"] for m in messages)
    return text.replace(VIDEO_MARKER + "\n", "").replace(VIDEO_MARKER, "").strip()


def doc_to_target(doc: dict) -> str:
    """The first ground-truth window as the answer text the prompt asks for."""
    start, end = _windows(doc)[0]
    return f"{start:.2f} to {end:.2f}"


def process_results(doc: dict, results: list[str]) -> dict[str, dict[str, Any]]:
    """Grade the response with the training parser; every metric receives the same per-sample grade."""
    grade = grade_response(results[0] if results else None, _windows(doc), _duration(doc), ParserConfig())
    item = {"iou": grade.iou, "parsed": grade.parsed, "status": grade.status}
    return {metric: item for metric in METRICS}


def _aggregate(items: list[dict], key: str, convention: Convention = DEFAULT_CONVENTION) -> float:
    return summarize([i["iou"] for i in items], [bool(i["parsed"]) for i in items], convention)[key]


def r1_at_03(items: list[dict]) -> float:
    """R1@0.3 (percent, IoU >= 0.3, unparseable answers count as misses)."""
    return _aggregate(items, "r1@0.3")


def r1_at_05(items: list[dict]) -> float:
    """R1@0.5 (percent, IoU >= 0.5, unparseable answers count as misses)."""
    return _aggregate(items, "r1@0.5")


def r1_at_07(items: list[dict]) -> float:
    """R1@0.7 (percent, IoU >= 0.7, unparseable answers count as misses)."""
    return _aggregate(items, "r1@0.7")


def miou(items: list[dict]) -> float:
    """Mean IoU (percent) over every sample, unparseable answers counting 0."""
    return _aggregate(items, "miou")


def parse_failure_rate(items: list[dict]) -> float:
    """Percent of responses with no interval our parser can read."""
    return _aggregate(items, "parse_failure_rate")
