"""Patch: verl's vLLM rollout builds its weight sender from `weight_sync.WatchedWeightSender`.

What: the module-level name `BucketedWeightSender` in `verl.workers.rollout.vllm_rollout.vllm_rollout`
becomes our subclass, whose socket waits end with the receiver's error once the receiving RPC has ended.
Why: verl 0.9.1's `ServerAdapter.update_weights` blocks forever in `socket.recv()` when the vLLM side of a
weight sync fails (see weight_sync.py); it builds the sender by that module-level name.
When: verl's vLLM rollout module imports vLLM, so apply_all never imports it; this patch is applied once
the module is loaded, i.e. by the apply_all() that `vllm_rollout.VLLMServerAdapter.__init__` makes.
Fails without it: tests/backends/test_weight_sync.py (the sync hangs; its senders are built directly) and
tests/test_patches.py::test_apply_all_replaces_every_target.
"""

from __future__ import annotations

import sys

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_weight_sync.py"
PROCESSES = ("verl",)

MODULE = "verl.workers.rollout.vllm_rollout.vllm_rollout"


def apply() -> bool:
    """Replace the sender class in verl's vLLM rollout module if that module is loaded; whether it is replaced."""
    module = sys.modules.get(MODULE)
    if module is None:
        return False
    from verl_video.verl_adapter.weight_sync import WatchedWeightSender

    module.BucketedWeightSender = WatchedWeightSender
    return True
