"""Selection strategies and `verl-video select` without a model: Time-R1's filter, variance, user strategies,
bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from verl_video.cli import main
from verl_video.annotations.data_config import load_data_config
from verl_video.annotations.formats import read_annotations
from verl_video.selection.stats import RecordStats, stats_from_predictions
from verl_video.selection.strategies import ALL_UNPARSED, NOT_SAMPLED, TOO_EASY, ZERO_IOU, ZERO_VARIANCE, select


def stats_with(ious=None, rewards=None, n=None) -> list[RecordStats]:
    ious = ious if ious is not None else [0.0] * n
    out = []
    for i, iou in enumerate(ious):
        r = rewards[i] if rewards is not None else None
        out.append(RecordStats(id=f"r{i}", record={"id": f"r{i}", "video": f"v{i}.mp4", "query": "q",
                                                   "timestamps": [[0.0, 1.0]]},
                               ious=[iou] if r is None else [iou] * len(r), rewards=r, greedy_iou=iou))
    return out


def test_difficulty_band_is_time_r1s_open_closed_interval():
    stats = stats_with([0.0, 1e-6, 0.3, 0.7, 0.7000001, 1.0])
    result = select(stats, "difficulty")
    assert [s.id for s in result.kept] == ["r1", "r2", "r3"]
    assert [s.id for s in result.dropped[ZERO_IOU]] == ["r0"]
    assert [s.id for s in result.dropped[TOO_EASY]] == ["r4", "r5"]


def test_difficulty_linspace_takes_evenly_spaced_ranks_by_iou():
    ious = [(i + 1) / 101 * 0.7 for i in range(100)]
    shuffled = ious[::2] + ious[1::2]  # file order must not matter
    result = select(stats_with(shuffled), "difficulty", mode="linspace", count=5)
    kept = sorted(s.difficulty_iou for s in result.kept)
    assert kept == pytest.approx([ious[0], ious[24], ious[49], ious[74], ious[99]])
    assert len(result.dropped[NOT_SAMPLED]) == 95


def test_difficulty_gaussian_prefers_iou_near_mu():
    ious = [i / 1000 * 0.7 + 0.0007 for i in range(1000)]
    kept = select(stats_with(ious), "difficulty", mode="gaussian", count=200, seed=3).kept
    mean = sum(s.difficulty_iou for s in kept) / len(kept)
    near = sum(abs(s.difficulty_iou - 0.3) < 0.1 for s in kept) / len(kept)
    assert abs(mean - 0.3) < 0.05  # the band's own mean is 0.35
    assert near > 0.45  # 29% of the band lies within 0.1 of 0.3
    again = select(stats_with(ious), "difficulty", mode="gaussian", count=200, seed=3).kept
    assert [s.id for s in again] == [s.id for s in kept]


def test_variance_keeps_disagreeing_groups_and_refuses_k1():
    stats = stats_with([0.1, 0.2, 0.3], rewards=[[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 2.0, 0.0]])
    result = select(stats, "variance")
    assert [s.id for s in result.kept] == ["r1", "r2"]
    assert [s.id for s in result.dropped[ZERO_VARIANCE]] == ["r0"]
    assert [s.id for s in select(stats, "variance", top=1).kept] == ["r2"]
    with pytest.raises(ValueError, match="variance of one answer is always 0"):
        select(stats_with([0.1, 0.2], rewards=[[1.0], [0.0]]), "variance")


def test_records_with_every_answer_unparsed_are_dropped_with_their_own_reason():
    stats = stats_with([0.0, 0.4], rewards=[[0.0, 0.0], [0.5, 1.0]])
    stats[0].parse_failures = 2
    assert [s.id for s in select(stats, "variance").dropped[ALL_UNPARSED]] == ["r0"]
    assert [s.id for s in select(stats, "difficulty").dropped[ALL_UNPARSED]] == ["r0"]
    # A greedy answer that parsed still measures difficulty, whatever the sampled ones did.
    stats[0].greedy_parsed = True
    assert ALL_UNPARSED not in select(stats, "difficulty").dropped


def _predictions(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(ious_pred: list[tuple[float, float]]) -> list[dict]:
    return [{"id": f"s{i}", "video": f"/videos/v{i}.mp4", "query": f"event {i}", "timestamps": [0.0, 10.0],
             "duration": 20.0, "prediction": list(p)} for i, p in enumerate(ious_pred)]


def test_select_from_predictions_writes_annotations_config_and_report(tmp_path, capsys):
    # IoUs: 0 (disjoint), 0.5, 1.0 (too easy), 0.2
    pred = _predictions(tmp_path / "pred.jsonl", _rows([(12, 15), (0, 5), (0, 10), (8, 18)]))
    out = tmp_path / "out"
    assert main(["select", "--from-predictions", str(pred), "--strategy", "difficulty", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept 2" in printed and "iou_zero 1" in printed and "too_easy 1" in printed
    config = load_data_config(str(out / "data_config.yaml"))
    entry = config.datasets[0]
    records = read_annotations(entry.json_path, entry.format)
    assert [r.id for r in records] == ["s1", "s3"]
    assert records[0].video == "/videos/v1.mp4" and records[0].timestamps == [[0.0, 10.0]]
    report = json.loads((out / "selection.json").read_text())
    assert report["counts"] == {"kept": 2, "iou_zero": 1, "too_easy": 1}
    assert (out / "selection_hist.png").stat().st_size > 1000


def test_empty_selection_says_so_and_writes_nothing(tmp_path, capsys):
    pred = _predictions(tmp_path / "pred.jsonl", _rows([(0, 10), (12, 15)]))
    out = tmp_path / "out"
    assert main(["select", "--from-predictions", str(pred), "-o", str(out)]) == 1
    assert "kept none of the 2 records" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_ids_not_in_the_data_are_refused_naming_the_line(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "other", "video": "v.mp4", "query": "q", "timestamps": [0, 1]}) + "\n")
    pred = _predictions(tmp_path / "pred.jsonl", _rows([(0, 5)]))
    assert main(["select", str(data), "--from-predictions", str(pred), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pred.jsonl:1" in err and "'s0' is not in" in err


def test_variance_on_a_predictions_file_is_refused_with_the_reason(tmp_path, capsys):
    pred = _predictions(tmp_path / "pred.jsonl", _rows([(0, 5), (1, 5)]))
    assert main(["select", "--from-predictions", str(pred), "--strategy", "variance", "-o", str(tmp_path / "o")]) == 2
    assert "variance of one answer is always 0" in capsys.readouterr().err


def test_user_strategy_from_a_file(tmp_path, capsys):
    module = tmp_path / "my_strategies.py"
    module.write_text(
        "from verl_video.selection import Selection, register_strategy\n"
        "@register_strategy('long_queries')\n"
        "def long_queries(stats, min_chars: int = 8):\n"
        "    keep = [s for s in stats if len(s.record['query']) >= min_chars]\n"
        "    return Selection(keep, {'short': [s for s in stats if s not in keep]})\n")
    rows = _rows([(0, 5), (0, 5)])
    rows[1]["query"] = "a much longer query"
    pred = _predictions(tmp_path / "pred.jsonl", rows)
    out = tmp_path / "out"
    assert main(["select", "--from-predictions", str(pred), "--modules", str(module), "--strategy", "long_queries",
                 "-p", "min_chars=10", "-o", str(out)]) == 0
    assert "kept 1, short 1" in capsys.readouterr().out
    assert [json.loads(line)["id"] for line in (out / "annotations" / "pred.jsonl").read_text().splitlines()] == ["s1"]


# ------------------------------------------------------------------ real data: Time-R1's own filter

def test_time_r1_difficulty_is_iou_of_its_pred_and_the_band_reproduces_its_filter(shared_data, tmp_path, capsys):
    path = shared_data / "annotations" / "time_r1" / "train_2k5.json"
    raw = json.loads(path.read_text())
    stats = stats_from_predictions(str(path))
    assert len(stats) == len(raw) == 2500
    # Time-R1 stored difficulty = 100 x IoU(pred, timestamp), predictions not clipped to the video.
    assert all(math.isclose(100 * s.difficulty_iou, r["difficulty"], abs_tol=1e-9) for s, r in zip(stats, raw))
    out = tmp_path / "sel"
    assert main(["select", "--from-predictions", str(path), "--strategy", "difficulty", "-o", str(out)]) == 0
    in_band = [r["qid"] for r in raw if 0 < r["difficulty"] <= 70]
    assert "kept 2428, iou_zero 0, too_easy 72" in capsys.readouterr().out
    kept = [json.loads(line) for line in (out / "annotations" / "train_2k5.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept] == in_band
    assert yaml.safe_load((out / "data_config.yaml").read_text())["datasets"][0]["json_path"] == \
        "annotations/train_2k5.jsonl"
