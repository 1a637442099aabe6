"""Per-record selection statistics: what the model's answers to one record scored, and where they come from.

One JSON object a line (`stats.jsonl`, written by `verl-video select DATA --model M -k K`):

    id              record id (as `eval` names it: `dataset/id` when the data_config has several datasets)
    dataset         the data_config entry the record belongs to (null when read from a predictions file)
    record          the record in the canonical schema (video, query, timestamps, duration, ...)
    ious            IoU of each sampled answer with the best ground-truth window (0 when unparseable)
    rewards         the training reward of each sampled answer (null when unknown)
    reward_mean / reward_var     over the k answers (population variance, as GRPO's group sees it)
    greedy_iou      IoU of the greedy (temperature 0) answer, or null
    greedy_parsed   whether the greedy answer had a parseable interval, or null
    parse_failures  how many of the k answers had no parseable interval

A predictions file (`eval` / `score` schema) or Time-R1's annotation with a `pred` field gives one answer
per record: `ious` holds its IoU, `rewards` is null, `greedy_iou` is that IoU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from verl_video.annotations.records import CANONICAL_FIELDS, RecordError, iter_json_objects
from verl_video.evaluation.grading import grade_prediction
from verl_video.evaluation.predictions import PredictionFileError, read_predictions
from verl_video.evaluation.score import grade_line
from verl_video.rewards.parser import ParserConfig

# Fields of an `eval` predictions line that describe the answer, not the record.
_ANSWER_FIELDS = ("response", "prediction", "parse_status", "iou", "error")


@dataclass
class RecordStats:
    """What the answers to one record scored."""

    id: str
    record: dict[str, Any]
    ious: list[float]
    rewards: list[float] | None = None
    greedy_iou: float | None = None
    parse_failures: int = 0
    greedy_parsed: bool | None = None  # None: no greedy answer
    dataset: str | None = None
    where: str = ""  # "stats.jsonl:3", for messages
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        """How many sampled answers the statistics cover."""
        return len(self.ious)

    @property
    def all_unparsed(self) -> bool:
        """Every answer (greedy included) failed to parse: the record says nothing about difficulty."""
        return self.answers > 0 and self.parse_failures >= self.answers and not self.greedy_parsed

    @property
    def difficulty_iou(self) -> float:
        """The IoU difficulty is measured by: the greedy answer's, else the mean over the sampled answers."""
        if self.greedy_iou is not None:
            return self.greedy_iou
        return sum(self.ious) / len(self.ious) if self.ious else 0.0

    @property
    def reward_mean(self) -> float | None:
        """Mean reward over the answers, or None without rewards."""
        return sum(self.rewards) / len(self.rewards) if self.rewards else None

    @property
    def reward_var(self) -> float | None:
        """Population variance of the rewards (what makes a GRPO group's advantages non-zero)."""
        if not self.rewards:
            return None
        mean = sum(self.rewards) / len(self.rewards)
        return sum((r - mean) ** 2 for r in self.rewards) / len(self.rewards)

    def to_json(self) -> dict[str, Any]:
        """The stats.jsonl line."""
        return {"id": self.id, "dataset": self.dataset, "record": self.record, "ious": self.ious,
                "rewards": self.rewards, "reward_mean": self.reward_mean, "reward_var": self.reward_var,
                "greedy_iou": self.greedy_iou, "greedy_parsed": self.greedy_parsed,
                "parse_failures": self.parse_failures, **self.extra}


def _float_list(value: Any, where: str, name: str) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise PredictionFileError(f"{where}: field {name!r} must be a list of numbers, got {value!r}")
    return [float(v) for v in value]


def stats_from_json(obj: Any, where: str) -> RecordStats:
    """Validate one stats.jsonl object."""
    if not isinstance(obj, dict):
        raise PredictionFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for name in ("id", "record", "ious"):
        if name not in obj:
            raise PredictionFileError(f"{where}: missing field {name!r}")
    if not isinstance(obj["record"], dict):
        raise PredictionFileError(f"{where}: field 'record' must be an object (a canonical record)")
    rewards = obj.get("rewards")
    greedy = obj.get("greedy_iou")
    known = {"id", "dataset", "record", "ious", "rewards", "reward_mean", "reward_var", "greedy_iou", "greedy_parsed",
             "parse_failures"}
    return RecordStats(
        id=str(obj["id"]), record=obj["record"], ious=_float_list(obj["ious"], where, "ious"),
        rewards=None if rewards is None else _float_list(rewards, where, "rewards"),
        greedy_iou=None if greedy is None else float(greedy), parse_failures=int(obj.get("parse_failures") or 0),
        greedy_parsed=obj.get("greedy_parsed"),
        dataset=obj.get("dataset"), where=where, extra={k: v for k, v in obj.items() if k not in known},
    )


def read_stats(path: str) -> list[RecordStats]:
    """Read a stats.jsonl file; the first bad line raises naming file, line and field."""
    try:
        out = [stats_from_json(obj, where) for where, _, obj in iter_json_objects(path)]
    except RecordError as exc:
        raise PredictionFileError(str(exc)) from None
    if not out:
        raise PredictionFileError(f"{os.path.basename(path)}: no records in the file")
    return out


def _is_time_r1_with_pred(path: str) -> bool:
    if path.endswith(".jsonl"):
        return False
    for _, _, obj in iter_json_objects(path):
        return isinstance(obj, dict) and {"timestamp", "sentence", "pred"} <= set(obj)
    return False


def _time_r1_stats(path: str, parser: ParserConfig) -> list[RecordStats]:
    """Time-R1's annotation with its model's `pred`: difficulty = IoU of pred against the best window."""
    out = []
    for where, _, obj in iter_json_objects(path):
        if not isinstance(obj, dict) or "pred" not in obj:
            raise PredictionFileError(f"{where}: missing field 'pred' (the model's [start, end] for this record)")
        pred = obj["pred"]
        if pred is not None and (not isinstance(pred, list | tuple) or len(pred) != 2):
            raise PredictionFileError(f"{where}: field 'pred' must be [start, end] or null, got {pred!r}")
        timestamps = obj.get("timestamp")
        if not isinstance(timestamps, list) or not timestamps:
            raise PredictionFileError(f"{where}: field 'timestamp' must be [start, end], got {timestamps!r}")
        windows = timestamps if isinstance(timestamps[0], list) else [timestamps]
        grade = grade_prediction(pred, windows, parser)
        record = {"id": str(obj.get("qid") or where), "video": obj.get("video"), "query": obj.get("sentence"),
                  "timestamps": windows, "duration": obj.get("duration"), "video_start": obj.get("video_start"),
                  "video_end": obj.get("video_end"), "source": "time_r1",
                  **{k: v for k, v in obj.items() if k not in ("video", "sentence", "timestamp", "qid", "duration",
                                                               "video_start", "video_end")}}
        out.append(RecordStats(id=record["id"], record=record, ious=[grade.iou], greedy_iou=grade.iou,
                               parse_failures=int(not grade.parsed), where=where))
    return out


def _eval_record(fields: dict[str, Any]) -> dict[str, Any]:
    """The canonical record carried by an `eval` predictions line (its answer fields removed)."""
    return {k: v for k, v in fields.items() if k not in _ANSWER_FIELDS}


def stats_from_predictions(path: str, parser: ParserConfig | None = None) -> list[RecordStats]:
    """Statistics from a predictions file: the `eval`/`score` JSONL schema, or Time-R1's JSON with `pred`."""
    parser = parser or ParserConfig()
    if _is_time_r1_with_pred(path):
        return _time_r1_stats(path, parser)
    out = []
    for line in read_predictions(path):
        grade = grade_line(line, parser)
        record = _eval_record(line.fields)
        record.setdefault("id", line.id)
        out.append(RecordStats(id=line.id, record=record, ious=[grade.iou], greedy_iou=grade.iou,
                               parse_failures=int(not grade.parsed), where=line.where))
    return out


def canonical_record(stats: RecordStats) -> dict[str, Any]:
    """The record to write into a selected annotation file: canonical fields first, extras kept."""
    record = {k: v for k, v in stats.record.items() if v is not None or k not in ("video_start", "video_end")}
    ordered = {k: record[k] for k in CANONICAL_FIELDS if k in record}
    return {**ordered, **{k: v for k, v in record.items() if k not in ordered}}
