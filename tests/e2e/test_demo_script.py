"""`bash examples/tiny_tvg_cpu.sh` as a user runs it, from a folder outside the repository, at a tiny size: the
two-stage warm start is built once, each GRPO seed trains in its own run folder, and the summary ends with the
run's picture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

# Sizes small enough for a test; what the demo does with them is the same.
TINY = {"NUM_TRAIN": "16", "NUM_VAL": "4", "NUM_WARM_START": "16", "WARM_START_STEPS": "2", "LAGGED_STEPS": "2",
        "STEPS": "1"}


def _demo(cwd: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **TINY, "OUT": str(out), "RAY_memory_monitor_refresh_ms": "0"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", str(REPO_ROOT / "examples" / "tiny_tvg_cpu.sh"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)  # fmt: skip


def _trained_steps(run: Path) -> list[int]:
    lines = (run / "checkpoints" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if "timing_s/step" in json.loads(line)["data"]]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess, bytes]:
    """The demo with its default seed, then again with trainer.seed=1 into the same OUT."""
    user = tmp_path_factory.mktemp("user")
    out = user / "demo"
    first = _demo(user, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    seed42_metrics = (out / "seed42" / "checkpoints" / "metrics.jsonl").read_bytes()
    second = _demo(user, out, "trainer.seed=1")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return out, first, second, seed42_metrics


def test_each_seed_trains_in_its_own_run_folder(two_seeds) -> None:
    out, _, second, seed42_metrics = two_seeds
    for seed in (42, 1):
        run = out / f"seed{seed}"
        assert _trained_steps(run) == [1], f"{run}: seed {seed} did not train its step"
        assert json.loads((run / "checkpoints" / "run.json").read_text())["seed"] == seed
    # The second seed neither resumed nor touched the first one's run.
    assert (out / "seed42" / "checkpoints" / "metrics.jsonl").read_bytes() == seed42_metrics
    assert "GRPO, seed 1" in second.stdout


def test_the_warm_start_is_built_once_exact_then_lagged(two_seeds) -> None:
    out, first, second, _ = two_seeds
    exact = json.loads((out / "warm_exact" / "warm_start.json").read_text())
    lagged = json.loads((out / "warm_model" / "warm_start.json").read_text())
    assert exact["data"].endswith("warm_start.yaml") and exact["steps"] == int(TINY["WARM_START_STEPS"])
    assert lagged["data"].endswith("warm_start_lagged.yaml") and lagged["model"] == str(out / "warm_exact")
    assert lagged["samples"] == int(TINY["NUM_WARM_START"])
    assert "supervised warm start" in first.stdout and "verl-video warm-start" not in second.stdout + second.stderr


def test_the_summary_ends_with_the_runs_picture(two_seeds) -> None:
    out, first, second, _ = two_seeds
    for result, seed in ((first, 42), (second, 1)):
        last = result.stdout.strip().splitlines()[-1]
        assert last == f"plot: {out / f'seed{seed}' / 'summary.png'}", last
        assert (out / f"seed{seed}" / "summary.png").stat().st_size > 10_000
