"""The CPU platform as verl sees it, and the gloo process group our worker hook starts."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

import verl_video.verl_adapter.plugin  # noqa: F401
from verl.plugin.platform.platform_manager import PlatformRegistry
from verl.workers.engine import EngineRegistry
from verl.workers.rollout.base import get_rollout_class
from verl.workers.rollout.replica import RolloutReplicaRegistry


def test_cpu_platform_is_registered_and_usable():
    platform = PlatformRegistry.get("cpu")()
    assert platform.device_name == "cpu"
    assert platform.communication_backend_name() == "gloo"
    # verl moves tensors with .to(get_device_id()); that must stay on the host.
    assert torch.ones(1).to(platform.current_device()).device.type == "cpu"
    module = platform.device_module
    assert module.memory_allocated() == 0 and module.get_device_name() == "CPU"
    assert platform.ray_resource_options(1) == {"num_gpus": 1}


def test_hf_rollout_and_cpu_engines_resolve():
    assert get_rollout_class("hf").__name__ == "HFServerAdapter"
    assert RolloutReplicaRegistry.get("hf").__name__ == "HFReplica"
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    # Ours (verl's engine with the vision settings applied) on every device, GPU clusters included.
    for device in ("cpu", "cuda"):
        os.environ["VERL_ENGINE_DEVICE"] = device
        try:
            engine = EngineRegistry.get_engine_cls("language_model", "fsdp2")
        finally:
            del os.environ["VERL_ENGINE_DEVICE"]
        assert engine.__name__ == "VideoFSDPEngineWithLMHead" and issubclass(engine, FSDPEngineWithLMHead)


def test_worker_hook_starts_a_gloo_process_group():
    code = (
        "import torch.distributed as dist\n"
        "from verl_video.verl_adapter.cpu_distributed import init_cpu_process_group\n"
        "assert dist.is_initialized()\n"
        "assert dist.get_backend() == 'gloo'\n"
        "assert init_cpu_process_group() is False\n"
    )
    env = dict(os.environ, VERL_PLATFORM="cpu", RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def test_worker_hook_does_nothing_outside_a_trainer_worker():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    code = (
        "import torch.distributed as dist\n"
        "import verl_video.verl_adapter.cpu_distributed\n"
        "assert not dist.is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=dict(env, VERL_PLATFORM="cpu"), check=True, timeout=120)


def test_offload_policy_is_unpinned_while_wrapping_on_cpu():
    # verl builds CPUOffloadPolicy(pin_memory=True) for the reference model; pinning needs a CUDA driver.
    from verl.workers.engine.fsdp import transformer_impl

    from verl_video.verl_adapter.fsdp_engine import unpinned_cpu_offload

    with unpinned_cpu_offload():
        assert transformer_impl.CPUOffloadPolicy(pin_memory=True).pin_memory is False
    assert transformer_impl.CPUOffloadPolicy(pin_memory=True).pin_memory is True


def test_worker_process_groups_start_with_plain_gloo_on_cpu():
    # The critic's worker starts its group through verl's helper, whose default backend string names the CPU
    # twice; after `import verl` (our plugin) the helper that verl's worker module binds starts plain gloo.
    import subprocess
    import sys

    check = (
        "import os, torch.distributed as dist\n"
        "import verl\n"
        "from verl.workers.engine_workers import initialize_global_process_group_ray\n"
        "os.environ.update(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT='29533')\n"
        "initialize_global_process_group_ray(timeout_second=None)\n"
        "assert dist.get_backend() == 'gloo', dist.get_backend()\n"
    )
    env = {**__import__("os").environ, "VERL_PLATFORM": "cpu"}
    subprocess.run([sys.executable, "-c", check], check=True, env=env)
