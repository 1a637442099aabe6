"""Lower layers never import higher ones: checked on the source, so a new import that breaks the rule fails here."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verl_video"

# module prefix -> prefixes it must never import
FORBIDDEN = {
    "verl_video.grounding_metrics": ("verl_video",),
    # Rewards read what they need from the row (extra_info, ground truth), never the data, task or evaluation
    # code that made it.
    "verl_video.rewards": (
        "verl_video.data", "verl_video.tasks", "verl_video.evaluation", "verl_video.tools", "verl_video.trainer",
        "verl_video.main",
    ),  # fmt: skip
    # Tasks sit on the record schema and the rewards; the data pipeline and evaluation use them.
    "verl_video.tasks": ("verl_video.evaluation", "verl_video.tools", "verl_video.trainer", "verl_video.main"),
    "verl_video.data": ("verl_video.evaluation", "verl_video.tools", "verl_video.trainer", "verl_video.main"),
    "verl_video.models": ("verl_video.data", "verl_video.rewards", "verl_video.evaluation", "verl_video.tools"),
    "verl_video.evaluation": ("verl_video.selection", "verl_video.tools", "verl_video.trainer", "verl_video.main"),
    "verl_video.selection": ("verl_video.tools", "verl_video.trainer", "verl_video.main"),
}


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


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    files = [p for p in PACKAGE.rglob("*.py") if _module_name(p) == layer or _module_name(p).startswith(layer + ".")]
    assert files, f"no module found for {layer}"
    bad = [
        f"{p.relative_to(PACKAGE.parent)} imports {name}"
        for p in files
        for name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert not bad, bad


# The one record-to-item pipeline every command uses (training, eval, warm start, cache) and what it stands on.
VERL_FREE = ("verl_video.data.pipeline", "verl_video.data.run_settings", "verl_video.evaluation.eval_set")


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
