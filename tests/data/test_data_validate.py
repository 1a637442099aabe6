"""`verl-video validate`: every kind of bad record and video is reported with file, line and field, and fixed."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from verl_video.cli import main as cli_main
from verl_video.video import probe as probe_module
from verl_video.annotations.records import read_canonical


@pytest.fixture
def broken_config(tmp_path, videos):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos["short"], folder / "ok.mp4")  # 10 s
    (folder / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 500)
    good = {"video": "ok.mp4", "query": "q", "duration": 10.0}
    lines = [
        {**good, "id": "fine", "timestamps": [[1, 2]]},
        {**good, "id": "reversed", "timestamps": [[5, 3]]},
        {**good, "id": "late", "timestamps": [[8, 11.5]]},
        {**good, "id": "empty", "timestamps": [[4, 4]]},
        {**good, "id": "nan", "timestamps": [[float("nan"), 4]]},
        {**good, "id": "missing", "video": "gone.mp4", "timestamps": [[1, 2]]},
        {**good, "id": "corrupt", "video": "corrupt.mp4", "timestamps": [[1, 2]]},
        {**good, "id": "wrong_duration", "timestamps": [[1, 2]], "duration": 30.0},
        {**good, "id": "clip_outside", "timestamps": [[1, 2]], "video_start": 5.0, "video_end": 40.0, "duration": 35.0},
        {"id": "no_query", "video": "ok.mp4", "timestamps": [[1, 2]]},
        {**good, "id": "no_duration", "timestamps": [[1, 12]], "duration": None},
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    config = {"datasets": [{"name": "broken", "json_path": "train.jsonl", "data_folder": "videos", "fps": 1.0}]}
    (tmp_path / "tvg.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "tvg.yaml"


EXPECTED = [
    "train.jsonl:2: timestamps[0]: start 5.0 > end 3.0 [fix: swap]",
    "train.jsonl:3: timestamps[0]: end 11.5 > duration 10.0 [fix: clip]",
    "train.jsonl:4: timestamps[0]: zero length at 4.0 [fix: drop]",
    "train.jsonl:5: timestamps[0]: not a finite number: [nan, 4.0] [fix: drop]",
    "train.jsonl:6: video: video not found",
    "train.jsonl:7: video: cannot",
    "train.jsonl:8: duration: annotated 30.0, the video shows 10.00 s",
    "train.jsonl:9: video_end: clip ends at 40.0, the video at 10.00 [fix: drop]",
    "train.jsonl:10: record: missing field 'query' [fix: drop]",
    "train.jsonl:11: timestamps[0]: end 12.0 > duration 10.0 [fix: clip]",
]


def test_every_problem_is_reported_with_file_line_and_field(broken_config, capsys):
    assert cli_main(["validate", str(broken_config)]) == 1
    out = capsys.readouterr().out
    assert "broken: 10 records, 3 videos" in out
    for line in EXPECTED:
        assert line in out, line
    assert "train.jsonl:1:" not in out


def test_fixes_write_repaired_data_and_report_every_change(broken_config, tmp_path, capsys):
    out_dir = tmp_path / "fixed"
    code = cli_main(["validate", str(broken_config), "--fix", "clip,swap,drop", "--out", str(out_dir)])
    printed = capsys.readouterr().out
    kept = {r.id: r for r in read_canonical(str(out_dir / "broken.jsonl"))}
    assert set(kept) == {"fine", "reversed", "late", "wrong_duration", "no_duration"}
    assert kept["reversed"].timestamps == [[3.0, 5.0]] and kept["late"].timestamps == [[8.0, 10.0]]
    assert kept["no_duration"].duration == 10.0 and kept["no_duration"].timestamps == [[1.0, 10.0]]
    changes = [json.loads(line) for line in (out_dir / "changes.jsonl").read_text().splitlines()]
    assert {c["where"] for c in changes} >= {f"train.jsonl:{i}" for i in (2, 3, 4, 5, 6, 7, 9, 10, 11)}
    fixed_config = yaml.safe_load((out_dir / "tvg.fixed.yaml").read_text())
    assert fixed_config["datasets"][0]["fps"] == 1.0
    assert code == 1 and "1 problems left" in printed  # the duration mismatch has no automatic fix


def test_each_video_is_probed_once(broken_config, monkeypatch):
    calls = []
    real = probe_module._read_header
    monkeypatch.setattr(probe_module, "_probe_cache", {})
    monkeypatch.setattr(probe_module, "_read_header", lambda p, i: calls.append(p) or real(p, i))
    cli_main(["validate", str(broken_config)])
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 2  # ok.mp4 and corrupt.mp4 (gone: no file)


def test_real_charades_and_videos(shared_data, tmp_path, capsys):
    config = {
        "datasets": [
            {"name": "charades", "json_path": str(shared_data / "annotations/charades_sta/charades_sta_test.txt"),
             "durations": str(shared_data / "annotations/charades_sta/Charades_v1_test_lengths.csv"),
             "data_folder": str(shared_data / "videos")},
        ]
    }  # fmt: skip
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(config))
    assert cli_main(["validate", str(tmp_path / "real.yaml"), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "charades: 3720 records, 1334 videos" in out and "552  timestamps: end # > duration #" in out
    # OHOFG.mp4 is the one Charades video present: its 6 queries have no video problem.
    assert "charades_sta_test.txt:" in out


def test_a_video_without_a_header_duration_is_measured_and_reported(tmp_path, videos, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(videos["no_duration"], folder / "recorded.webm")  # 6 s at 10 fps, header without duration
    row = {"id": "rec", "video": "recorded.webm", "query": "q", "timestamps": [[1, 2]], "duration": 6.0}
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    config = {"datasets": [{"name": "rec", "json_path": "train.jsonl", "data_folder": "videos"}]}
    (tmp_path / "tvg.yaml").write_text(yaml.safe_dump(config))
    assert cli_main(["validate", str(tmp_path / "tvg.yaml")]) == 0
    out = capsys.readouterr().out
    assert "rec: 1 records, 1 videos, 0 problems" in out
    assert "1 videos have no duration in their header; measured" in out


def test_validate_reports_every_config_key_problem_of_a_file_in_one_run(tmp_path):
    import subprocess
    import sys

    (tmp_path / "a.jsonl").write_text('{"video": "v.mp4", "query": "q", "timestamps": [[0, 1]]}\n')
    config = tmp_path / "data.yaml"
    config.write_text(
        "seed: often\n"
        "datasets:\n"
        "  - json_path: a.jsonl\n"
        "    data_folder: .\n"
        "    fps: -1\n"
        "    colour: red\n"
        "  - json_path: missing.jsonl\n"
        "    data_folder: .\n"
        "    sampling_strategy: some\n"
    )
    done = subprocess.run([sys.executable, "-m", "verl_video.cli", "validate", str(config)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    for problem in ("data.yaml:1: key 'seed'", "data.yaml:5: datasets[0].fps", "data.yaml:6: datasets[0].colour",
                    "data.yaml:7: datasets[1].json_path: file not found", "data.yaml:9: datasets[1].sampling_strategy"):
        assert problem in out, out
