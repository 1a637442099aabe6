"""`verl-video summarize`: bad inputs and reward failures are reported, not only rewards and time."""

from __future__ import annotations

import json

from verl_video.tools.summarize import summarize


def _write(path, steps):
    path.write_text("".join(json.dumps({"step": i + 1, "data": data}) + "\n" for i, data in enumerate(steps)))


def test_summary_reports_bad_videos_and_reward_failures(tmp_path):
    common = {"critic/score/mean": 1.0, "data/unreadable_at_start": 4.0, "data/replaced_total": 0.0}
    _write(tmp_path / "metrics.jsonl", [
        {**common, "data/decode_failed_total": 1.0, "reward/demo/tiou/errors": 2.0, "reward/demo/tiou/nan": 0.0},
        {**common, "data/decode_failed_total": 3.0, "reward/demo/tiou/errors": 1.0, "reward/demo/tiou/nan": 0.0},
    ])  # fmt: skip
    text = summarize(tmp_path)
    assert "masked out of training (data/decode_failed_total): 3" in text
    assert "dropped (data/unreadable_at_start): 4" in text
    assert "reward failures reward/demo/tiou/errors: 3 responses" in text
    assert "tiou/nan" not in text
