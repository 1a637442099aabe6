"""verl's log-prob fallback on chunks of rows: the same numbers as verl's per-token loop, in far fewer calls."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from verl_video.verl_adapter import log_probs
from verl_video.verl_adapter.log_probs import chunked_log_probs


def _verl_loop():
    """verl 0.9.1's own per-token function, as it was before the plugin replaced it."""
    from verl.utils import torch_functional

    function = torch_functional.logprobs_from_logits_v2
    return getattr(function, "verl_original", function)


@pytest.mark.parametrize("vocab", [491, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_and_gradients_are_bitwise_those_of_verls_loop(vocab, dtype, monkeypatch):
    # A small chunk so that the rows span several chunks and the last one is ragged.
    monkeypatch.setattr(log_probs, "CHUNK_ELEMENTS", vocab * 7)
    generator = torch.Generator().manual_seed(vocab)
    logits = (torch.randn(50, vocab, generator=generator) * 4).to(dtype)
    labels = torch.randint(0, vocab, (50,), generator=generator)
    ours_in, verl_in = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours, theirs = chunked_log_probs(ours_in, labels), _verl_loop()(verl_in, labels)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
    weights = torch.linspace(-1, 1, 50).to(dtype)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.equal(ours_in.grad, verl_in.grad)
    reference = torch.log_softmax(logits.double(), -1).gather(-1, labels[:, None]).squeeze(-1)
    assert torch.allclose(ours.double(), reference, atol=1e-5 if dtype == torch.float32 else 0.1)


def test_large_vocabularies_go_to_verls_own_function():
    calls = []

    def fallback(logits, labels):
        calls.append(logits.shape)
        return torch.zeros(labels.shape)

    big = torch.zeros(3, log_probs.LARGEST_CHUNKED_VOCAB + 1)
    chunked_log_probs(big, torch.zeros(3, dtype=torch.long), fallback=fallback)
    chunked_log_probs(torch.zeros(3, 491), torch.zeros(3, dtype=torch.long), fallback=fallback)
    assert calls == [big.shape]


def test_a_fresh_process_importing_verl_computes_log_probs_in_one_call_per_chunk():
    # What a Ray worker does: import verl (which loads the plugin), then call verl's public function.
    script = """
import torch
from verl.utils import torch_functional
calls = 0
real = torch.logsumexp
def counting(*args, **kwargs):
    global calls
    calls += 1
    return real(*args, **kwargs)
torch.logsumexp = counting
logits, labels = torch.randn(3000, 491), torch.randint(0, 491, (3000,))
out = torch_functional.logprobs_from_logits(logits, labels)
expected = torch.log_softmax(logits, -1).gather(-1, labels[:, None]).squeeze(-1)
assert torch.allclose(out, expected, atol=1e-5)
print(calls)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # verl's loop makes one call per token (3000); in chunks of 2**24 logits the 3000 rows are one chunk.
    assert int(result.stdout.split()[-1]) == 1
