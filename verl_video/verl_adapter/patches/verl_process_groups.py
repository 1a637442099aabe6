"""Patch: verl's `initialize_global_process_group_ray` starts plain gloo groups on the CPU platform.

What: `verl.utils.distributed.initialize_global_process_group_ray` becomes a wrapper that passes
`backend="gloo"` when no backend was given and verl's device is the CPU; otherwise verl's function runs unchanged.
Why: verl 0.9.1's default backend string is `"cpu:gloo,<device>:<backend>"`, which torch rejects when the
device is the CPU. The actor's worker is covered by `cpu_distributed.py` (verl imports it as
`external_lib` before its group starts), but the critic's worker starts its group first. Must run before
verl's worker modules import the function by name (`from verl.utils.distributed import ...`).
Fails without it: tests/backends/test_cpu_platform.py::test_worker_process_groups_start_with_plain_gloo_on_cpu.
"""

from __future__ import annotations

from typing import Any, Optional

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_cpu_platform.py::test_worker_process_groups_start_with_plain_gloo_on_cpu"
PROCESSES = ("verl",)


def apply() -> bool:
    """Wrap verl's process-group start once per process; True."""
    from verl.utils import distributed
    from verl.utils.device import get_device_name

    verl_initialize = distributed.initialize_global_process_group_ray
    if getattr(verl_initialize, "plain_gloo_on_cpu", False):
        return True

    def initialize(timeout_second: Optional[int] = None, backend: Optional[str] = None) -> Any:
        """verl's process-group start, with plain gloo as the backend on the CPU platform."""
        if backend is None and get_device_name() == "cpu":
            backend = "gloo"
        return verl_initialize(timeout_second=timeout_second, backend=backend)

    initialize.plain_gloo_on_cpu = True
    distributed.initialize_global_process_group_ray = initialize
    return True
