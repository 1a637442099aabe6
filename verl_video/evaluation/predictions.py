"""The per-sample predictions file (JSONL): its line format, a strict reader, and a crash-safe appender.

One JSON object a line. Read by `verl-video score`; written by `verl-video eval`.

    timestamps    required: ground truth in seconds, [s, e] or [[s, e], ...] (best window counts)
    response      raw model text, parsed by the training parser         } at least one of the two;
    prediction    [s, e] seconds already extracted, or null (no answer) } `response` wins if both
    duration      optional: video seconds (the parser clips to it; duration buckets use it)
    id            optional: sample id (default: the line number); `eval` resumes by it
    source        optional: dataset name, for the per-source breakdown
    error         optional: why there is no response (e.g. the video did not decode); status `error`
    visual_tokens optional: visual tokens the answer saw (single pass: the prompt's video tokens; the
                  `video_search` loop: the whole trajectory's); `score` reports their mean per answer
    zoom_*        optional, a search eval's: the loop's zoom facts (docs/evaluation.md); `score` reports zoom/*
    ...           anything else (video, query, qsemtype, ...) is kept and can be a breakdown key

Lines of another task (`task` other than tvg, with `ground_truth`: evaluation/task_scores.py) are skipped here.

`eval` also writes `parse_status` and `iou`; `score` recomputes both and ignores those stored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator
from typing import IO, Any

from verl_video.annotations.records import DEFAULT_TASK, RecordError, parse_timestamps


# A prediction line's count of the visual tokens its answer saw: a single pass's prompt video tokens, a search
# trajectory's in all (overview and every window).
VISUAL_TOKENS = "visual_tokens"


class PredictionFileError(ValueError):
    """A malformed predictions file; the message names the file, the line and the field."""


@dataclass
class PredictionLine:
    """One parsed line of a predictions file."""

    where: str  # "preds.jsonl:12", for messages
    id: str
    timestamps: list[list[float]]
    duration: float | None
    response: str | None
    prediction: tuple[float, float] | None
    has_response: bool
    has_prediction: bool
    fields: dict[str, Any] = field(default_factory=dict)  # the whole object, for breakdowns


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PredictionFileError(f"{where}: field {name!r} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise PredictionFileError(f"{where}: field {name!r} must be a number, got {value!r}") from None


def parse_line(obj: Any, where: str) -> PredictionLine:
    """Validate one decoded JSON object of a predictions file."""
    if not isinstance(obj, dict):
        raise PredictionFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "timestamps" not in obj:
        raise PredictionFileError(f"{where}: missing field 'timestamps' (ground truth [s, e] or [[s, e], ...])")
    try:
        windows = parse_timestamps(obj["timestamps"], where)
    except RecordError as exc:
        raise PredictionFileError(str(exc)) from None
    has_response, has_prediction = "response" in obj, "prediction" in obj
    if not (has_response or has_prediction):
        raise PredictionFileError(f"{where}: needs a field 'prediction' ([s, e] or null) or 'response' (model text)")
    response = obj.get("response")
    if response is not None and not isinstance(response, str):
        raise PredictionFileError(f"{where}: field 'response' must be a string or null, got {type(response).__name__}")
    prediction = obj.get("prediction")
    if prediction is not None:
        if not isinstance(prediction, list | tuple) or len(prediction) != 2:
            raise PredictionFileError(f"{where}: field 'prediction' must be [start, end] or null, got {prediction!r}")
        prediction = (_number(prediction[0], where, "prediction[0]"), _number(prediction[1], where, "prediction[1]"))
    duration = obj.get("duration")
    if duration is not None:
        duration = _number(duration, where, "duration")
        if not (math.isfinite(duration) and duration > 0):
            duration = None
    return PredictionLine(where=where, id=str(obj.get("id", where)), timestamps=windows, duration=duration,
                          response=response, prediction=prediction, has_response=has_response,
                          has_prediction=has_prediction, fields=obj)


def iter_objects(path: str) -> Iterator[tuple[str, Any]]:
    """(`file:line`, decoded object) for every non-blank line; invalid JSON raises with its location."""
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        for line_no, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f"{name}:{line_no}"
            try:
                yield where, json.loads(text)
            except json.JSONDecodeError as exc:
                raise PredictionFileError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}") from None


def read_predictions(path: str) -> list[PredictionLine]:
    """Read and validate a predictions JSONL file; the first bad line raises with its location."""
    name = os.path.basename(path)
    lines = []
    for where, obj in iter_objects(path):
        if isinstance(obj, dict) and obj.get("task") not in (None, "", DEFAULT_TASK):
            continue  # another task's line: scored by evaluation/task_scores.py
        lines.append(parse_line(obj, where))
    if not lines:
        raise PredictionFileError(f"{name}: no predictions in the file")
    return lines


def start_or_resume(run_file: str, result_file: str, settings: dict, overwrite: bool,
                    check: Callable[[dict, dict, str], None]) -> None:
    """Delete earlier results with `overwrite`; otherwise `check(previous, settings, run_file)` may refuse to resume."""
    if overwrite:
        for path in (result_file, run_file):
            if os.path.exists(path):
                os.remove(path)
    elif os.path.exists(run_file) and os.path.exists(result_file):
        with open(run_file, encoding="utf-8") as f:
            check(json.load(f), settings, run_file)


def recover(path: str) -> dict[str, dict]:
    """Finished samples of an interrupted run by id; drops a torn last line left by a crash."""
    done: dict[str, dict] = {}
    if not os.path.exists(path):
        return done
    with open(path, "rb") as f:
        data = f.read()
    keep = data.rfind(b"\n") + 1  # a line without its newline was cut off mid-write
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    for line_no, text in enumerate(data[:keep].decode("utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PredictionFileError(f"{os.path.basename(path)}:{line_no}: invalid JSON: {exc.msg}; "
                                      "remove the line or start over with --overwrite") from None
        done[str(obj.get("id"))] = obj
    return done


class PredictionWriter:
    """Appends one line per finished sample and flushes it, so a crash loses at most the line being written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", encoding="utf-8")

    def write(self, obj: dict) -> None:
        """Append one sample and push it to the OS."""
        self._file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if not self._file.closed:
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
