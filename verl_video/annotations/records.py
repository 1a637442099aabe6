"""The canonical grounding record: one query about one video, and its JSONL reader and writer.

Canonical JSONL (one JSON object a line; this schema is stable, other tools write it):

    id           str, unique within the file
    video        str, path relative to the dataset's data_folder, or absolute
    query        str, the sentence to ground
    timestamps   [[start, end], ...] seconds, relative to the first frame the model sees
                 (0 = video_start when the record is a clip)
    duration     float seconds the model sees (the clip length for a clip), or null if unknown
    video_start  optional float seconds in the video file where the clip begins
    video_end    optional float seconds in the video file where the clip ends
    task         optional str, default "tvg" (temporal grounding); other tasks (verl_video/tasks/) read their own
                 fields from the extra keys: mcq {options, answer}, grounded_qa {options, answer, timestamps =
                 evidence windows}, tracking {query = the object, boxes, box_frames, frame_rate}
    source       optional str, the dataset or file it came from
    frame_rate   optional float: the video is a folder of frame images played at this rate (kept in extra)
    ...          any other key is kept as free extra data (e.g. qid, difficulty)

`timestamps` is required for grounding records only; every task checks its own fields (`verl-video validate`).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

CANONICAL_FIELDS = ("id", "video", "query", "timestamps", "duration", "video_start", "video_end", "task", "source")
DEFAULT_TASK = "tvg"
# The extra key giving the frame rate of a video that is a folder of frame images.
DEFAULT_FRAME_RATE_KEY = "frame_rate"
# Tracking annotations: which frame of the video each annotated box belongs to (`box_frames` of a data_config
# entry). videochat_r1: the first box is the first frame's, the others spread as VideoChat-R1 shows them;
# uniform: boxes spread evenly over the frames (tasks/tracking.py maps them).
BOX_FRAMES = ("videochat_r1", "uniform")
DEFAULT_BOX_FRAMES = "videochat_r1"


class RecordError(ValueError):
    """A record that cannot be read; the message names the file, the line or key, and the field."""


@dataclass
class Record:
    """One temporal-grounding query in the canonical schema (see module docstring)."""

    id: str
    video: str
    query: str
    timestamps: list[list[float]]
    duration: float | None = None
    video_start: float | None = None
    video_end: float | None = None
    task: str = DEFAULT_TASK
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the record came from, for error messages: "file.jsonl:12" or "file.json[key]".
    origin: str = ""

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object (extra keys flattened in, origin dropped)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("extra", "origin")}
        if data["video_start"] is None and data["video_end"] is None:
            data.pop("video_start")
            data.pop("video_end")
        return {**self.extra, **data}

    @property
    def is_clip(self) -> bool:
        """Whether the model sees only [video_start, video_end] of the file."""
        return self.video_start is not None or self.video_end is not None


def parse_number(value: Any, where: str, name: str, optional: bool = False) -> float | None:
    """A float from a JSON number or numeric string; None allowed when optional; errors name the field."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"{where}: field {name!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise RecordError(f"{where}: field {name!r} must be a number, got {value!r}") from None
    return number


def parse_timestamps(value: Any, where: str, name: str = "timestamps") -> list[list[float]]:
    """Accept [s, e] or [[s, e], ...]; return a list of [s, e] floats (NaN is kept for the validator)."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(not isinstance(v, list | tuple) for v in value):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise RecordError(f"{where}: field {name!r} must be [start, end] or [[start, end], ...], got {value!r}")
    spans = []
    for i, span in enumerate(value):
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise RecordError(f"{where}: field '{name}[{i}]' must be [start, end], got {span!r}")
        spans.append([parse_number(span[0], where, f"{name}[{i}][0]"), parse_number(span[1], where, f"{name}[{i}][1]")])
    return spans


def record_from_json(obj: Any, where: str) -> Record:
    """Build a record from one canonical JSON object; `where` names it in errors ("f.jsonl:3")."""
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    task = str(obj.get("task") or DEFAULT_TASK)
    for name in ("video", "query", "timestamps") if task == DEFAULT_TASK else ("video", "query"):
        if obj.get(name) in (None, ""):
            raise RecordError(f"{where}: missing field {name!r}")
    extra = {k: v for k, v in obj.items() if k not in CANONICAL_FIELDS}
    return Record(
        id=str(obj.get("id", "")) or where,
        video=str(obj["video"]),
        query=str(obj["query"]),
        timestamps=parse_timestamps(obj["timestamps"], where) if obj.get("timestamps") not in (None, []) else [],
        duration=parse_number(obj.get("duration"), where, "duration", optional=True),
        video_start=parse_number(obj.get("video_start"), where, "video_start", optional=True),
        video_end=parse_number(obj.get("video_end"), where, "video_end", optional=True),
        task=task,
        source=str(obj.get("source") or ""),
        extra=extra,
        origin=where,
    )


def read_text(path: str) -> str:
    """The file as UTF-8 text; RecordError naming the file and line of the first byte that is not UTF-8."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RecordError(f"{os.path.basename(path)}:{line}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def iter_json_objects(path: str) -> Iterator[tuple[str, str | int, Any]]:
    """Yield (where, key, object) from a .jsonl (key: line number) or .json (list index or dict key) file."""
    name = os.path.basename(path)
    text = read_text(path)
    if path.endswith(".jsonl"):
        for line_no, line in enumerate(io.StringIO(text, newline=None), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise RecordError(f"{name}:{line_no}: invalid JSON: {getattr(exc, 'msg', 'nested too deeply')}") from None
            yield f"{name}:{line_no}", line_no, obj
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{name}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise RecordError(f"{name}:1: invalid JSON: nested too deeply") from None
    if isinstance(data, list):
        for i, obj in enumerate(data):
            yield f"{name}[{i}]", i, obj
    elif isinstance(data, dict):
        for key, obj in data.items():
            yield f"{name}[{key!r}]", key, obj
    else:
        raise RecordError(f"{name}: expected a JSON list or object at the top level")


def read_canonical(path: str) -> list[Record]:
    """Read a canonical JSON/JSONL file."""
    return [record_from_json(obj, where) for where, _, obj in iter_json_objects(path)]


def write_canonical(records: Iterable[Record], path: str) -> int:
    """Write records as canonical JSONL atomically; return the count."""
    tmp = f"{path}.tmp.{os.getpid()}"
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count
