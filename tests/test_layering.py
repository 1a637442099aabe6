"""Lower layers never import higher ones: checked on the source, so a new import that breaks the rule fails here."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verl_video"

# The packages from the bottom up: each may import itself and the packages before it, never one after it.
# The top-level modules (cli, main, sft) are commands and may import anything.
LAYERS = (
    "verl_video.models",        # model families, M-RoPE, the vision tower: what we know about architectures
    "verl_video.video",         # decoding by timestamp, sampling plans, caches, the processor memo
    "verl_video.rewards",       # the answer parser and the reward library: read only a row's fields
    "verl_video.annotations",   # the record schema, annotation formats, data_config files, mixtures
    "verl_video.tasks",         # each task's prompt, ground truth, checks and metrics (+ prompt templates)
    "verl_video.pipeline",      # record -> model input for every command, run settings, the SFT dataset
    "verl_video.verl_adapter",  # everything that touches verl: plugin, driver, trainer, rollouts, engines
    "verl_video.evaluation",    # eval and score
    "verl_video.selection",     # which records GRPO trains on
    "verl_video.tools",         # the other commands: demo data, tiny models, warm start, summarize, ...
)
FORBIDDEN = {layer: LAYERS[i + 1:] for i, layer in enumerate(LAYERS)}
# Only the adapter imports verl; everything below it runs (and is tested) without verl's trainer.
VERL_FREE_LAYERS = tuple(layer for layer in LAYERS if layer != "verl_video.verl_adapter")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names = set()
    package = _module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
    return names


def _files(layer: str) -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if _module_name(p) == layer or _module_name(p).startswith(layer + ".")]


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_nothing_above_it(layer):
    files = _files(layer)
    assert files, f"no module found for {layer}"
    bad = [
        f"{p.relative_to(PACKAGE.parent)} imports {name}"
        for p in files
        for name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert not bad, bad


def test_every_module_belongs_to_a_layer_or_is_a_command():
    commands = {"verl_video", "verl_video.cli", "verl_video.main", "verl_video.sft"}
    stray = [
        str(p.relative_to(PACKAGE.parent))
        for p in PACKAGE.rglob("*.py")
        if _module_name(p) not in commands and not any(_module_name(p).startswith(layer) for layer in LAYERS)
    ]
    assert not stray, f"modules outside the layers (add them to one): {stray}"


@pytest.mark.parametrize("layer", VERL_FREE_LAYERS)
def test_only_the_adapter_imports_verl(layer):
    bad = [
        f"{p.relative_to(PACKAGE.parent)} imports {name}"
        for p in _files(layer)
        for name in _imports(p)
        if name == "verl" or name.startswith("verl.")
    ]
    assert not bad, bad


# The one record-to-item pipeline every command uses (training, eval, warm start, cache) and what it stands on.
VERL_FREE = ("verl_video.pipeline.items", "verl_video.pipeline.run_settings", "verl_video.evaluation.eval_set")


@pytest.mark.parametrize("module", VERL_FREE)
def test_shared_pipeline_runs_without_importing_verl(module):
    # Imported in a fresh interpreter: whatever it pulls in, directly or not, must leave verl unimported.
    code = (
        f"import sys, {module}; "
        "loaded = sorted(m for m in sys.modules if m == 'verl' or m.startswith('verl.')); "
        "print(loaded[:5]); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=PACKAGE.parent, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert result.returncode == 0, f"{module} imports verl: {result.stdout} {result.stderr[-2000:]}"
