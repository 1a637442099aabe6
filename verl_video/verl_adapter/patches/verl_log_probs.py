"""Patch: verl's per-token log-prob fallback runs on chunks of rows (`verl_adapter/log_probs.py`).

What: `verl.utils.torch_functional.logprobs_from_logits_v2` becomes a wrapper around
`log_probs.chunked_log_probs`, which hands vocabularies above 32 768 words back to verl's function
(kept as the wrapper's `verl_original`).
Why: without flash-attn (every CPU run) verl 0.9.1 takes one `logsumexp` per token in a Python loop: 17.6%
of the demo's actor time. The chunked form gives bitwise the same values and gradients up to 32 768 words.
Fails without it: tests/backends/test_log_probs.py::test_a_fresh_process_importing_verl_computes_log_probs_in_one_call_per_chunk.
"""

from __future__ import annotations

import torch

from verl_video.verl_adapter.log_probs import chunked_log_probs

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_log_probs.py::test_a_fresh_process_importing_verl_computes_log_probs_in_one_call_per_chunk"
PROCESSES = ("verl",)


def apply() -> bool:
    """Route verl's log-prob fallback through `chunked_log_probs` once per process; True."""
    from verl.utils import torch_functional

    current = torch_functional.logprobs_from_logits_v2
    if getattr(current, "verl_video_chunked", False):
        return True

    def logprobs_from_logits_v2(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return chunked_log_probs(logits, labels, fallback=current)

    logprobs_from_logits_v2.verl_video_chunked = True
    logprobs_from_logits_v2.verl_original = current
    logprobs_from_logits_v2.__doc__ = chunked_log_probs.__doc__
    torch_functional.logprobs_from_logits_v2 = logprobs_from_logits_v2
    return True
