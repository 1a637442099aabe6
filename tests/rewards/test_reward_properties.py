"""Property tests: no reward ever raises, every result is finite and within its documented bounds."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from verl_video.rewards import REWARDS, RewardScorer, Sample, load_presets
from verl_video.rewards.composite import FAILURE_KINDS
from verl_video.rewards.scorer import DIAGNOSTIC_KEYS
from verl_video.rewards.boxes import box_iou, mean_box_iou
from verl_video.rewards.choice import choice_accuracy, extract_choice
from verl_video.rewards.iou import best_iou, multi_iou, normalized_iou, temporal_iou, timestamp_iou
from verl_video.rewards.parser import STATUSES, ParserConfig, parse_interval, parse_intervals
from verl_video.rewards.sample import row_task

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUILTINS = ("iou", "tiou", "iou_normalized", "multi_iou", "parse_ok", "format", "accuracy", "evidence_iou", "box_iou")
PARAMS = [{}, {"strictness": "strict"}, {"strictness": "lenient"}, {"style": "json", "think": False}, {"exact": True}]

NUMBERS = st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e308", "1e400", "-3", "0", "0.0", "12.5", ".5", "7.",
                           "00:12", "1:02:03.5", "99:99", "9" * 400, "1e-320", "NaN", "∞", "١٢"])
TOKENS = st.one_of(
    NUMBERS,
    st.sampled_from(["<answer>", "</answer>", "<think>", "</think>", "<glue>", "</glue>", "<ANSWER>", "<answer",
                     " to ", " and ", "-", "–", ",", "[", "]", "(", ")", "{", "}", ":", '"start_time"', '"end_time"',
                     "'start'", "end", "seconds", "s", " ", "\n", "B", "(C)", "answer is", "\x00", "é", "🎬"]),
    st.text(max_size=20),
)
TEXTS = st.one_of(st.text(max_size=300), st.lists(TOKENS, max_size=60).map("".join))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))
DURATIONS = st.one_of(st.none(), FLOATS, st.just("abc"), st.just(0))
PAIRS = st.one_of(st.lists(FLOATS, min_size=0, max_size=3), st.none(), st.text(max_size=10))
TRUTHS = st.one_of(
    st.none(), TEXTS, PAIRS, st.lists(PAIRS, max_size=3),
    st.fixed_dictionaries({}, optional={"timestamps": st.one_of(PAIRS, st.lists(PAIRS, max_size=3)),
                                        "duration": DURATIONS, "answer": st.one_of(TEXTS, st.integers()),
                                        "boxes": st.lists(st.lists(FLOATS, max_size=5), max_size=4)}),
)
EXTRAS = st.one_of(st.none(), st.text(max_size=5), st.fixed_dictionaries({}, optional={
    "task": st.sampled_from(["tvg", "mcq", "grounded_qa", "tracking", "other", ""]),
    "prompt_template": st.sampled_from(["think", "answer_only", "think_json", "custom {query}"]),
    "answer_style": st.sampled_from(["interval", "json", "bogus"]),
    "think": st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
    "duration": DURATIONS, "answer_normalized": st.booleans(),
    "reward_preset": st.sampled_from(["time_r1", "temporal_r1", "videochat_r1", "mcq", "nope"]),
}))
LONG = "<think>" + "let me think 1 to 2 " * 5000 + "</think><answer>" + "1" * 10000 + " to 5</answer>"
NESTED = "<answer><answer><think></answer>1 to 2</think></answer></answer>" * 100


def _finite_within(value, low=0.0, high=1.0):
    assert isinstance(value, float) and math.isfinite(value) and low <= value <= high, value


@SETTINGS
@given(TEXTS, TRUTHS, EXTRAS, st.sampled_from(PARAMS))
@example(LONG, {"timestamps": [[0, 1e308]], "duration": 1e308}, None, {})
@example(NESTED, [[-1e308, 1e308]], {"task": "grounded_qa"}, {})
@example("<answer>nan to inf</answer>", {"timestamps": [[math.nan, math.inf]], "duration": math.nan}, {}, {})
def test_every_builtin_reward_is_total_and_bounded(text, truth, extra, params):
    for name in BUILTINS:
        spec = REWARDS[name]
        accepted = {k: v for k, v in params.items() if k in spec.fn.__code__.co_varnames}
        _finite_within(spec.fn(Sample(text, truth, extra), **accepted), spec.low, spec.high)


@SETTINGS
@given(TEXTS, TRUTHS, EXTRAS, st.text(max_size=8))
@example(LONG, [1, 2], {"duration": 10}, "src")
def test_scorer_is_total_and_bounded(text, truth, extra, source):
    scorer = _SCORER
    result = scorer(source, text, truth, extra)
    assert tuple(result) == scorer.keys
    # Only keys the row does not own read nan (other tasks' metrics, other composites' components and their
    # failure flags: not applicable; per-source means skip them). Its own are finite.
    own_task = f"{row_task(truth, extra)}/"
    composite = scorer.composite_for(truth, extra if isinstance(extra, dict) else {})
    own = {*DIAGNOSTIC_KEYS, *composite.keys, *(f"{k}/{kind}" for k in composite.keys for kind in FAILURE_KINDS)}
    assert all(math.isfinite(v) for k, v in result.items() if k in own or k.startswith(own_task))
    assert all(math.isnan(v) for k, v in result.items() if k not in own and not k.startswith(own_task))
    low, high = _BOUNDS
    assert low <= result["score"] <= high


_SCORER = RewardScorer()
_BOUNDS = (min(c.bounds[0] for c in load_presets().values()), max(c.bounds[1] for c in load_presets().values()))


@SETTINGS
@given(TEXTS, DURATIONS, st.booleans(), st.booleans(), st.sampled_from(["swap", "reject"]), st.booleans())
@example(LONG, 30.0, True, False, "swap", False)
def test_parser_is_total(text, duration, clip, normalized, reversed_rule, whole_text):
    config = ParserConfig(fallback="whole_text" if whole_text else "none", reversed=reversed_rule, clip=clip,
                          normalized=normalized)
    for result in [parse_interval(text, duration, config)] + parse_intervals(text, duration, config):
        assert result.status in STATUSES
        if result.interval is not None:
            start, end = result.interval
            assert math.isfinite(start) and math.isfinite(end) and start <= end
            usable = isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0
            if clip and usable:
                assert 0.0 <= start <= end <= duration


@SETTINGS
@given(PAIRS, PAIRS, DURATIONS, st.lists(PAIRS, max_size=4), st.lists(PAIRS, max_size=4))
def test_overlaps_are_bounded(pred, gt, duration, preds, gts):
    duration = duration if isinstance(duration, (int, float)) else None
    for value in (temporal_iou(pred, gt), best_iou(pred, gts), timestamp_iou(pred, gt, duration),
                  normalized_iou(pred, gt, duration), multi_iou(preds, gts), box_iou(pred, gt),
                  mean_box_iou(preds, gts)):
        _finite_within(value)


@SETTINGS
@given(TEXTS, st.one_of(TEXTS, st.integers(), st.none()), st.integers(-5, 40))
def test_choice_is_total(text, answer, options):
    letter = extract_choice(text, options)
    assert letter is None or (len(letter) == 1 and letter.isupper())
    _finite_within(choice_accuracy(text, answer, options))
