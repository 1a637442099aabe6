"""A CPU platform for verl: lets the real trainer (Ray, FSDP2, agent loop) run on a machine with no GPU.

verl 0.9.1 resolves a platform per process (driver and Ray workers) from its PlatformRegistry and falls
back to CUDA. Registering "cpu" here makes auto-detection pick it wherever no accelerator answers, and
`VERL_PLATFORM=cpu` (set by `verl_video.main` when `trainer.device=cpu`) forces it.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any, Optional

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry


def _cpu_device_module() -> types.ModuleType:
    """`torch.cpu` plus the memory/RNG calls verl makes on `get_torch_device()`, as no-ops where CPU has none."""
    module = types.ModuleType("verl_video_cpu_device")
    module.__dict__.update({name: getattr(torch.cpu, name) for name in dir(torch.cpu) if not name.startswith("_")})
    zero = lambda *args, **kwargs: 0  # noqa: E731
    nothing = lambda *args, **kwargs: None  # noqa: E731
    module.is_available = lambda: True
    module.current_device = lambda: "cpu"
    module.device_count = lambda: 1
    module.set_device = nothing
    module.synchronize = nothing
    module.empty_cache = nothing
    module.reset_peak_memory_stats = nothing
    module.set_per_process_memory_fraction = nothing
    module.ipc_collect = nothing
    module.get_device_name = lambda *args, **kwargs: "CPU"
    module.memory_allocated = zero
    module.memory_reserved = zero
    module.max_memory_allocated = zero
    module.max_memory_reserved = zero
    module.mem_get_info = lambda *args, **kwargs: (0, 0)
    module.get_device_properties = lambda *args, **kwargs: types.SimpleNamespace(total_memory=0, name="cpu")
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_rng_state = torch.get_rng_state
    module.set_rng_state = torch.set_rng_state
    module.Stream = getattr(torch.cpu, "Stream", None)
    module.stream = getattr(torch.cpu, "stream", contextlib.nullcontext)
    module.current_stream = getattr(torch.cpu, "current_stream", nothing)
    return module


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """Host CPU as verl's "device": gloo collectives, logical Ray GPUs as placement slots."""

    _module = _cpu_device_module()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Registered after CUDA/NPU/ROCm, so it is only chosen when none of them answered.
        return not torch.cuda.is_available()

    def current_device(self) -> str:
        # verl only uses this as `tensor.to(get_device_id())`; "cpu" keeps those calls on the host.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        # Plain "gloo": verl composes "cpu:gloo,<device>:<backend>", which must not repeat the cpu entry.
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # verl's resource pools count "GPU" slots; on CPU they are logical (ray_init.num_gpus=N).
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None

