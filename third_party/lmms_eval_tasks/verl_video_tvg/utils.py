"""lmms-eval hooks for the verl-video grounding tasks: our prompt, our parser, our metrics.

lmms-eval imports this file through the `!function utils.<name>` entries of the task YAMLs. Every
function delegates to the installed `verl_video` package, so lmms-eval, `verl-video eval` and the
training reward read answers and count R1@m identically.

Documents are canonical verl-video records (`verl-video convert` output): `video`, `query`,
`timestamps`, `duration`. Relative video paths are resolved against $VERL_VIDEO_VIDEO_ROOT
(default: the working directory).
"""

from __future__ import annotations

import os
from typing import Any

from verl_video.data.prompts import build_messages
from verl_video.evaluation.grading import grade_response
from verl_video.evaluation.metrics import DEFAULT_CONVENTION, Convention, summarize
from verl_video.rewards.parser import ParserConfig

VIDEO_ROOT_ENV = "VERL_VIDEO_VIDEO_ROOT"
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


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
    """The video path of a document, made absolute with $VERL_VIDEO_VIDEO_ROOT."""
    path = str(doc["video"])
    if not os.path.isabs(path):
        path = os.path.join(os.environ.get(VIDEO_ROOT_ENV, os.getcwd()), path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: video not found (set ${VIDEO_ROOT_ENV} to the dataset's video folder)")
    return [path]


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
