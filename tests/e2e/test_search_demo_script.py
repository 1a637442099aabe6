"""`bash examples/tiny_tvg_search_cpu.sh` and `python benchmarks/bench_search_vs_single.py` as a user runs them, from a
folder outside the repository, at a tiny size: both arms warm-start with the same budget and train their GRPO step
through the real trainer, and the benchmark evaluates each arm's models through the arm's own loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _cli

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

TINY = {"NUM_TRAIN": "8", "NUM_VAL": "4", "NUM_WARM_START": "8", "WARM_START_STEPS": "2", "STEPS": "1"}


def _user_env(out: Path, base: Path) -> dict:
    env = {**os.environ, **TINY, "OUT": str(out), "BASE": str(base), "RAY_memory_monitor_refresh_ms": "0"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def search_demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The search demo script on a tiny random model, then the benchmark over what it built."""
    user = tmp_path_factory.mktemp("user")
    _cli("make-tiny-model", str(user / "tiny"), "--family", "qwen3_vl")
    out, env = user / "search_demo", _user_env(user / "search_demo", user / "tiny")
    demo = subprocess.run(["bash", str(REPO_ROOT / "examples" / "tiny_tvg_search_cpu.sh")], cwd=user, env=env,
                          capture_output=True, text=True, timeout=2400)  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    bench = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_search_vs_single.py"),
                            "--out", str(out)], cwd=user, env=env, capture_output=True, text=True, timeout=1200)
    assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:]
    return out, demo, bench


def test_both_arms_warm_start_alike_and_train_their_step(search_demo) -> None:
    out, demo, _ = search_demo
    starts = {arm: json.loads((out / f"warm_{arm}" / "warm_start.json").read_text()) for arm in ("search", "single")}
    assert starts["search"]["search"] is True and starts["single"]["search"] is False
    for arm, start in starts.items():
        assert (start["steps"], start["batch_size"], start["lr"]) == (2, 8, 0.002), arm
        assert start["data"].endswith("warm_start.yaml") and start["samples"] == int(TINY["NUM_WARM_START"]), arm
        metrics = (out / arm / "seed42" / "checkpoints" / "metrics.jsonl").read_text().splitlines()
        trained = [json.loads(line)["data"] for line in metrics if "timing_s/step" in json.loads(line)["data"]]
        assert len(trained) == 1, f"{arm}: {len(trained)} steps trained"
        # The search arm ran the video_search loop, the single pass did not.
        assert ("zoom/calls" in trained[0]) == (arm == "search"), arm
    assert demo.stdout.count("plot: ") == 2


def test_the_benchmark_evaluates_each_arm_through_its_own_loop(search_demo) -> None:
    out, _, bench = search_demo
    assert bench.stdout.strip().splitlines()[-1] == f"written: {out / 'search_vs_single.md'}"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in bench.stdout.splitlines() if line.startswith("| s")}
    assert set(rows) == {"search, warm start", "single, warm start", "search, GRPO seed 42 (global_step_1)",
                         "single, GRPO seed 42 (global_step_1)"}, rows
    for arm in ("search", "single"):
        lines = (out / "eval" / f"{arm}_warm" / "predictions.jsonl").read_text().splitlines()
        predictions = [json.loads(line) for line in lines]
        assert len(predictions) == int(TINY["NUM_VAL"])
        # The search arm's answers are trajectories of the loop (zoom facts per answer); the single pass's are not.
        assert all(("zoom_calls" in p) == (arm == "search") for p in predictions), arm
    # One pass of 84 frames shows more visual tokens than the search arm's overview of 32 alone.
    single = json.loads((out / "eval" / "single_warm" / "metrics.json").read_text())["metrics"]
    search = [json.loads(line) for line in (out / "eval" / "search_warm" / "predictions.jsonl").read_text().splitlines()]
    assert single["visual_tokens_per_answer"] > min(p["visual_tokens"] for p in search) > 0
