"""Property: any YAML or JSON fed to the data_config and annotation readers gives a valid dataset or an
error naming the file, the line (or record) and the field, never another exception."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from verl_video.annotations.data_config import DataConfigError, load_data_config
from verl_video.annotations.formats import FORMAT_NAMES, ReadOptions, read_annotations
from verl_video.annotations.records import Record, RecordError
from verl_video.video.settings import BUDGET_FIELDS

# Field names the readers look for, so that generated objects get past the first checks often.
FIELDS = [
    "id", "video", "query", "timestamps", "duration", "video_start", "video_end", "task", "source", "problem",
    "solution", "video_length", "sentence", "timestamp", "qid", "path", "question", "answer", "start", "end",
    "sentences", "dataset", "dataset_name",
]  # fmt: skip
ENTRY_KEYS = [
    "name", "json_path", "data_folder", "format", "sampling_strategy", "weight", "task", "prompt_template",
    "durations", "video_ext", *BUDGET_FIELDS,
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["12.5", "1-2", "3.0 - 9", "nan", "inf", "a.json", "all", "random:50%"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
annotation_files = st.one_of(
    st.lists(records | values, max_size=4),
    st.dictionaries(st.text(max_size=6), records | values, max_size=4),
    values,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _where_pattern(name: str) -> re.Pattern:
    # "file.jsonl:3: ...", "file.json[0]: ...", "file.json['k']...: ...": the file, then the line or record.
    return re.compile(rf"^(.*/)?{re.escape(name)}(:\d+|\[[^\]]*\]|: )")


def _check_records(result: list[Record]) -> None:
    for record in result:
        assert isinstance(record.video, str) and isinstance(record.query, str) and record.origin
        assert all(len(span) == 2 and all(isinstance(t, float) for t in span) for span in record.timestamps)
        for value in (record.duration, record.video_start, record.video_end):
            assert value is None or isinstance(value, float)


@SETTINGS
@given(data=annotation_files, jsonl=st.booleans(), fmt=st.sampled_from([None, *FORMAT_NAMES[:-2], "tvgbench"]))
def test_any_json_gives_records_or_a_located_error(tmp_path: Path, data, jsonl: bool, fmt):
    name = "ann.jsonl" if jsonl else "ann.json"
    path = tmp_path / name
    if jsonl and isinstance(data, list):
        path.write_text("".join(json.dumps(item) + "\n" for item in data))
    else:
        path.write_text(json.dumps(data))
    try:
        result = read_annotations(str(path), fmt)
    except RecordError as exc:
        assert _where_pattern(name).match(str(exc)), str(exc)
        return
    _check_records(result)


@SETTINGS
@given(lines=st.lists(st.text(max_size=30) | st.sampled_from(["AB12 1.0 2.5##a man runs", "X 1 2##", "Y a b##q"]), max_size=5))
def test_any_charades_text_gives_records_or_a_located_error(tmp_path: Path, lines):
    path = tmp_path / "sta.txt"
    path.write_text("\n".join(line.replace("\r", " ") for line in lines), encoding="utf-8")
    try:
        result = read_annotations(str(path))
    except RecordError as exc:
        assert _where_pattern("sta.txt").match(str(exc)), str(exc)
        return
    _check_records(result)


@SETTINGS
@given(raw=st.binary(max_size=40), suffix=st.sampled_from([".json", ".jsonl", ".txt", ".yaml"]))
@example(raw=b"\x80", suffix=".json")  # found by this test: a UnicodeDecodeError escaped
@example(raw=b"datasets:\n  - \xff", suffix=".yaml")
def test_undecodable_bytes_are_a_located_error(tmp_path: Path, raw: bytes, suffix: str):
    path = tmp_path / f"bytes{suffix}"
    path.write_bytes(raw)
    if suffix == ".yaml":
        try:
            load_data_config(str(path))
        except DataConfigError as exc:
            assert str(exc).startswith(f"{path.name}:"), str(exc)
        return
    try:
        _check_records(read_annotations(str(path)))
    except RecordError as exc:
        assert _where_pattern(path.name).match(str(exc)), str(exc)


entries = st.dictionaries(st.sampled_from(ENTRY_KEYS) | st.text(max_size=4) | st.integers(0, 3), values, max_size=6)
configs = st.one_of(
    values,
    st.fixed_dictionaries({"datasets": st.lists(entries | values, max_size=3)}, optional={"seed": values}),
)


@SETTINGS
@given(config=configs, style=st.sampled_from(["block", "flow", "duplicate", "alias"]))
# Found by this test: keys of mixed types could not be sorted; a repeated key misaligned entries and lines.
@example(config={"datasets": [{"": None, 0: None}]}, style="block")
@example(config={"datasets": [{}]}, style="duplicate")
@example(config={"datasets": [{"json_path": "a.json", "data_folder": ".", "weight": math.nan}]}, style="block")
@example(config={"datasets": [{"json_path": "a.json", "data_folder": ".", "fps": math.inf}]}, style="flow")
@example(config={"seed": True, "datasets": [{"json_path": "a.json", "data_folder": ".", "task": [1]}]}, style="block")
def test_any_data_config_is_valid_or_a_located_error(tmp_path: Path, config, style: str):
    (tmp_path / "a.json").write_text('[{"video": "v.mp4", "query": "q", "timestamps": [1, 2]}]')
    text = yaml.safe_dump(config, default_flow_style=style == "flow", allow_unicode=True)
    if style == "duplicate" and isinstance(config, dict):
        text = "datasets: []\n" + text  # YAML keeps the last of two equal keys
    if style == "alias" and isinstance(config, dict):
        text = "base: &entries " + json.dumps(config.get("datasets")) + "\n" + text.replace("datasets:", "datasets: *entries\nx:", 1)
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        loaded = load_data_config(str(path))
    except DataConfigError as exc:
        assert re.match(r"^data\.yaml:\d+: ", str(exc)), str(exc)
        return
    assert loaded.datasets and (loaded.seed is None or type(loaded.seed) is int)
    for entry in loaded.datasets:
        assert isinstance(entry.name, str) and Path(entry.json_path).exists()
        assert entry.weight is None or (math.isfinite(entry.weight) and entry.weight > 0)
        assert all(math.isfinite(v) and v > 0 for v in entry.budget_overrides.values())
        assert all(isinstance(getattr(entry, key), str | None) for key in ("task", "prompt_template", "format"))
        assert isinstance(ReadOptions(entry.read_options).video_ext, str)
