"""Register the CPU platform and the `hf` rollout's replica through verl's public registries.

The rollout classes (`hf`, and our `vllm` adapter) and the FSDP engines go into registries verl has no
public way to extend: those writes are patches (patches/verl_rollout_registry.py, patches/verl_engine_registry.py).
"""

from __future__ import annotations

from verl.workers.rollout.replica import RolloutReplicaRegistry

from verl_video.verl_adapter import cpu_platform  # noqa: F401  (registers PlatformCPU on import)

HF_ROLLOUT = "hf"


def _load_hf_replica():
    from verl_video.verl_adapter.hf_server import HFReplica

    return HFReplica


def register_hf_replica() -> None:
    """Make `actor_rollout_ref.rollout.name=hf` resolve in verl's replica registry."""
    RolloutReplicaRegistry.register(HF_ROLLOUT, _load_hf_replica)


register_hf_replica()
