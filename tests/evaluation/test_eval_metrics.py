from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verl_video.rewards.grounding_metrics import Convention, metric_names, per_sample_metrics, recall_key, summarize


def test_threshold_tests_differ_only_at_equality():
    ious, parsed = [0.5, 0.7, 0.3, 0.49], [True] * 4
    assert summarize(ious, parsed)["r1@0.5"] == 50.0
    assert summarize(ious, parsed, Convention(strict=True))["r1@0.5"] == 25.0
    assert summarize(ious, parsed)["r1@0.3"] == 100.0
    assert summarize(ious, parsed, Convention(strict=True))["r1@0.3"] == 75.0


def test_unparseable_answers_stay_in_the_denominator_unless_dropped():
    ious, parsed = [0.8, 0.0, 0.6, 0.0], [True, False, True, False]
    default = summarize(ious, parsed)
    assert default["count"] == default["scored"] == 4
    assert default["r1@0.5"] == 50.0 and default["miou"] == pytest.approx(35.0)
    assert default["parse_failures"] == 2 and default["parse_failure_rate"] == 50.0
    dropped = summarize(ious, parsed, Convention(drop_unparsed=True))
    assert dropped["scored"] == 2 and dropped["r1@0.5"] == 100.0 and dropped["miou"] == pytest.approx(70.0)
    assert dropped["parse_failure_rate"] == 50.0  # still reported


def test_an_iou_stored_for_a_failure_is_ignored():
    assert summarize([0.9], [False])["miou"] == 0.0


def test_empty_and_mismatched_inputs():
    assert summarize([], [])["count"] == 0
    with pytest.raises(ValueError):
        summarize([0.1], [])
    with pytest.raises(ValueError):
        Convention(thresholds=(1.5,))


def test_describe_names_the_convention():
    assert ">=" in Convention().describe() and "IoU 0" in Convention().describe()
    assert "IoU > m" in Convention(strict=True).describe()
    assert "parsed answers only" in Convention(drop_unparsed=True).describe()
    assert metric_names()[:3] == ["r1@0.3", "r1@0.5", "r1@0.7"]


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40), st.booleans())
def test_per_sample_means_equal_the_summary(samples, strict):
    """What verl averages during validation equals what `score` reports."""
    convention = Convention(strict=strict)
    ious, parsed = [s[0] for s in samples], [s[1] for s in samples]
    summary = summarize(ious, parsed, convention)
    rows = [per_sample_metrics(i, p, convention) for i, p in samples]
    n = len(rows)
    for m in convention.thresholds:
        assert 100 * sum(r[recall_key(m)] for r in rows) / n == pytest.approx(summary[recall_key(m)])
    assert 100 * sum(r["iou"] for r in rows) / n == pytest.approx(summary["miou"])
    assert 100 - 100 * sum(r["parse_ok"] for r in rows) / n == pytest.approx(summary["parse_failure_rate"])


def test_verl_validation_reports_the_same_numbers_as_score():
    """Per-sample keys through verl 0.9.1's own validation aggregation give `summarize`'s numbers per source."""
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    samples = [("a", 0.5, True), ("a", 0.71, True), ("a", 0.0, False), ("b", 0.3, True), ("b", 0.29, True)]
    rows = [per_sample_metrics(iou, ok) for _, iou, ok in samples]
    infos = {key: [row[key] for row in rows] for key in rows[0]}
    sources = [s for s, _, _ in samples]
    metrics = process_validation_metrics(sources, [f"uid{i}" for i in range(len(samples))], infos)
    for source in ("a", "b"):
        mine = summarize([i for s, i, _ in samples if s == source], [ok for s, _, ok in samples if s == source])
        for key in ("r1@0.3", "r1@0.5", "r1@0.7"):
            assert 100 * metrics[source][key]["mean@1"] == pytest.approx(mine[key])
        assert 100 * metrics[source]["iou"]["mean@1"] == pytest.approx(mine["miou"])
        assert 100 * (1 - metrics[source]["parse_ok"]["mean@1"]) == pytest.approx(mine["parse_failure_rate"])
