"""Register the CPU platform, the `hf` rollout backend, our vLLM adapter and FSDP engines in verl's registries."""

from __future__ import annotations

from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.replica import RolloutReplicaRegistry

from verl_video.verl_adapter import cpu_platform  # noqa: F401  (registers PlatformCPU on import)

HF_ROLLOUT = "hf"


def _load_hf_replica():
    from verl_video.verl_adapter.hf_server import HFReplica

    return HFReplica


def register_hf_rollout() -> None:
    """Make `actor_rollout_ref.rollout.name=hf` resolve in both of verl's rollout registries."""
    rollout_base._ROLLOUT_REGISTRY[(HF_ROLLOUT, "async")] = "verl_video.verl_adapter.hf_server.HFServerAdapter"
    RolloutReplicaRegistry.register(HF_ROLLOUT, _load_hf_replica)


def register_vllm_rollout() -> None:
    """`rollout.name=vllm` resolves to verl's adapter whose weight syncs fail fast (verl_adapter/vllm_rollout.py)."""
    rollout_base._ROLLOUT_REGISTRY[("vllm", "async")] = "verl_video.verl_adapter.vllm_rollout.VLLMServerAdapter"


def register_engines() -> None:
    """Our FSDP engines (vision settings applied) for every device; verl registers its own for cuda/npu only."""
    import warnings

    with warnings.catch_warnings():
        # verl warns once per optional engine (megatron, veomni, ...) that is not installed; none is needed here.
        warnings.filterwarnings("ignore", message=".*engine is not available.*")
        from verl.workers.engine import EngineRegistry

        from verl_video.verl_adapter.fsdp_engine import VideoFSDPEngineWithLMHead, VideoFSDPEngineWithValueHead

    for model_type, engine in (("language_model", VideoFSDPEngineWithLMHead), ("value_model", VideoFSDPEngineWithValueHead)):
        for backend in ("fsdp", "fsdp2"):
            registry = EngineRegistry._engines.setdefault(model_type, {}).setdefault(backend, {})
            for device in ("cpu", "cuda", "npu"):
                registry[device] = engine


register_hf_rollout()
register_vllm_rollout()
register_engines()
