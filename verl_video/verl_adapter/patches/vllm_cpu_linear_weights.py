"""Patch: vLLM-CPU's GEMM repack keeps each linear layer's `weight` (`vllm_cpu.py`, point 2).

What: `vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm` (and the name in
`vllm.model_executor.layers.linear`, where a version binds it) becomes a wrapper that always passes
`remove_weight=False`. Only on vLLM's CPU platform; elsewhere nothing changes.
Why: vLLM 0.24's CPU platform repacks linear weights after loading and drops `layer.weight`; verl's weight
sync loads new weights into `layer.weight` in place, so the first sync failed. Cost: a second copy of
the linear weights in host memory. Applied in vLLM's processes only (the `vllm.general_plugins` entry
point): it imports vLLM, which verl's processes must not pay for.
Fails without it: tests/backends/test_vllm_cpu.py::test_a_repacked_linear_layer_takes_new_weights_in_place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

TARGET = ("vllm", "0.24.0")
TEST = "tests/backends/test_vllm_cpu.py::test_a_repacked_linear_layer_takes_new_weights_in_place"
PROCESSES = ("vllm",)


def apply() -> bool:
    """On vLLM's CPU platform, keep each linear layer's weight after its kernel repack; whether it applies here."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return False
    from vllm.model_executor.layers import linear, utils

    repack = utils.dispatch_cpu_unquantized_gemm
    if getattr(repack, "keeps_weight", False):
        return True

    def repack_keeping_weight(layer: "torch.nn.Module", remove_weight: bool) -> None:
        """vLLM-CPU's repack, told to leave `layer.weight` in place for the next weight sync."""
        repack(layer, remove_weight=False)

    repack_keeping_weight.keeps_weight = True
    # linear.py imports the function inside process_weights_after_loading, from the utils module.
    utils.dispatch_cpu_unquantized_gemm = repack_keeping_weight
    if hasattr(linear, "dispatch_cpu_unquantized_gemm"):
        linear.dispatch_cpu_unquantized_gemm = repack_keeping_weight
    return True
