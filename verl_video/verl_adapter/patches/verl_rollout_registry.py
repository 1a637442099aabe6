"""Patch: two entries written into verl's private rollout-class registry, `rollout.base._ROLLOUT_REGISTRY`.

What: `("hf", "async")` names our `hf_server.HFServerAdapter`; `("vllm", "async")` replaces verl's vLLM
adapter with `vllm_rollout.VLLMServerAdapter` (verl's, with weight syncs that fail instead of hanging).
Why: verl 0.9.1 resolves `actor_rollout_ref.rollout.name` through this dict and has no public way to add
or replace an entry (the replica side, `RolloutReplicaRegistry.register`, is public: see register.py).
Entries are module paths, so nothing is imported here; verl imports the class when a worker builds it.
Fails without it: tests/backends/test_cpu_platform.py::test_hf_rollout_and_cpu_engines_resolve.
"""

from __future__ import annotations

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_cpu_platform.py::test_hf_rollout_and_cpu_engines_resolve"
PROCESSES = ("verl",)

ROLLOUT_CLASSES = {
    ("hf", "async"): "verl_video.verl_adapter.hf_server.HFServerAdapter",
    ("vllm", "async"): "verl_video.verl_adapter.vllm_rollout.VLLMServerAdapter",
}


def apply() -> bool:
    """Write our rollout classes into verl's registry; True."""
    from verl.workers.rollout import base as rollout_base

    rollout_base._ROLLOUT_REGISTRY.update(ROLLOUT_CLASSES)
    return True
