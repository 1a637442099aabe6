"""The hf rollout server: verl's generate contract, batching of concurrent requests, weight updates."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch

from verl_video.verl_adapter.hf_server import HFServer


@pytest.fixture(scope="module")
def server(tiny_model_dir) -> HFServer:
    config = SimpleNamespace(prompt_length=256, response_length=16, max_num_seqs=8, seed=0)
    return HFServer(config, SimpleNamespace(local_path=str(tiny_model_dir)), batch_wait_s=0.05)


def _prompt(server: HFServer, text: str) -> list[int]:
    return server.engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
    )


async def _generate_many(server: HFServer, prompts: list[list[int]], params: dict) -> list:
    return await asyncio.gather(
        *[server.generate(prompt_ids=p, sampling_params=dict(params), request_id=str(i)) for i, p in enumerate(prompts)]
    )


def test_concurrent_requests_are_served_in_batches(server):
    prompts = [_prompt(server, f"query number {i}") for i in range(6)]
    before = dict(server.stats)
    outputs = asyncio.run(_generate_many(server, prompts, {"temperature": 1.0, "logprobs": True}))
    batches = server.stats["batches"] - before["batches"]
    assert len(outputs) == 6 and batches < 6
    assert server.stats["max_batch"] > 1
    for out in outputs:
        assert 0 < len(out.token_ids) <= 16
        assert len(out.log_probs) == len(out.token_ids)
        assert all(lp <= 0 for lp in out.log_probs)


def test_greedy_and_sampled_requests_do_not_share_a_batch(server):
    prompt = _prompt(server, "same prompt")

    async def mixed():
        return await asyncio.gather(
            server.generate(prompt_ids=prompt, sampling_params={"temperature": 0}, request_id="a"),
            server.generate(prompt_ids=prompt, sampling_params={"temperature": 0}, request_id="b"),
            server.generate(prompt_ids=prompt, sampling_params={"temperature": 1.0, "top_p": 0.9}, request_id="c"),
        )

    greedy_a, greedy_b, _ = asyncio.run(mixed())
    assert greedy_a.token_ids == greedy_b.token_ids


def test_max_tokens_from_the_request_wins(server):
    out = asyncio.run(
        server.generate(prompt_ids=_prompt(server, "x"), sampling_params={"temperature": 5.0, "max_tokens": 3}, request_id="m")
    )
    assert len(out.token_ids) <= 3


def test_weight_update_reaches_generation(server):
    prompt = _prompt(server, "weights")
    greedy = {"temperature": 0, "logprobs": True}
    before = asyncio.run(server.generate(prompt_ids=prompt, sampling_params=dict(greedy), request_id="w1"))
    original = {n: p.detach().clone() for n, p in server.engine.model.named_parameters()}
    shifted = [(n, p + 0.5 * torch.randn_like(p)) for n, p in original.items()]
    asyncio.run(server.update_weights(shifted, global_steps=7))
    after = asyncio.run(server.generate(prompt_ids=prompt, sampling_params=dict(greedy), request_id="w2"))
    asyncio.run(server.update_weights(list(original.items())))
    assert before.log_probs != after.log_probs
    assert after.extra_fields["global_steps"] == 7
