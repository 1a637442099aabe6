"""Lower layers never import higher ones: checked on the source, so a new import that breaks the rule fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verl_video"

# module prefix -> prefixes it must never import
FORBIDDEN = {
    "verl_video.grounding_metrics": ("verl_video",),
    "verl_video.rewards": (
        "verl_video.tasks", "verl_video.evaluation", "verl_video.tools", "verl_video.trainer", "verl_video.main",
    ),  # fmt: skip
    # Tasks sit on the record schema and the rewards; the data pipeline and evaluation use them.
    "verl_video.tasks": ("verl_video.evaluation", "verl_video.tools", "verl_video.trainer", "verl_video.main"),
    "verl_video.data": ("verl_video.evaluation", "verl_video.tools", "verl_video.trainer", "verl_video.main"),
    "verl_video.models": ("verl_video.data", "verl_video.rewards", "verl_video.evaluation", "verl_video.tools"),
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
