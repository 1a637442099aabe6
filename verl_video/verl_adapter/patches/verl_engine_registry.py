"""Patch: our FSDP engines written into verl's private engine table, `EngineRegistry._engines`.

What: for model types `language_model` and `value_model`, backends `fsdp` and `fsdp2`, and devices `cpu`,
`cuda` and `npu`, the table names `fsdp_engine.VideoFSDPEngineWithLMHead` / `VideoFSDPEngineWithValueHead`
(subclasses of verl's, with the vision settings applied).
Why: verl 0.9.1 registers its own engines for cuda and npu, and its public `EngineRegistry.register` refuses
to replace an entry; it has none for the CPU at all.
Fails without it: tests/backends/test_cpu_platform.py::test_hf_rollout_and_cpu_engines_resolve.
"""

from __future__ import annotations

import warnings

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_cpu_platform.py::test_hf_rollout_and_cpu_engines_resolve"
PROCESSES = ("verl",)

BACKENDS = ("fsdp", "fsdp2")
DEVICES = ("cpu", "cuda", "npu")


def apply() -> bool:
    """Point every (model type, backend, device) entry at our engines; True."""
    with warnings.catch_warnings():
        # verl warns once per optional engine (megatron, veomni, ...) that is not installed; none is needed here.
        warnings.filterwarnings("ignore", message=".*engine is not available.*")
        from verl.workers.engine import EngineRegistry

        from verl_video.verl_adapter.fsdp_engine import VideoFSDPEngineWithLMHead, VideoFSDPEngineWithValueHead

    for model_type, engine in (("language_model", VideoFSDPEngineWithLMHead), ("value_model", VideoFSDPEngineWithValueHead)):
        for backend in BACKENDS:
            table = EngineRegistry._engines.setdefault(model_type, {}).setdefault(backend, {})
            table.update(dict.fromkeys(DEVICES, engine))
    return True
