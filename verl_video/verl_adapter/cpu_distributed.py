"""Start torch.distributed with plain gloo in a CPU trainer worker, before verl tries its own backend string.

verl 0.9.1 initialises workers with `"cpu:gloo,<device>:<backend>"`; with device "cpu" that names the CPU
twice and torch rejects it. verl skips its own initialisation when a process group already exists, and it
imports `actor_rollout_ref.model.external_lib` in each worker just before, so our trainer config points
that setting here. On an accelerator platform this module does nothing. Not a patch (it replaces nothing of
verl's, and verl imports it by configuration), so it is not in `patches/`.
"""

from __future__ import annotations

import os

import torch.distributed as dist
from verl.utils.device import get_device_name


def init_cpu_process_group() -> bool:
    """Initialise a gloo process group from the worker's env (RANK, WORLD_SIZE, MASTER_*); True if it did."""
    if get_device_name() != "cpu" or dist.is_initialized():
        return False
    needed = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    if not all(key in os.environ for key in needed):
        return False  # the driver or a non-trainer actor: nothing to join
    dist.init_process_group(backend="gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    return True


init_cpu_process_group()
