"""`verl-video score` on a file mixing tasks: each task's metrics apart, grounding's R1@m from grounding lines only."""

from __future__ import annotations

import json

from verl_video.cli import main as cli_main

BOXES = [[0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4]]


def test_a_mixed_file_reports_each_task_apart(tmp_path, capsys):
    lines = [
        {"id": "g1", "timestamps": [[2, 6]], "duration": 10, "response": "<answer>2 to 6</answer>"},
        {"id": "g2", "timestamps": [[2, 6]], "duration": 10, "response": "<answer>7 to 9</answer>"},
        {"id": "m1", "task": "mcq", "ground_truth": {"answer_kind": "choice", "answer": "B", "num_options": 4},
         "response": "<answer>B</answer>"},
        {"id": "m2", "task": "mcq", "ground_truth": {"answer_kind": "choice", "answer": "B", "num_options": 4},
         "response": "no idea"},
        # A perfect tracking answer: were its box IoU averaged into grounding, R1@0.5 would read 66.67.
        {"id": "t1", "task": "tracking", "ground_truth": {"answer_kind": "boxes", "boxes": BOXES},
         "response": f"<answer>{BOXES}</answer>"},
        {"id": "t2", "task": "tracking", "ground_truth": {"answer_kind": "boxes", "boxes": BOXES},
         "response": f"<answer>{BOXES[:1]}</answer>"},
    ]  # fmt: skip
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli_main(["score", str(path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "# mcq: 2 samples" in out and "| 0.5000 | 0.5000 |" in out  # accuracy, parse_ok
    assert "parse status counts: no_answer: 1, ok: 1" in out
    assert "# tracking: 2 samples" in out and "parse status counts: ok: 1, wrong_count: 1" in out
    tracking_table = out.split("# tracking: 2 samples")[1].split("parse status")[0]
    assert "| 0.5000 | 0.5000 | 0.5000 |" in tracking_table  # box_iou, box_success@0.5, parse_ok
    grounding = out.split("# Temporal grounding scores")[1]
    assert "50.00" in grounding and "66.67" not in grounding  # R1@0.5 over the two grounding lines only


def test_a_task_line_without_its_ground_truth_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"task": "mcq", "response": "<answer>B</answer>"}) + "\n")
    assert cli_main(["score", str(path)]) == 2
    assert "preds.jsonl:1: field 'ground_truth'" in capsys.readouterr().err
