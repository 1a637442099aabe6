"""Format, choice, the registered rewards, composites, presets and the scorer."""

from __future__ import annotations

import math

import pytest

from verl_video.pipeline.items import DatasetItem, build_row
from verl_video.annotations.records import Record
from verl_video.video.loader import VideoRequest
from verl_video.rewards import REWARDS, Composite, RewardScorer, Sample, load_presets, register_reward
from verl_video.rewards.choice import choice_accuracy, choice_letter, extract_choice
from verl_video.verl_adapter.compute_score import compute_score
from verl_video.rewards.format import format_score, template_ok
from verl_video.rewards.scorer import DIAGNOSTIC_KEYS

GT = {"timestamps": [[12.0, 18.0]], "duration": 60.0}
GOOD = "<think>the man sits at the start</think>\n<answer>12.0 to 18.0</answer>"


def reward(name: str, response: str, gt=GT, extra=None, **params) -> float:
    return REWARDS[name].fn(Sample(response, gt, extra or {}), **params)


# ---- format ----

@pytest.mark.parametrize(
    "text, think, ok",
    [
        (GOOD, True, True),
        ("  <think>a</think> <answer>b</answer>\n", True, True),
        ("<answer>b</answer>", True, False),
        ("<think>a</think>text<answer>b</answer>", True, False),
        ("<think>a</think><answer>b</answer> trailing", True, False),
        ("<think>a</think><answer>a</answer><answer>b</answer>", True, False),
        ("<answer>b</answer>", False, True),
        ("<think>a</think><answer>b</answer>", False, False),
        ("<think></answer>", True, False),
        # Stray closing tags after the answer: the seeds' lazy full-match regex accepts these (correction).
        ("<think>a</think><answer>1.00 to 6.00</answer>6.0</answer>", True, False),
        ("<answer>1 to 6</answer>3.0</answer>", False, False),
        ("<think>a</think>b</think><answer>1 to 6</answer>", True, False),
        ("<think>a<answer>1 to 2</answer></think><answer>1 to 6</answer>", True, False),
    ],
)
def test_template_shape(text, think, ok):
    assert template_ok(text, think) is ok


def test_strictness_levels():
    assert [format_score(GOOD, True, strictness=s) for s in ("strict", "partial", "lenient")] == [1.0, 1.0, 1.0]
    no_think = "<answer>12 to 18</answer>"
    assert [reward("format", no_think, strictness=s) for s in ("strict", "partial", "lenient")] == [0.0, 0.5, 1.0]
    garbage = "<think>x</think><answer>soon</answer>"
    # Time-R1's regex gives 1 here; our strict level wants a readable answer too (correction).
    assert [reward("format", garbage, strictness=s) for s in ("strict", "partial", "lenient")] == [0.0, 0.5, 0.0]
    assert [reward("format", "nothing", strictness=s) for s in ("strict", "partial", "lenient")] == [0.0, 0.0, 0.0]


def _pipeline_row(template: str) -> dict:
    """extra_info of the row the data pipeline builds for a record prompted with `template`."""
    item = DatasetItem("d", Record("1", "v.mp4", "q", [[12.0, 18.0]]), VideoRequest("/v.mp4"), template)
    return build_row(item, 0, 30.0)["extra_info"]


def test_format_follows_the_row_template():
    json_answer = '<think>x</think><answer>{"start_time": 12, "end_time": 18}</answer>'
    quoted = '<think>x</think><answer>{"start_time": "12", "end_time": "18"}</answer>'
    json_row = _pipeline_row("think_json")
    # Numeric and quoted JSON both count (Temporal-R1's format reward only accepts quoted).
    assert reward("format", json_answer, extra=json_row, strictness="strict") == 1.0
    assert reward("format", quoted, extra=json_row, strictness="strict") == 1.0
    assert reward("format", GOOD, extra=json_row, strictness="strict") == 0.0
    assert reward("format", json_answer, strictness="strict") == 0.0  # "think" template wants "a to b"
    assert reward("format", GOOD, extra=_pipeline_row("think"), strictness="strict") == 1.0
    only = _pipeline_row("answer_only")
    assert reward("format", "<answer>12 to 18</answer>", extra=only, strictness="strict") == 1.0
    assert reward("format", GOOD, extra=only, strictness="strict") == 0.0
    assert reward("format", json_answer, extra={"answer_style": "json"}, strictness="strict") == 1.0
    # The row says it, not a template lookup: a custom template without thinking is scored as such.
    assert reward("format", "<answer>12 to 18</answer>", extra={"prompt_template": "mine", "think": False},
                  strictness="strict") == 1.0


# ---- choices ----

@pytest.mark.parametrize(
    "answer, letter",
    [("B", "B"), ("(B)", "B"), ("b", "B"), ("B.", "B"), ("B. a red car", "B"), ("(C) the dog", "C"),
     ("The answer is D", "D"), ("Option: A", "A"), ("a dog", None), ("The answer is a dog", None),
     ("", None), ("Z", None)],
)
def test_extract_choice(answer, letter):
    assert extract_choice(f"<think>maybe (A)</think><answer>{answer}</answer>", num_options=5) == letter


def test_choice_accuracy_and_ground_truth_forms():
    assert choice_letter("B") == "B" and choice_letter("(C) text") == "C" and choice_letter(1) == "B"
    assert choice_letter(None) is None and choice_letter(99) is None
    assert choice_accuracy("<answer>B</answer>", "B") == 1.0
    assert choice_accuracy("<answer>B</answer>", 2) == 0.0
    assert extract_choice("The answer is B", fallback=True) == "B"


# ---- registered rewards ----

def test_builtin_rewards_registered_with_unit_bounds():
    expected = {"iou", "tiou", "iou_normalized", "multi_iou", "format", "parse_ok", "accuracy", "evidence_iou", "box_iou"}
    assert expected <= set(REWARDS)
    assert all((REWARDS[name].low, REWARDS[name].high) == (0.0, 1.0) for name in expected)


def test_interval_rewards_use_the_best_window():
    gt = {"timestamps": [[0, 5], [12, 18]], "duration": 60}
    assert reward("iou", GOOD, gt) == 1.0
    assert reward("tiou", GOOD, gt) == 1.0
    assert reward("iou_normalized", GOOD, gt) == 1.0
    assert reward("multi_iou", "<answer>[0, 5], [12, 18]</answer>", gt) == 1.0
    assert reward("iou", "no answer", gt) == 0.0


def test_ground_truth_reading_is_tolerant():
    for gt, extra in [([12, 18], {"duration": 60}), ([[12, 18]], {}), ("12-18", {}),
                      ({"timestamp": [12, 18]}, {"duration": 60})]:
        assert reward("iou", GOOD, gt, extra) == 1.0


def test_row_declares_normalized_answers():
    extra = {"answer_normalized": True}
    assert reward("iou", "<answer>0.2 to 0.3</answer>", GT, extra) == pytest.approx(1.0)


def test_grounded_qa_and_tracking_rewards():
    gt = {"answer": "B", "timestamps": [[1, 4]]}
    text = "<think>x</think><glue>[(1, 2), (2, 5)]</glue><answer>B</answer>"
    extra = {"task": "grounded_qa"}
    assert reward("accuracy", text, gt, extra) == 1.0
    assert reward("evidence_iou", text, gt, extra) == pytest.approx(0.75)
    assert reward("format", text, gt, extra, strictness="strict") == 1.0
    boxes = {"boxes": [[0, 0, 1, 1], [0, 0, 1, 1]]}
    track = {"task": "tracking"}
    assert reward("box_iou", "<answer>[[0,0,1,1],[0,0,0.5,0.5]]</answer>", boxes, track) == pytest.approx(0.625)
    assert reward("box_iou", "<answer>[[0,0,1,1]]</answer>", boxes, track, exact=True) == 0.0


# ---- composites and presets ----

def test_presets_reproduce_the_seeds():
    presets = load_presets()
    weights = {name: {(p.name, p.weight) for p in c.components} for name, c in presets.items()}
    assert weights["time_r1"] == {("tiou", 1.0), ("format", 1.0)}
    assert weights["temporal_r1"] == {("iou_normalized", 0.5), ("format", 0.5)}
    assert weights["videochat_r1"] == {("iou", 1.0), ("format", 1.0)}
    assert weights["default"] == weights["time_r1"]
    strictness = {name: next(p.params["strictness"] for p in c.components if p.name == "format")
                  for name, c in presets.items()}
    assert strictness["default"] == "partial" and strictness["time_r1"] == "strict"
    assert presets["temporal_r1"].bounds == (0.0, 1.0) and presets["time_r1"].bounds == (0.0, 2.0)


def test_composite_from_yaml_forms():
    listed = Composite.from_config("a", {"components": [{"name": "iou", "weight": 2}, "format"]})
    mapped = Composite.from_config("b", {"iou": 2.0, "format": 1.0})
    bare = Composite.from_config("c", [{"name": "format", "key": "fmt_strict", "strictness": "strict"},
                                       {"name": "format"}])
    sample = Sample(GOOD, GT)
    assert listed(sample) == mapped(sample) == (3.0, {"iou": 1.0, "format": 1.0})
    assert bare.keys == ("fmt_strict", "format")
    with pytest.raises(ValueError):
        Composite.from_config("d", [{"name": "no_such_reward"}])
    with pytest.raises(ValueError):
        Composite.from_config("e", ["format", "format"])


@register_reward("test_raises", low=-1.0, high=1.0)
def _raises(sample):
    raise RuntimeError("bug in a user reward")


@register_reward("test_nan", low=0.0, high=1.0)
def _nan(sample):
    return float("nan")


@register_reward("test_penalty", low=-1.0, high=0.0)
def _penalty(sample, value=-0.5):
    return value


def test_composite_contains_a_raising_reward():
    composite = Composite.from_config("bad", ["test_raises", "test_nan"])
    assert composite(Sample("x", GT)) == (-1.0, {"test_raises": -1.0, "test_nan": 0.0})
    assert composite.evaluate(Sample("x", GT))[2] == {"test_raises": "errors", "test_nan": "nan"}


def test_reward_failures_are_counted_per_component_and_logged_once(caplog, monkeypatch):
    from verl_video.rewards import composite

    monkeypatch.setattr(composite, "_LOGGED", set())  # a fresh process: nothing logged yet
    scorer = RewardScorer(components=[{"name": "test_raises"}, {"name": "test_nan"}, {"name": "tiou"},
                                      {"name": "test_penalty", "key": "too_low", "value": -3.0}])
    with caplog.at_level("WARNING", logger="verl_video.rewards"):
        results = [scorer("ds", GOOD, GT) for _ in range(3)]
    for result in results:
        assert result["test_raises/errors"] == 1.0 and result["test_nan/nan"] == 1.0
        assert result["too_low/clamped"] == 1.0 and result["too_low"] == -1.0
        assert result["tiou/errors"] == result["tiou/nan"] == result["tiou/clamped"] == 0.0
        assert tuple(result) == scorer.keys
    tracebacks = [r for r in caplog.records if r.exc_info and "test_raises" in r.getMessage()]
    assert len(tracebacks) == 1 and "bug in a user reward" in caplog.text
    assert sum("test_nan" in r.getMessage() for r in caplog.records) == 1
    assert sum("outside its declared bounds" in r.getMessage() for r in caplog.records) == 1


def test_declared_bounds_keep_a_negative_penalty():
    result = RewardScorer(components=[{"name": "test_penalty"}, {"name": "tiou"}])("ds", GOOD, GT)
    assert result["test_penalty"] == -0.5 and result["test_penalty/clamped"] == 0.0
    assert result["score"] == pytest.approx(result["tiou"] - 0.5)


def test_register_reward_needs_declared_bounds():
    with pytest.raises(ValueError, match="declare its bounds"):
        register_reward("test_no_bounds")(lambda sample: 0.0)
    with pytest.raises(ValueError, match="not an interval"):
        register_reward("test_bad_bounds", low=1.0, high=0.0)(lambda sample: 0.0)
    assert "test_no_bounds" not in REWARDS and "test_bad_bounds" not in REWARDS


def _reward_file(path, name="iou"):
    path.write_text(
        "from verl_video.rewards import register_reward\n"
        f"@register_reward({name!r}, low=0.0, high=1.0)\n"
        "def iou(sample):\n"
        "    return 0.25\n"
    )
    return path


def _import_as(path, module_name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registering_a_taken_name_is_an_error_naming_both(tmp_path):
    builtin = REWARDS["iou"]
    # Same function name as the built-in: the old check (by __qualname__ alone) let it replace `iou`.
    clash = _reward_file(tmp_path / "clash.py")
    with pytest.raises(ValueError) as error:
        _import_as(clash, "user_clash")
    assert "components.py" in str(error.value) and "clash.py" in str(error.value)
    assert REWARDS["iou"] is builtin
    try:
        override = tmp_path / "override.py"
        override.write_text(clash.read_text().replace("high=1.0)", "high=1.0, override=True)"))
        _import_as(override, "user_override")
        assert REWARDS["iou"].fn(Sample(GOOD, GT)) == 0.25
    finally:
        REWARDS["iou"] = builtin


def test_importing_the_same_reward_file_again_is_harmless(tmp_path):
    mine = _reward_file(tmp_path / "mine.py", name="test_reimported")
    # A Ray worker imports the user's file again, under another module name.
    _import_as(mine, "user_mine_driver")
    _import_as(mine, "user_mine_worker")
    assert REWARDS["test_reimported"].fn(Sample(GOOD, GT)) == 0.25


def test_unknown_reward_kwargs_are_an_error_naming_the_valid_ones():
    with pytest.raises(ValueError) as error:
        RewardScorer.from_kwargs({"presets": "time_r1"})
    assert "'presets'" in str(error.value) and "preset, components" in str(error.value)
    with pytest.raises(ValueError, match="unknown option"):
        compute_score("ds", GOOD, GT, None, strictnes="strict")


def test_scorer_keys_identical_across_tasks_and_presets():
    scorer = RewardScorer()
    rows = [
        (GOOD, GT, {}),
        ("<answer>B</answer>", {"answer": "B"}, {"task": "mcq"}),
        ("<answer>[[0,0,1,1]]</answer>", {"boxes": [[0, 0, 1, 1]]}, {"task": "tracking"}),
        ("<glue>(1,2)</glue><answer>A</answer>", {"answer": "A", "timestamps": [[1, 2]]}, {"task": "grounded_qa"}),
        (GOOD, GT, {"reward_preset": "temporal_r1"}),
        ("junk", None, None),
    ]
    results = [scorer("ds", *row) for row in rows]
    assert all(tuple(r) == scorer.keys for r in results)
    assert set(DIAGNOSTIC_KEYS) <= set(scorer.keys)
    assert [r["parse_ok"] for r in results] == [1, 1, 1, 1, 1, 0]
    assert results[0]["score"] == pytest.approx(results[0]["tiou"] + results[0]["format"])
    assert results[1]["score"] == 1.5 and results[1]["accuracy"] == 1.0  # no <think>: half format credit
    assert results[4]["score"] == pytest.approx(0.5) and results[4]["format"] == 0.0  # preset wants JSON
    assert results[5]["parse_no_answer"] == 1.0 and results[5]["score"] == 0.0


def test_scorer_failure_counters():
    scorer = RewardScorer()
    statuses = {
        "<answer>18 to 12</answer>": "parse_reversed",
        "<answer>12 to 90</answer>": "parse_out_of_range",
        "<answer>later</answer>": "parse_unparseable",
        "later": "parse_no_answer",
    }
    for text, key in statuses.items():
        result = scorer("ds", text, GT)
        flags = {k for k in scorer.keys if k.startswith("parse_") and k != "parse_ok" and result[k] == 1.0}
        assert flags == {key}


def test_scorer_options():
    assert RewardScorer(preset="time_r1")("ds", "<answer>12 to 18</answer>", GT)["format"] == 0.0
    assert RewardScorer(strictness="lenient")("ds", "<answer>12 to 18</answer>", GT)["format"] == 1.0
    rejected = RewardScorer(parser={"reversed": "reject"})("ds", "<answer>18 to 12</answer>", GT)
    assert rejected["iou"] == 0.0 and rejected["parse_reversed"] == 1.0
    inline = RewardScorer(components=[{"name": "iou", "weight": 3}])("ds", GOOD, GT)
    assert inline["score"] == 3.0
    mcq = RewardScorer(task_presets={"mcq": "time_r1"})("ds", "<answer>B</answer>", {"answer": "B"}, {"task": "mcq"})
    # Scored by time_r1, not the mcq preset: no accuracy component, so its key reads nan (no sample).
    assert math.isnan(mcq["accuracy"]) and mcq["tiou"] == 0.0
    with pytest.raises(ValueError):
        RewardScorer(preset="nope")
    with pytest.raises(ValueError):
        RewardScorer(task_presets={"mcq": "nope"})
    with pytest.raises(TypeError):
        RewardScorer(parser={"no_such_field": 1})


def test_scorer_from_kwargs_accepts_omegaconf():
    from omegaconf import OmegaConf

    kwargs = OmegaConf.create({"preset": "videochat_r1", "parser": {"clip": False}})
    scorer = RewardScorer.from_kwargs(kwargs)
    assert scorer.preset == "videochat_r1" and scorer.presets["default"].parser.clip is False


def test_user_presets_file_and_module(tmp_path):
    module = tmp_path / "my_rewards.py"
    module.write_text(
        "from verl_video.rewards import register_reward\n"
        "@register_reward('test_length', low=0.0, high=1.0)\n"
        "def test_length(sample, limit=10):\n"
        "    return float(len(sample.response) <= limit)\n"
    )
    presets = tmp_path / "presets.yaml"
    presets.write_text("mine:\n  components:\n    - {name: test_length, weight: 2, limit: 100}\n")
    scorer = RewardScorer(preset="mine", presets_file=str(presets), modules=[str(module)])
    assert scorer("ds", GOOD, GT)["score"] == 2.0
    RewardScorer(modules=str(module))  # loading the same file twice is fine


def test_examples_load():
    scorer = RewardScorer(preset="short_tiou", presets_file="examples/reward_function/my_presets.yaml",
                          modules=["examples/reward_function/my_reward.py"])
    result = scorer("ds", GOOD, GT)
    assert result["early_stop"] == 1.0 and result["score"] == pytest.approx(result["tiou"] + 0.5 + 0.2)


def test_compute_score_matches_the_scorer():
    expected = RewardScorer(preset="temporal_r1")("ds", GOOD, GT, {})
    assert compute_score("ds", GOOD, GT, {}, preset="temporal_r1") == expected
    result = compute_score("ds", GOOD, GT, None, reward_router_address=None)
    assert result["score"] == pytest.approx(result["tiou"] + result["format"])


@pytest.mark.parametrize("preset", ["default", "time_r1", "videochat_r1"])
def test_training_presets_pay_nothing_for_a_reversed_pair(preset):
    # As Time-R1's and VideoChat-R1's training parsers do: a swapped pair would earn the ordered pair's IoU.
    scorer = RewardScorer(preset=preset)
    ordered = scorer("ds", "<answer>12 to 18</answer>", GT)
    reversed_pair = scorer("ds", "<answer>18 to 12</answer>", GT)
    assert ordered["iou"] > 0.5
    assert reversed_pair["iou"] == 0.0 and reversed_pair["parse_reversed"] == 1.0
    assert reversed_pair["score"] < ordered["score"]
