"""Readers for the common temporal-grounding annotation formats, each yielding canonical records.

Formats (name: what it looks like):
    canonical     JSON/JSONL of {id, video, query, timestamps, duration, ...} (see records.py)
    temporal_r1   Temporal-R1: {dataset, video, problem, solution: [s/T, e/T], video_length}
    time_r1       Time-R1 / TimeRFT: [{video, duration, timestamp: [s, e], sentence, qid, video_start, video_end}]
    dict_of_videos  VideoChat-R1 / TimeZero / ActivityNet Captions: {vid: {duration, timestamps, sentences}}
    charades_sta  Charades-STA text: `VID START END##sentence`, durations from the Charades CSV (id, length)
    tvgbench      TVGBench: [{path, question, answer: "s-e", start, end, duration, dataset_name, ...}]
    videochat_qa  VideoChat-R1's NExT-GQA: [{id, video, question, options: ["(A) ..."], answer: "(C)", duration,
                  glue: [[s, e], ...] evidence windows in seconds, type}]: grounded QA (set `task: mcq` for
                  the question alone)
    videochat_tracking  VideoChat-R1's GOT-10k: [{path: frame folder, object, gt: boxes [x0, y0, x1, y1] in [0, 1]}]:
                  tracking; the video is the folder's last path component under data_folder, its frames
                  played at `frame_rate` (default 10 fps, GOT-10k's), boxes mapped to frames by `box_frames`
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from collections.abc import Callable, Iterator
from typing import Any

from verl_video.rewards.registry import definition_site
from verl_video.annotations.records import (
    DEFAULT_BOX_FRAMES,
    DEFAULT_FRAME_RATE_KEY,
    CANONICAL_FIELDS,
    Record,
    RecordError,
    parse_number,
    iter_json_objects,
    parse_timestamps,
    read_text,
    record_from_json,
)

FORMAT_NAMES = (
    "canonical", "temporal_r1", "time_r1", "dict_of_videos", "charades_sta", "tvgbench", "videochat_qa",
    "videochat_tracking",
)  # fmt: skip
# GOT-10k's frame rate: its frame folders are played at this rate unless the entry sets `frame_rate`.
GOT10K_FRAME_RATE = 10.0
# Keys whose presence identifies a record format (the first match wins).
_SIGNATURES = [
    ("canonical", {"video", "query", "timestamps"}),
    ("canonical", {"video", "query", "task"}),  # the other tasks' canonical records need no timestamps
    ("temporal_r1", {"problem", "solution", "video_length"}),
    ("videochat_qa", {"video", "question", "options", "answer"}),
    ("videochat_tracking", {"path", "object", "gt"}),
    ("time_r1", {"video", "sentence", "timestamp"}),
    ("tvgbench", {"path", "question", "answer"}),
]


class ReadOptions(dict):
    """Per-dataset reader options: `durations` (Charades CSV path), `video_ext` (default .mp4), `frame_rate` and
    `box_frames` (frame folders and their boxes, videochat_tracking)."""

    @property
    def video_ext(self) -> str:
        """Extension appended to bare video ids."""
        ext = self.get("video_ext") or ".mp4"
        return ext if ext.startswith(".") else "." + ext


@dataclass(frozen=True)
class ReadContext:
    """What a record parser needs besides the record: id extension, file stem, Charades durations."""

    video_ext: str
    stem: str
    durations: dict[str, float]
    options: ReadOptions


RecordParser = Callable[[str, Any, Any, "ReadContext"], list[Record]]


def register_format(name: str, parse: RecordParser, keys: set[str] | None = None, *, override: bool = False) -> None:
    """Add a JSON/JSONL annotation format (e.g. from a user file named in `modules`), selected by `format: NAME`.

    `parse(where, key, obj, context)` turns one JSON object into canonical records (RecordError naming `where`
    for a bad one); `keys`, when given, lets a file whose first object holds them all be detected as this format.
    """
    earlier = _PARSERS.get(name)
    if earlier is not None and not override and definition_site(earlier) != definition_site(parse):
        raise ValueError(f"annotation format {name!r} is already defined; rename it, or pass override=True")
    _PARSERS[name] = parse
    if keys:
        _SIGNATURES.append((name, set(keys)))


def format_names() -> tuple[str, ...]:
    """Every format a data_config's `format:` accepts: the built-in ones and the registered ones."""
    return tuple(_PARSERS)


def detect_format(path: str) -> str:
    """Guess the format of an annotation file from its extension and its first record."""
    if path.endswith(".txt"):
        return "charades_sta"
    name = os.path.basename(path)
    for where, key, obj in iter_json_objects(path):
        if not isinstance(obj, dict):
            raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if isinstance(key, str) and {"sentences", "timestamps"} <= obj.keys():
            return "dict_of_videos"
        for fmt, keys in _SIGNATURES:
            if keys <= obj.keys():
                return fmt
        raise RecordError(
            f"{where}: cannot tell the annotation format from keys {sorted(obj)}; "
            f"set `format:` to one of {', '.join(format_names())}"
        )
    raise RecordError(f"{name}: no records")


def read_annotations(
    path: str,
    fmt: str | None = None,
    options: ReadOptions | None = None,
    on_error: Callable[[RecordError], None] | None = None,
) -> list[Record]:
    """Read every record of `path` in format `fmt` (detected when None) as canonical records.

    A bad record raises RecordError, or, with `on_error`, is reported to it and skipped.
    """
    if not os.path.exists(path):
        raise RecordError(f"{path}: annotation file not found")
    fmt = fmt or detect_format(path)
    if fmt not in _PARSERS:
        raise RecordError(f"{path}: unknown format {fmt!r}; choose from {', '.join(format_names())}")
    options = options or ReadOptions()
    durations = read_duration_csv(options["durations"]) if options.get("durations") else {}
    context = ReadContext(options.video_ext, os.path.splitext(os.path.basename(path))[0], durations, options)
    raw_items = _iter_text_lines(path) if fmt == "charades_sta" else iter_json_objects(path)
    records: list[Record] = []
    for where, key, obj in raw_items:
        try:
            records.extend(_PARSERS[fmt](where, key, obj, context))
        except RecordError as exc:
            if on_error is None:
                raise
            on_error(exc)
    return records


def parse_object(fmt: str, obj: Any, where: str = "document", key: Any = 0) -> list[Record]:
    """The records of one JSON object of a JSON format (e.g. one lmms-eval document); errors name `where`."""
    if fmt not in _PARSERS or fmt == "charades_sta":
        raise RecordError(f"{where}: {fmt!r} is not a JSON record format; choose from {', '.join(format_names())}")
    return _PARSERS[fmt](where, key, obj, ReadContext(ReadOptions().video_ext, "document", {}, ReadOptions()))


def _required(obj: dict, where: str, *names: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [n for n in names if obj.get(n) in (None, "")]
    if missing:
        raise RecordError(f"{where}: missing field {missing[0]!r}")
    return [obj[n] for n in names]


def _extras(obj: dict, used: set[str]) -> dict[str, Any]:
    # A source key named like a canonical field (TVGBench's `source` path) is kept as `original_<key>`.
    return {(f"original_{k}" if k in CANONICAL_FIELDS else k): v for k, v in obj.items() if k not in used}


def _parse_canonical(where: str, key: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    return [record_from_json(obj, where)]


def _parse_temporal_r1(where: str, key: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    video, problem, solution, length = _required(obj, where, "video", "problem", "solution", "video_length")
    length = parse_number(length, where, "video_length")
    used = {"video", "problem", "solution", "video_length", "dataset", "id"}
    return [
        Record(
            id=str(obj.get("id") or where),
            video=str(video),
            query=str(problem),
            timestamps=[[s * length, e * length] for s, e in parse_timestamps(solution, where)],
            duration=length,
            source=str(obj.get("dataset") or ""),
            extra={"prompt_template": "temporal_r1", **_extras(obj, used)},
            origin=where,
        )
    ]


def _parse_time_r1(where: str, key: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    video, sentence, timestamp = _required(obj, where, "video", "sentence", "timestamp")
    return [
        Record(
            id=str(obj.get("qid") or where),
            video=str(video),
            query=str(sentence),
            timestamps=parse_timestamps(timestamp, where),
            duration=parse_number(obj.get("duration"), where, "duration", optional=True),
            video_start=parse_number(obj.get("video_start"), where, "video_start", optional=True),
            video_end=parse_number(obj.get("video_end"), where, "video_end", optional=True),
            source="time_r1",
            extra=_extras(obj, {"video", "sentence", "timestamp", "duration", "qid", "video_start", "video_end"}),
            origin=where,
        )
    ]


def _parse_dict_of_videos(where: str, video_id: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    timestamps, sentences = _required(obj, where, "timestamps", "sentences")
    if not isinstance(timestamps, list) or not isinstance(sentences, list) or len(timestamps) != len(sentences):
        raise RecordError(f"{where}: fields 'timestamps' and 'sentences' must be lists of the same length")
    duration = parse_number(obj.get("duration"), where, "duration", optional=True)
    return [
        Record(
            id=f"{video_id}#{i}",
            video=f"{video_id}{ctx.video_ext}",
            query=str(sentence).strip(),
            timestamps=parse_timestamps(span, f"{where}.timestamps[{i}]"),
            duration=duration,
            source=ctx.stem,
            origin=f"{where}.timestamps[{i}]",
        )
        for i, (span, sentence) in enumerate(zip(timestamps, sentences, strict=True))
    ]


_CHARADES_LINE = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)##(.*)$")


def read_duration_csv(path: str) -> dict[str, float]:
    """Durations (seconds) by video id from a Charades CSV with columns `id` and `length`."""
    name = os.path.basename(path)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    if not reader.fieldnames or not {"id", "length"} <= set(reader.fieldnames):
        raise RecordError(f"{name}:1: expected CSV columns 'id' and 'length'")
    return {row["id"]: parse_number(row["length"], f"{name}:{i + 2}", "length") for i, row in enumerate(reader)}


def _iter_text_lines(path: str) -> Iterator[tuple[str, int, str]]:
    name = os.path.basename(path)
    for line_no, line in enumerate(io.StringIO(read_text(path), newline=None), 1):
        if line.strip():
            yield f"{name}:{line_no}", line_no, line.strip()


def _parse_charades_sta(where: str, line_no: Any, line: Any, ctx: ReadContext) -> list[Record]:
    match = _CHARADES_LINE.match(line)
    if not match:
        raise RecordError(f"{where}: expected 'VIDEO START END##sentence', got {line!r}")
    video_id, start, end, sentence = match.groups()
    return [
        Record(
            id=f"{video_id}#{line_no}",
            video=video_id + ctx.video_ext,
            query=sentence.strip(),
            timestamps=[[parse_number(start, where, "start"), parse_number(end, where, "end")]],
            duration=ctx.durations.get(video_id),
            source="charades_sta",
            origin=where,
        )
    ]


_ANSWER_SPAN = re.compile(r"^\s*([-+0-9.eE]+)\s*-\s*([-+0-9.eE]+)\s*$")


def _parse_tvgbench(where: str, index: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    video, question, answer = _required(obj, where, "path", "question", "answer")
    match = _ANSWER_SPAN.match(str(answer))
    if not match:
        raise RecordError(f"{where}: field 'answer' must be 'start-end' in seconds, got {answer!r}")
    return [
        Record(
            id=f"tvgbench-{index}",
            video=str(video),
            query=str(question),
            timestamps=[[parse_number(match[1], where, "answer"), parse_number(match[2], where, "answer")]],
            duration=parse_number(obj.get("duration"), where, "duration", optional=True),
            video_start=parse_number(obj.get("start"), where, "start", optional=True),
            video_end=parse_number(obj.get("end"), where, "end", optional=True),
            source=str(obj.get("dataset_name") or "tvgbench"),
            extra=_extras(obj, {"path", "question", "answer", "start", "end", "duration", "dataset_name"}),
            origin=where,
        )
    ]


def _parse_videochat_qa(where: str, index: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    video, question, options, answer, glue = _required(obj, where, "video", "question", "options", "answer", "glue")
    return [
        Record(
            id=str(obj.get("id") or f"{ctx.stem}-{index}"),
            video=str(video),
            query=str(question),
            timestamps=parse_timestamps(glue, where, "glue"),
            duration=parse_number(obj.get("duration"), where, "duration", optional=True),
            task="grounded_qa",
            source=ctx.stem,
            extra={"options": options, "answer": answer, **_extras(obj, {"id", "video", "question", "options", "answer", "glue", "duration"})},
            origin=where,
        )
    ]


def _parse_videochat_tracking(where: str, index: Any, obj: Any, ctx: ReadContext) -> list[Record]:
    path, name, boxes = _required(obj, where, "path", "object", "gt")
    folder = os.path.basename(str(path).rstrip("/"))
    rate = parse_number(ctx.options.get("frame_rate") or GOT10K_FRAME_RATE, where, "frame_rate")
    return [
        Record(
            id=folder or f"{ctx.stem}-{index}",
            video=folder,
            query=str(name),
            timestamps=[],
            task="tracking",
            source=ctx.stem,
            extra={
                "boxes": boxes,
                DEFAULT_FRAME_RATE_KEY: rate,
                "box_frames": ctx.options.get("box_frames") or DEFAULT_BOX_FRAMES,
                "original_path": str(path),
                **_extras(obj, {"path", "object", "gt"}),
            },
            origin=where,
        )
    ]


_PARSERS: dict[str, RecordParser] = {
    "canonical": _parse_canonical,
    "temporal_r1": _parse_temporal_r1,
    "time_r1": _parse_time_r1,
    "dict_of_videos": _parse_dict_of_videos,
    "charades_sta": _parse_charades_sta,
    "tvgbench": _parse_tvgbench,
    "videochat_qa": _parse_videochat_qa,
    "videochat_tracking": _parse_videochat_tracking,
}
