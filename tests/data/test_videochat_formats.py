"""VideoChat-R1's NExT-GQA and GOT-10k files are read as they ship; bad task fields are reported by file, index, field."""

from __future__ import annotations

import json

import pytest
import yaml

from verl_video.cli import main as cli_main
from verl_video.annotations.formats import detect_format, read_annotations
from verl_video.annotations.records import RecordError
from verl_video.tasks import get_task

QA = {"id": "1_0", "video": "1/1.mp4", "question": "why?", "options": ["(A) a", "(B) b", "(C) c"], "answer": "(B)",
      "duration": 30, "glue": [[2.0, 5.0]], "type": "CW"}  # fmt: skip
GOT = {"path": "/mnt/x/GOT-10k/val/GOT-10k_Val_000001", "object": "sloth", "gt": [[0.1, 0.1, 0.3, 0.3]] * 8}


def test_real_files_are_read_directly(shared_data):
    folder = shared_data / "annotations" / "videochat_r1"
    qa = read_annotations(str(folder / "nextgqa_val.json"))
    got = read_annotations(str(folder / "got_val.json"))
    assert (len(qa), len(got)) == (3358, 180)
    assert {r.task for r in qa} == {"grounded_qa"} and {r.task for r in got} == {"tracking"}
    first = qa[0]
    assert first.extra["answer"] == "(C)" and first.timestamps == [[13.8, 29.8]] and first.duration == 90
    assert got[0].video == "GOT-10k_Val_000010" and got[0].extra["frame_rate"] == 10.0 and len(got[0].extra["boxes"]) == 8
    # Every record passes its task's own checks (the 3 NExT-GQA spans past the duration are span problems).
    assert not [p for r in qa + got for p in get_task(r.task).validate(r)]


def test_formats_are_detected_and_a_missing_field_is_named(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([QA, {k: v for k, v in QA.items() if k != "glue"}]))
    assert detect_format(str(path)) == "videochat_qa"
    with pytest.raises(RecordError, match=r"qa.json\[1\]: missing field 'glue'"):
        read_annotations(str(path))
    tracking = tmp_path / "got.json"
    tracking.write_text(json.dumps([GOT]))
    assert detect_format(str(tracking)) == "videochat_tracking"


def test_validate_reports_bad_task_fields(tmp_path, capsys):
    qa = [QA, {**QA, "answer": "(E)"}, {**QA, "options": []}]
    got = [GOT, {**GOT, "gt": [[0.1, 0.1, 0.3, 1.3]] + GOT["gt"][1:]}, {**GOT, "gt": [[0.5, 0.1, 0.3, 0.3]] * 8}]
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    (tmp_path / "got.json").write_text(json.dumps(got))
    config = {"datasets": [
        {"name": "qa", "json_path": "qa.json", "data_folder": "."},
        {"name": "got", "json_path": "got.json", "data_folder": ".", "frame_rate": 10},
    ]}  # fmt: skip
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config))
    assert cli_main(["validate", str(tmp_path / "data.yaml"), "--no-videos"]) == 1
    out = capsys.readouterr().out
    for line in (
        "qa.json[1]: answer: '(E)' is not among the 3 options (A-C) [fix: drop]",
        "qa.json[2]: options: missing field [fix: drop]",
        "got.json[1]: boxes[0]: [0.1, 0.1, 0.3, 1.3] lies outside [0, 1]",
        "got.json[2]: boxes[0]: [0.5, 0.1, 0.3, 0.3] has x1 < x0 or y1 < y0",
    ):
        assert line in out, out
    assert "qa: 3 records, 1 videos, 2 problems" in out and "got: 3 records, 1 videos, 9 problems" in out


def test_a_frame_folder_with_too_few_frames_is_reported(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "GOT-10k_Val_000001"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (32, 24)).save(folder / f"{i + 1:08d}.jpg")
    (tmp_path / "got.json").write_text(json.dumps([GOT]))
    config = {"datasets": [{"name": "got", "json_path": "got.json", "data_folder": ".", "frame_rate": 10}]}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config))
    assert cli_main(["validate", str(tmp_path / "data.yaml")]) == 1
    assert "got.json[0]: boxes: 8 boxes need 7 frames, the video has 5 [fix: drop]" in capsys.readouterr().out
