"""The verl side: the `video` reward manager in verl's reward-loop registry, and training metrics."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("verl")

from verl import DataProto  # noqa: E402
from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls  # noqa: E402

from verl_video.rewards import metrics  # noqa: E402
from verl_video.verl_adapter.reward_manager import FINAL_TURN_START, VideoRewardManager  # noqa: E402
from verl_video.rewards.scorer import RewardScorer  # noqa: E402

GT = {"timestamps": [[12.0, 18.0]], "duration": 60.0}


class CharTokenizer:
    """Token id = code point; enough to round-trip a response."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids if int(i) > 0)


def make_row(response: str, data_source="charades", gt=GT, extra=None, pad=5, columns=None) -> DataProto:
    ids = [ord(c) for c in response] + [0] * pad
    prompt = torch.ones(1, 3, dtype=torch.long)
    mask = torch.tensor([[1] * 3 + [1] * len(response) + [0] * pad])
    columns = {key: np.array([value], dtype=object) for key, value in (columns or {}).items()}
    return DataProto.from_dict(
        tensors={"prompts": prompt, "responses": torch.tensor([ids]), "attention_mask": mask},
        non_tensors={
            "data_source": np.array([data_source], dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": gt}], dtype=object),
            "extra_info": np.array([extra or {"task": "tvg", "duration": 60.0}], dtype=object),
            **columns,
        },
    )


def manager(**kwargs) -> VideoRewardManager:
    config = OmegaConf.create({"reward": {"reward_kwargs": kwargs, "custom_reward_function": {"path": None}}})
    return VideoRewardManager(config, CharTokenizer(), compute_score=None)


def test_registered_under_tvg():
    import verl_video.verl_adapter.plugin  # noqa: F401  (what verl imports in every process)

    assert get_reward_manager_cls("tvg") is VideoRewardManager


def test_run_single_scores_and_reports_extras():
    out = asyncio.run(manager().run_single(make_row("<think>x</think><answer>12 to 18</answer>")))
    info = out["reward_extra_info"]
    assert out["reward_score"] == pytest.approx(2.0)
    assert info["tiou"] == 1.0 and info["format"] == 1.0 and info["parse_ok"] == 1.0 and info["iou"] == 1.0
    assert tuple(info) == RewardScorer().keys


ZOOM_TURNS = "<think>look</think><zoom>12, 18</zoom>\nuser\nFrames from 12.0 s to 18.0 s: <12.0 seconds>\nassistant\n"
FINAL = "<think>x</think><answer>12 to 18</answer>"


@pytest.mark.parametrize("where", ["tool_extra_fields", "column"])
def test_a_multi_turn_response_is_scored_on_its_final_turn(where):
    # verl scores inside the agent loop (extra fields under tool_extra_fields) or a finished batch (columns).
    fields = {FINAL_TURN_START: len(ZOOM_TURNS)}
    row = make_row(ZOOM_TURNS + FINAL, columns={"tool_extra_fields": fields} if where != "column" else fields)
    assert asyncio.run(manager().run_single(row)) == asyncio.run(manager().run_single(make_row(FINAL)))
    # Without the offset the zoom turns fail the format check: the defect this guards against.
    assert asyncio.run(manager().run_single(make_row(ZOOM_TURNS + FINAL)))["reward_extra_info"]["format"] < 1.0


@pytest.mark.parametrize("columns", [{}, {"tool_extra_fields": {"turn_scores": []}}, {FINAL_TURN_START: None}])
def test_a_single_turn_response_scores_as_before(columns):
    for response in ("<think>x</think><answer>12 to 18</answer>", "<answer>0 to 30</answer>", "no idea"):
        with_fields = asyncio.run(manager().run_single(make_row(response, columns=columns)))
        assert with_fields == asyncio.run(manager().run_single(make_row(response)))


def test_preset_from_reward_kwargs_and_row_override():
    strict = manager(preset="time_r1")
    no_think = make_row("<answer>12 to 18</answer>")
    assert asyncio.run(strict.run_single(no_think))["reward_extra_info"]["format"] == 0.0
    assert asyncio.run(manager().run_single(no_think))["reward_extra_info"]["format"] == 0.5
    row = make_row('<think>x</think><answer>{"start_time": 12, "end_time": 18}</answer>',
                   extra={"reward_preset": "temporal_r1", "duration": 60.0})
    assert asyncio.run(manager().run_single(row))["reward_score"] == pytest.approx(1.0)


def test_rewards_vary_inside_a_group():
    responses = ["<think>a</think><answer>12 to 18</answer>", "<answer>12 to 18</answer>",
                 "<think>a</think><answer>0 to 30</answer>", "no idea"]
    m = manager()
    scores = [asyncio.run(m.run_single(make_row(r)))["reward_score"] for r in responses]
    assert len(set(scores)) == len(scores)


def test_reward_metrics_per_data_source():
    out = metrics.reward_metrics(["a", "a", "b"], {"iou": [1.0, 0.0, 0.5], "parse_ok": [1, None, "x"]})
    assert out == {"reward/a/iou": 0.5, "reward/b/iou": 0.5, "reward/a/parse_ok": 1.0}


def test_reward_failures_are_summed_not_averaged():
    infos = {"tiou": [1.0, 0.0, 1.0], "tiou/errors": [1.0, 0.0, 1.0], "mine/clamped": [0.0, 1.0, 1.0]}
    out = metrics.reward_metrics(["a", "a", "a"], infos)
    assert out["reward/a/tiou"] == pytest.approx(2 / 3)
    assert out["reward/a/tiou/errors"] == 2.0 and out["reward/a/mine/clamped"] == 2.0


def test_training_metrics_from_transfer_queue_rows():
    rows = {"data_source": np.array(["a", "a", "pad"], dtype=object),
            "extra_fields": np.array([{"reward_extra_info": {"iou": 1.0}}, {"reward_extra_info": {"iou": 0.5}}, {}],
                                     dtype=object)}
    tq = SimpleNamespace(kv_batch_get=lambda **kwargs: rows)
    batch = SimpleNamespace(keys=[1, 2, 3], partition_id="train", tags=[{}, {}, {"is_padding": True}])
    # The padding row is skipped; the two real rows of source "a" are averaged.
    assert metrics.transfer_queue_batch_metrics(tq, batch) == {"reward/a/iou": 0.75}
