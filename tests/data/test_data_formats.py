"""Annotation formats, data_config parsing and `verl-video convert`, on generated and real annotations."""

from __future__ import annotations

import json
import math

import pytest

from verl_video.cli import main as cli_main
from verl_video.annotations.checks import check_record
from verl_video.annotations.data_config import DataConfigError, load_data_config
from verl_video.annotations.formats import ReadOptions, detect_format, read_annotations
from verl_video.annotations.mixture import apply_sampling_strategy, dataset_rng, mix_datasets
from verl_video.annotations.records import RecordError, read_canonical


def end_past_duration(records) -> int:
    return sum(any(e > r.duration + 1e-6 for _, e in r.timestamps) for r in records if r.duration)  # float noise


def flagged(records, fix: str) -> int:
    return sum(any(p.fix == fix for p in check_record(r)) for r in records)


# ---- real annotations (../shared/data) ---------------------------------------------------------


def test_charades_sta_text_with_csv_durations(shared_data):
    folder = shared_data / "annotations" / "charades_sta"
    options = ReadOptions(durations=str(folder / "Charades_v1_test_lengths.csv"))
    records = read_annotations(str(folder / "charades_sta_test.txt"), options=options)
    assert detect_format(str(folder / "charades_sta_test.txt")) == "charades_sta"
    assert len(records) == 3720 and len({r.video for r in records}) == 1334
    assert all(r.duration for r in records) and records[0].video == "3MSZA.mp4"
    assert end_past_duration(records) == 562  # SOURCES.md; 552 of them by more than the 0.05 s tolerance
    assert flagged(records, "clip") == 552
    ohofg = [r for r in records if r.video == "OHOFG.mp4"]
    assert [1.0, 7.5] in [s for r in ohofg for s in r.timestamps]


def test_videochat_r1_dict_matches_charades_text(shared_data):
    path = shared_data / "annotations" / "videochat_r1" / "charades_test.json"
    assert detect_format(str(path)) == "dict_of_videos"
    records = read_annotations(str(path))
    assert len(records) == 3720 and records[0].id == "3MSZA#0" and records[0].duration == 30.96


def test_activitynet_captions(shared_data):
    records = read_annotations(str(shared_data / "annotations" / "activitynet" / "val_2.json"))
    assert len({r.video for r in records}) == 4885 and len(records) == 17031
    assert not any(r.query.startswith(" ") for r in records)  # sentences often start with a space
    assert records[0].video == "v_uqiMw7tQ1Cc.mp4"


def test_time_r1_records_and_clips(shared_data):
    records = read_annotations(str(shared_data / "annotations" / "time_r1" / "train_2k5.json"))
    assert detect_format(str(shared_data / "annotations" / "time_r1" / "train_2k5.json")) == "time_r1"
    assert len(records) == 2500 and sum(r.is_clip for r in records) == 665
    assert end_past_duration(records) == 34
    assert records[0].extra["difficulty"] == 50.0 and records[0].id.startswith("my|cosmo|")


def test_tvgbench(shared_data):
    records = read_annotations(str(shared_data / "annotations" / "time_r1" / "tvgbench.json"))
    assert len(records) == 800 and flagged(records, "drop") == 11  # the zero-length answers
    assert records[0].timestamps == [[13.4, 28.1]] and records[0].source == "charades"
    assert records[0].extra["original_source"].endswith("Charades_sta_test.json")


@pytest.mark.parametrize(
    "relative, extra",
    [
        ("charades_sta/charades_sta_test.txt", ["--durations"]),
        ("activitynet/val_2.json", []),
        ("time_r1/train_2k5.json", []),
        ("time_r1/tvgbench.json", []),
        ("videochat_r1/charades_test.json", []),
    ],
)
def test_convert_round_trips(shared_data, tmp_path, relative, extra, capsys):
    source = shared_data / "annotations" / relative
    if extra:
        extra = extra + [str(shared_data / "annotations" / "charades_sta" / "Charades_v1_test_lengths.csv")]
    out = tmp_path / "out.jsonl"
    assert cli_main(["convert", str(source), "-o", str(out), *extra]) == 0
    assert "wrote" in capsys.readouterr().out
    original = read_annotations(str(source), options=ReadOptions(durations=extra[-1]) if extra else None)
    again = read_canonical(str(out))
    assert detect_format(str(out)) == "canonical"
    assert [(r.id, r.video, r.query, r.timestamps, r.duration, r.video_start, r.source) for r in again] == [
        (r.id, r.video, r.query, r.timestamps, r.duration, r.video_start, r.source) for r in original
    ]


# ---- generated annotations ---------------------------------------------------------------------


def test_temporal_r1_config_and_records_work_unchanged(tmp_path):
    rows = [
        {"dataset": "charades", "video": "a.mp4", "problem": "When does the man sit?", "solution": [0.1, 0.5],
         "video_length": 20.0},
        {"dataset": "charades", "video": "b.mp4", "problem": "When?", "solution": [0.0, 1.0], "video_length": 8},
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tvg.yaml").write_text(
        "datasets:\n  - json_path: train.jsonl\n    data_folder: videos\n    sampling_strategy: random:50%\n"
    )
    config = load_data_config(str(tmp_path / "tvg.yaml"))
    entry = config.datasets[0]
    records = read_annotations(entry.json_path, entry.format, entry.read_options)
    assert records[0].timestamps == [[2.0, 10.0]] and records[0].duration == 20.0
    assert records[0].extra["prompt_template"] == "temporal_r1"
    assert entry.resolve_video("a.mp4") == str(tmp_path / "videos" / "a.mp4")
    assert len(apply_sampling_strategy(records, entry.sampling_strategy, dataset_rng(1, entry.name, "s"))) == 1


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("datasets: []\n", "tvg.yaml:1: key 'datasets'"),
        ("datasets:\n  - data_folder: v\n", "tvg.yaml:2: datasets[0].json_path: missing"),
        ("datasets:\n  - json_path: a.jsonl\n    data_folder: v\n    sampling_strategy: some\n",
         "tvg.yaml:4: datasets[0].sampling_strategy"),
        ("datasets:\n  - json_path: a.jsonl\n    data_folder: v\n    fps: -1\n", "tvg.yaml:4: datasets[0].fps"),
        ("datasets:\n  - json_path: a.jsonl\n    data_folder: v\n    colour: red\n", "tvg.yaml:4: datasets[0].colour"),
        ("datasets:\n  - json_path: nothere.jsonl\n    data_folder: v\n", "tvg.yaml:2: datasets[0].json_path: file not"),
        ("datasets: [\n", "tvg.yaml:2: invalid YAML"),
    ],
)  # fmt: skip
def test_config_errors_name_file_line_and_key(tmp_path, yaml_text, message):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "tvg.yaml").write_text(yaml_text)
    with pytest.raises(DataConfigError) as err:
        load_data_config(str(tmp_path / "tvg.yaml"))
    assert message in str(err.value)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"video": "a.mp4", "query": "q"}', "x.jsonl:2: missing field 'timestamps'"),
        ('{"video": "a.mp4", "query": "q", "timestamps": [[1, "x"]]}', "x.jsonl:2: field 'timestamps[0][1]'"),
        ('{"video": "a.mp4", "query": "q", "timestamps": [1, 2], "duration": "long"}', "x.jsonl:2: field 'duration'"),
        ("{not json", "x.jsonl:2: invalid JSON"),
    ],
)
def test_record_errors_name_file_line_and_field(tmp_path, line, message):
    good = '{"video": "a.mp4", "query": "q", "timestamps": [1, 2]}'
    (tmp_path / "x.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(RecordError) as err:
        read_annotations(str(tmp_path / "x.jsonl"), "canonical")
    assert message in str(err.value)


def test_nan_is_read_and_flagged(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"video": "a.mp4", "query": "q", "timestamps": [NaN, 2]}\n')
    (record,) = read_annotations(str(tmp_path / "x.jsonl"))
    assert math.isnan(record.timestamps[0][0]) and check_record(record)[0].fix == "drop"


@pytest.mark.parametrize("strategy, expected", [("all", 10), ("first:3", 3), ("end:4", 4), ("random:5", 5), ("random:30%", 3)])
def test_sampling_strategies_are_seeded(strategy, expected):
    items = list(range(10))
    picked = apply_sampling_strategy(items, strategy, dataset_rng(7, "d", "strategy"))
    assert len(picked) == expected
    assert picked == apply_sampling_strategy(items, strategy, dataset_rng(7, "d", "strategy"))
    if strategy == "end:4":
        assert picked == [6, 7, 8, 9]


def test_weights_set_the_mixture(tmp_path):
    from verl_video.annotations.data_config import DatasetEntry

    a = DatasetEntry(name="a", json_path="", data_folder="", weight=3.0)
    b = DatasetEntry(name="b", json_path="", data_folder="", weight=1.0)
    mixed = mix_datasets([(a, list(range(10))), (b, list(range(100, 110)))], seed=0)
    assert sum(e.name == "a" for e, _ in mixed) == 15 and sum(e.name == "b" for e, _ in mixed) == 5
    assert mixed == mix_datasets([(a, list(range(10))), (b, list(range(100, 110)))], seed=0)
