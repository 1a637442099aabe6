"""`verl-video monitor-memory OUT.json -- CMD ...`: run a command, sample memory, write the peak.

A training run spreads over many Ray processes, so the peak is taken over the whole machine: used memory
(total minus available) above what was in use when the command started, sampled twice a second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from pathlib import Path

import psutil


def _used_bytes() -> int:
    memory = psutil.virtual_memory()
    return memory.total - memory.available


def run_and_measure(command: list[str], interval_s: float = 0.5) -> tuple[int, dict]:
    """Run `command`; return its exit code and {baseline, peak, peak_above_baseline} in GiB plus wall time."""
    baseline = _used_bytes()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval_s):
            peak = max(peak, _used_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    try:
        code = subprocess.call(command)
    finally:
        done.set()
        sampler.join()
    gib = 1024**3
    report = {
        "baseline_gib": round(baseline / gib, 3),
        "peak_gib": round(peak / gib, 3),
        "peak_above_baseline_gib": round((peak - baseline) / gib, 3),
        "wall_s": round(time.monotonic() - start, 1),
        "exit_code": code,
    }
    return code, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="where to write the JSON report")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")


def run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command and args.command[0] == "--" else args.command
    if not command:
        raise SystemExit("monitor-memory: give a command after --")
    code, report = run_and_measure(command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return code
