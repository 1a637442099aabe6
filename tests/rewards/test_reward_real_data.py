"""Real third-party data (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
import math

from verl_video.rewards import RewardScorer, temporal_iou
from verl_video.rewards.parser import OK, parse_interval


def test_time_r1_difficulty_is_100_times_iou(shared_data):
    rows = json.loads((shared_data / "annotations/time_r1/train_2k5.json").read_text())
    assert len(rows) == 2500
    mismatches = [r["qid"] for r in rows
                  if not math.isclose(100 * temporal_iou(r["pred"], r["timestamp"]), r["difficulty"], abs_tol=1e-9)]
    assert mismatches == []


def test_time_r1_predictions_round_trip_through_the_parser(shared_data):
    # The same numbers written the Time-R1 way score the same through the full reward path.
    rows = json.loads((shared_data / "annotations/time_r1/train_2k5.json").read_text())
    scorer = RewardScorer(preset="videochat_r1", parser={"clip": False})
    for r in rows[:500]:
        text = f"<think>...</think><answer>{r['pred'][0]:.2f} to {r['pred'][1]:.2f}</answer>"
        assert parse_interval(text).status == OK
        result = scorer("time_r1", text, {"timestamps": [r["timestamp"]], "duration": r["duration"]})
        assert abs(100 * result["iou"] - r["difficulty"]) < 1.0


def test_tvgbench_answers_parse(shared_data):
    # TVGBench writes answers as "s-e": the seeds' "to/and" regex reads none of them.
    rows = json.loads((shared_data / "annotations/time_r1/tvgbench.json").read_text())
    for r in rows:
        result = parse_interval(f"<answer>{r['answer']}</answer>")
        start, end = (float(v) for v in r["answer"].split("-"))
        assert result.status == OK and result.interval == (start, end)
