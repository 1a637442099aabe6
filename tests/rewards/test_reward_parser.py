"""The answer parser: every documented rule, the seeds' formats, and our corrections."""

from __future__ import annotations

import pytest

from verl_video.rewards.parser import (
    NO_ANSWER,
    OK,
    OUT_OF_RANGE,
    REVERSED,
    UNPARSEABLE,
    ParserConfig,
    ParseResult,
    answer_block,
    answer_style,
    parse_interval,
    parse_intervals,
)


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("12.54 to 17.83", (12.54, 17.83)),  # Time-R1 / VideoChat-R1 template
        ("12.54 and 17.83", (12.54, 17.83)),
        ("12.5-17.8", (12.5, 17.8)),  # seeds' strict regex gives 0 here
        ("12.5 - 17.8", (12.5, 17.8)),
        ("12.5 – 17.8", (12.5, 17.8)),
        ("12.5~17.8", (12.5, 17.8)),
        ("12.5  to  17.8", (12.5, 17.8)),  # seeds need exactly one space
        ("[12.5, 17.8]", (12.5, 17.8)),
        ("(12.5, 17.8)", (12.5, 17.8)),
        ("from 12.5 seconds to 17.8 seconds", (12.5, 17.8)),
        ("The event occurs from 12.5s until 17.8s.", (12.5, 17.8)),
        ("between 12 sec and 18 secs", (12.0, 18.0)),
        ("00:12 - 00:17.5", (12.0, 17.5)),
        ("1:02.25 to 1:05", (62.25, 65.0)),
        ("0:01:02 to 0:01:10", (62.0, 70.0)),
        (".5 to 2.", (0.5, 2.0)),
        ("1e1 to 1.5e1", (10.0, 15.0)),
        ('{"start_time": "12.3", "end_time": "17.8"}', (12.3, 17.8)),  # Temporal-R1, quoted
        ('{"start_time": 12.3, "end_time": 17.8}', (12.3, 17.8)),  # numeric JSON: Temporal-R1 eval gives 0
        ("{'start': 12.3, 'end': 17.8}", (12.3, 17.8)),
        ('{"end_time": 17.8, "start_time": 12.3}', (12.3, 17.8)),
        ('{"start_time": "00:12", "end_time": "00:17"}', (12.0, 17.0)),
        ("start: 12.3, end: 17.8", (12.3, 17.8)),
    ],
)
def test_understood_forms(answer, expected):
    result = parse_interval(f"<think>reasoning 1 to 2</think><answer>{answer}</answer>", duration=100)
    assert result.status == OK
    assert result.interval == pytest.approx(expected)


def test_reads_last_answer_block_only():
    text = "<answer>1 to 2</answer> then <answer>30 to 40</answer>"
    assert parse_interval(text).interval == (30.0, 40.0)
    # A number range inside <think> never leaks into the answer (Time-R1's eval searches think first).
    assert parse_interval("<think>maybe 5 to 6</think><answer>none</answer>").status == UNPARSEABLE


def test_match_last_or_first():
    text = "<answer>1 to 2, or rather 3 to 4</answer>"
    assert parse_interval(text).interval == (3.0, 4.0)
    assert parse_interval(text, config=ParserConfig(match="first")).interval == (1.0, 2.0)


def test_no_answer_block_and_fallback():
    assert parse_interval("It happens at 3 to 5 seconds.") == ParseResult(None, NO_ANSWER)
    whole = parse_interval("It happens at 3 to 5 seconds.", config=ParserConfig(fallback="whole_text"))
    assert (whole.status, whole.interval) == (OK, (3.0, 5.0))


def test_tags_case_and_unclosed():
    assert parse_interval("<Answer>3 to 5</ANSWER>").interval == (3.0, 5.0)
    assert parse_interval("<think>x</think><answer>3 to 5").interval == (3.0, 5.0)  # truncated response
    assert answer_block("<answer>3 to 5", closed=True) is None
    assert answer_block("<glue>(1, 2)</glue>", tag="glue") == "(1, 2)"


@pytest.mark.parametrize("answer", ["", "soon", "12.5", "nan to inf", "inf to 5", "1e400 to 5", "twelve to 17"])
def test_unparseable(answer):
    result = parse_interval(f"<answer>{answer}</answer>", duration=30)
    assert (result.interval, result.status) == (None, UNPARSEABLE)


def test_reversed_swap_or_reject():
    swapped = parse_interval("<answer>17.8 to 12.5</answer>", 30)
    assert (swapped.interval, swapped.status, swapped.raw) == ((12.5, 17.8), REVERSED, (17.8, 12.5))
    rejected = parse_interval("<answer>17.8 to 12.5</answer>", 30, ParserConfig(reversed="reject"))
    assert (rejected.interval, rejected.status) == (None, REVERSED)


def test_out_of_range_clip_or_keep():
    clipped = parse_interval("<answer>-2 to 45</answer>", 30)
    assert (clipped.interval, clipped.status) == ((0.0, 30.0), OUT_OF_RANGE)
    kept = parse_interval("<answer>-2 to 45</answer>", 30, ParserConfig(clip=False))
    assert (kept.interval, kept.status) == ((-2.0, 45.0), OUT_OF_RANGE)
    # Without a duration only negative values are out of range.
    assert parse_interval("<answer>5 to 500</answer>").status == OK
    assert parse_interval("<answer>-5 to 5</answer>").interval == (0.0, 5.0)
    # 1e308 is finite: clipped, not a crash.
    assert parse_interval("<answer>0 to 1e308</answer>", 30).interval == (0.0, 30.0)


def test_reversed_takes_precedence_over_out_of_range():
    result = parse_interval("<answer>45 to -2</answer>", 30)
    assert (result.interval, result.status) == ((0.0, 30.0), REVERSED)


def test_normalized_values():
    config = ParserConfig(normalized=True)
    assert parse_interval("<answer>0.1 to 0.5</answer>", 50, config).interval == pytest.approx((5.0, 25.0))
    assert parse_interval("<answer>0.1 to 0.5</answer>", None, config).interval == (0.1, 0.5)
    assert parse_interval("<answer>0.5 to 1.5</answer>", None, config).status == OUT_OF_RANGE


def test_bad_duration_is_ignored():
    for duration in (None, 0, -5, float("nan"), float("inf"), "abc", 10**400):
        assert parse_interval("<answer>3 to 5</answer>", duration).interval == (3.0, 5.0)


def test_multi_segment():
    results = parse_intervals("<answer>[[1, 2], [3.5, 4]], and 9 - 7</answer>", 8)
    assert [r.interval for r in results] == [(1.0, 2.0), (3.5, 4.0), (7.0, 8.0)]
    assert [r.status for r in results] == [OK, OK, REVERSED]
    assert parse_intervals("no block") == []


def test_answer_style():
    assert answer_style('{"start_time": 1, "end_time": 2}') == "json"
    assert answer_style("1 to 2") == "interval"
    assert answer_style("{1 to 2}") == "interval"
    assert answer_style("soon") is None


def test_invalid_config_rejected():
    with pytest.raises(ValueError):
        ParserConfig(reversed="ignore")


def test_non_string_input():
    assert parse_interval(None).status == NO_ANSWER  # type: ignore[arg-type]
