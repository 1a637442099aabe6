from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_video.cli import main
from verl_video.evaluation.breakdown import Buckets, field_value
from verl_video.rewards.grounding_metrics import Convention
from verl_video.evaluation.score import score_file
from verl_video.rewards.parser import ParserConfig


def time_r1_predictions(shared_data: Path, out: Path, write_jsonl) -> Path:
    """Time-R1's own predictions (`pred`) of its training set as a predictions file."""
    rows = json.loads((shared_data / "annotations/time_r1/train_2k5.json").read_text())
    return write_jsonl(out, [{"id": r["qid"], "timestamps": r["timestamp"], "prediction": r["pred"],
                              "duration": r["duration"], "source": r["qid"].split("|")[1]} for r in rows])


def test_time_r1_train_2k5_reproduces_both_conventions(shared_data, tmp_path, write_jsonl):
    path = str(time_r1_predictions(shared_data, tmp_path / "t.jsonl", write_jsonl))
    ge = score_file(path, Convention(), ParserConfig())
    gt = score_file(path, Convention(strict=True), ParserConfig())
    assert ge.overall["count"] == 2500 and ge.overall["parse_failures"] == 0
    assert round(ge.overall["r1@0.5"], 2) == 21.24
    assert round(gt.overall["r1@0.5"], 2) == 16.92
    # difficulty = 100 * IoU(pred, timestamp) in the file itself: our mIoU is its mean.
    rows = json.loads((shared_data / "annotations/time_r1/train_2k5.json").read_text())
    assert ge.overall["miou"] == pytest.approx(sum(r["difficulty"] for r in rows) / len(rows))
    assert set(ge.breakdowns["source"]) == {"cosmo", "yt-temporal", "internvid-vtime", "didemo", "howto100m", "queryd"}
    assert sum(g["count"] for g in ge.breakdowns["duration"].values()) == 2500


def test_score_cli_prints_conventions_and_writes_report(shared_data, tmp_path, capsys, write_jsonl):
    path = time_r1_predictions(shared_data, tmp_path / "t.jsonl", write_jsonl)
    assert main(["score", str(path), "--strict", "-o", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "| all | 56.60 | 16.92 | 2.88 | 34.37 | 0.00 | 2500 |" in out
    assert "IoU > m" in out
    report = json.loads((tmp_path / "report/metrics.json").read_text())
    assert report["conventions"]["iou_test"] == ">"
    for name in ("metrics.md", "iou_hist.png", "by_source.png", "by_duration.png", "by_moment_length.png",
                 "by_moment_position.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_tvgbench_breakdown_by_named_fields(shared_data, tmp_path, write_jsonl):
    from verl_video.annotations.formats import read_annotations

    records = read_annotations(str(shared_data / "annotations/time_r1/tvgbench.json"))
    rows = [{**r.to_json(), "prediction": r.timestamps[0]} for r in records]
    report = score_file(str(write_jsonl(tmp_path / "tvg.jsonl", rows)), Convention(), ParserConfig(),
                        fields=["qsemtype", "bins.videolen"])
    assert report.overall["count"] == 800
    assert sum(g["count"] for g in report.breakdowns["qsemtype"].values()) == 800
    assert "Human Pose" in report.breakdowns["qsemtype"]
    assert set(report.breakdowns["bins.videolen"]) <= {str(i) for i in range(20)}
    # Zero-length ground truths predicted exactly still score IoU 1.
    assert report.overall["r1@0.7"] == 100.0


def test_best_window_counts_and_responses_are_reparsed(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"timestamps": [[0, 2], [10, 20]], "prediction": [10, 20]},
        {"timestamps": [0, 10], "response": "<answer>0 to 10</answer> or <answer>50 to 60 and 0 to 5</answer>",
         "duration": 100},
        {"timestamps": [0, 10], "response": "no tags at all: 0 to 10"},
        {"timestamps": [0, 10], "response": "<answer>12 to 2</answer>"},
    ])
    last = score_file(str(path), Convention(), ParserConfig())
    assert [round(i, 3) for i in last.ious] == [1.0, 0.5, 0.0, 0.667]
    assert dict(last.statuses) == {"ok": 2, "no_answer": 1, "reversed": 1}
    first = score_file(str(path), Convention(), ParserConfig(match="first"))
    assert first.ious[1] == 0.0  # 50 to 60
    whole = score_file(str(path), Convention(), ParserConfig(fallback="whole_text", reversed="reject"))
    assert whole.ious[2] == 1.0 and not whole.parsed[3]


def test_given_predictions_are_not_clipped_but_reversed_follows_the_parser(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"timestamps": [5, 10], "prediction": [5, 20], "duration": 10},
        {"timestamps": [5, 10], "prediction": [10, 5]},
        {"timestamps": [5, 10], "prediction": None},
        {"timestamps": [5, 10], "prediction": [5, 10], "response": "<answer>0 to 1</answer>"},
    ])
    report = score_file(str(path), Convention(), ParserConfig())
    assert report.ious[:3] == [pytest.approx(1 / 3), 1.0, 0.0]
    assert report.ious[3] == 0.0  # the response wins by default
    assert not score_file(str(path), Convention(), ParserConfig(reversed="reject")).parsed[1]
    assert score_file(str(path), Convention(), ParserConfig(), prefer="prediction").ious[3] == 1.0


def test_malformed_file_exits_2_naming_the_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"timestamps": [1, 2], "prediction": [1, 2]}\n{"timestamps": [1, 2]}\n')
    assert main(["score", str(path)]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err


def test_buckets_and_field_values():
    buckets = Buckets((0, 30, 60, float("inf")), "s")
    assert buckets.labels() == ["0-30s", "30-60s", ">=60s"]
    assert [buckets.label(v) for v in (-1, 0, 29.9, 30, 1e6, None)] == \
        ["0-30s", "0-30s", "0-30s", "30-60s", ">=60s", "unknown"]
    assert field_value({"bins": {"qlen": 3.0}}, "bins.qlen") == "3"
    assert field_value({"a": None}, "a") == "unknown" and field_value({}, "x.y") == "unknown"
    with pytest.raises(ValueError):
        Buckets((1, 1))


def test_custom_buckets_from_the_command_line(tmp_path, capsys, write_jsonl):
    path = write_jsonl(tmp_path / "p.jsonl", [{"timestamps": [0, 1], "prediction": [0, 1], "duration": d}
                                             for d in (10, 100, 1000)])
    assert main(["score", str(path), "--buckets", "duration=0,50,inf", "--by", "nothing"]) == 0
    out = capsys.readouterr().out
    assert "| 0-50s |" in out and "| >=50s |" in out and "## By nothing" in out
    assert main(["score", str(path), "--buckets", "duration=5,1"]) == 2


def test_score_grades_an_evals_predictions_as_the_eval_did_and_says_so(tmp_path, write_jsonl):
    import json
    import subprocess
    import sys

    # What `verl-video eval` leaves: predictions.jsonl and, beside it, run.json with the parser it graded with.
    pred = write_jsonl(tmp_path / "predictions.jsonl", [
        {"timestamps": [0, 10], "response": "<answer>0 to 10</answer>", "duration": 20},
        {"timestamps": [0, 10], "response": "<answer>10 to 0</answer>", "duration": 20},
    ])
    (tmp_path / "run.json").write_text(json.dumps({"parser": {"fallback": "none", "match": "last", "reversed": "reject",
                                                               "clip": True, "normalized": False}}))

    def score(*flags: str) -> tuple[str, str]:
        done = subprocess.run([sys.executable, "-m", "verl_video.cli", "score", str(pred), *flags],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr

    out, err = score()
    assert "reversed=reject" in err and str(tmp_path / "run.json") in err
    assert "| all | 50.00 | 50.00 | 50.00 | 50.00 |" in out  # the reversed pair rejected, as eval graded it
    out, err = score("--reversed", "swap")
    assert "reversed=swap" in err and "changed by the flags given" in err
    assert "| all | 100.00 | 100.00 | 100.00 | 100.00 |" in out
