"""Seeded sampling: a request's tokens depend on its seed, not on its batch-mates; the draws follow softmax."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine, SamplingSettings, SeededSampler
from verl_video.verl_adapter.seeded_agent_loop import trajectory_seed
from verl_video.verl_adapter.trajectory_order import trajectory_order


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> HFEngine:
    return HFEngine(str(tiny_model_dir), seed=0)


def _text_request(engine: HFEngine, text: str, seed: int | None) -> GenerationRequest:
    ids = engine.tokenizer(text)["input_ids"]
    return GenerationRequest(ids, seed=seed)


def test_a_seeded_request_samples_the_same_tokens_in_any_batch(engine):
    settings = SamplingSettings(temperature=1.0, max_new_tokens=16)
    target = _text_request(engine, "when does the red square appear", seed=1234)
    others = [_text_request(engine, f"where is the {c} circle", seed=s) for s, c in enumerate(("blue", "green", "white"))]
    alone = engine.generate([target], settings)[0].token_ids
    torch.manual_seed(99)  # the process generator must not matter
    in_batch = engine.generate([others[0], target, others[1]], settings)[1].token_ids
    last = engine.generate([*others, target], settings)[-1].token_ids
    assert alone == in_batch == last
    # A different seed gives a different trajectory (the draws really depend on it).
    reseeded = engine.generate([dataclasses.replace(target, seed=1235)], settings)[0].token_ids
    assert reseeded != alone


def test_gumbel_max_draws_follow_the_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    settings = SamplingSettings(temperature=0.7)
    counts = torch.zeros(4)
    draws = 4000
    for seed in range(draws):
        scores = SeededSampler([seed], settings)(torch.zeros(1, 1, dtype=torch.long), logits.clone())
        counts[scores.argmax()] += 1
    expected = torch.softmax(logits[0] / 0.7, dim=-1)
    # Binomial standard error at 4000 draws is under 0.008; 0.03 is a 4-sigma band.
    assert torch.allclose(counts / draws, expected, atol=0.03), (counts / draws, expected)


def test_top_k_and_top_p_remove_the_tail():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    top_k = SeededSampler([0], SamplingSettings(temperature=1.0, top_k=2))(None, logits.clone())
    assert torch.isinf(top_k[0, 2:]).all() and torch.isfinite(top_k[0, :2]).all()
    # softmax mass: 0.64, 0.23, 0.09, ...; top_p=0.8 keeps the two tokens needed to reach it.
    top_p = SeededSampler([0], SamplingSettings(temperature=1.0, top_p=0.8))(None, logits.clone())
    assert torch.isfinite(top_p[0, :2]).all() and torch.isinf(top_p[0, 2:]).all()


def test_trajectory_seeds_differ_by_every_coordinate_and_repeat_exactly():
    base = trajectory_seed(42, 3, 17, 0)
    assert base == trajectory_seed(42, 3, 17, 0)
    others = {trajectory_seed(43, 3, 17, 0), trajectory_seed(42, 4, 17, 0), trajectory_seed(42, 3, 18, 0), trajectory_seed(42, 3, 17, 1)}
    assert base not in others and len(others) == 4
    assert 0 <= base < 2**63


def test_trajectories_are_ordered_by_prompt_then_rollout():
    keys = ["000000002-000000001-x_1_0", "000000002-000000000-y_10_0", "000000002-000000000-y_2_0", "000000002-000000001-x_0_0"]
    assert [keys[i] for i in trajectory_order(keys)] == [keys[2], keys[1], keys[3], keys[0]]
