"""The demo's GRPO over several seeds from one warm start: greedy validation at each validation step, per seed.

    python benchmarks/bench_demo_seeds.py                       # seeds 42 1 2 through examples/tiny_tvg_cpu.sh
    python benchmarks/bench_demo_seeds.py --seeds 42 7 --out runs/demo_seeds
    python benchmarks/bench_demo_seeds.py --table-only          # the table of runs already in --out

Each seed runs `bash examples/tiny_tvg_cpu.sh trainer.seed=N` with the same OUT, so the tiny model, the videos
and the warm start are built once (by the first seed) and every seed trains from the same warm model, each in
its own run folder OUT/seed<N>. Extra arguments after `--` go to the trainer, as with the demo script.
The table gives, per seed, greedy mIoU and R1@0.5 at each validation, the change from step 0, the video-blind
baseline (the best single interval, as a fraction of the duration, for every validation video), and the mean
over seeds; it is printed and written to OUT/seeds.md. What it printed for the demo as committed (2026-12-07,
a fresh clone): docs/experiments.md, "2026-12-07: a job for GRPO".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from verl_video.tools.summarize import RunFolder, grounding_sources

REPO = Path(__file__).resolve().parent.parent
METRICS = (("iou", "mIoU"), ("r1@0.5", "R1@0.5"))


def run_seed(out: Path, seed: int, trainer_args: list[str]) -> float:
    """Run the demo script for one seed; return its wall time in seconds."""
    env = {**os.environ, "OUT": str(out)}
    # The venv's commands (verl-video, python) come first on PATH, as under `make demo`.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    began = time.monotonic()
    subprocess.run(["bash", str(REPO / "examples" / "tiny_tvg_cpu.sh"), f"trainer.seed={seed}", *trainer_args],
                   env=env, check=True)  # fmt: skip
    return time.monotonic() - began


def seed_rows(out: Path, seed: int) -> tuple[dict[str, list[tuple[int, float]]], float | None]:
    """The validation series of one seed's run ({metric: [(step, value), ...]}) and its video-blind baseline."""
    folder = RunFolder.open(out / f"seed{seed}")
    sources = grounding_sources(folder.run, "val-aux/", "/mean@1")
    if len(sources) != 1:
        raise SystemExit(f"{folder.path}: expected one grounding validation source, found {sources or 'none'}")
    series = {name: folder.run.series(f"val-aux/{sources[0]}/{name}/mean@1") for name, _ in METRICS}
    return series, folder.baseline


def table(out: Path, seeds: list[int], walls: dict[int, float]) -> str:
    """Markdown table of every seed's validations, gains and the mean over seeds."""
    runs = {seed: seed_rows(out, seed) for seed in seeds}
    steps = sorted({step for series, _ in runs.values() for step, _ in series["iou"]})
    head = ["seed"] + [f"step {s}" for s in steps] + ["mIoU change", "R1@0.5 change", "video-blind", "wall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    gains: dict[str, list[float]] = {name: [] for name, _ in METRICS}
    for seed, (series, baseline) in runs.items():
        by_step = {name: dict(points) for name, points in series.items()}
        cells = [str(seed)]
        for step in steps:
            values = [by_step[name].get(step) for name, _ in METRICS]
            cells.append(" / ".join("-" if v is None else f"{v:.3f}" for v in values))
        for name, _ in METRICS:
            points = series[name]
            gain = points[-1][1] - points[0][1]
            gains[name].append(gain)
            cells.append(f"{gain:+.3f}")
        cells.append("-" if baseline is None else f"{baseline:.3f}")
        cells.append(f"{walls[seed] / 60:.1f} min" if seed in walls else "-")
        lines.append("| " + " | ".join(cells) + " |")
    mean = ["mean"] + [""] * len(steps) + [f"{statistics.fmean(gains[name]):+.3f}" for name, _ in METRICS] + ["", ""]
    lines.append("| " + " | ".join(mean) + " |")
    lines.append("")
    lines.append("Cells: greedy validation mIoU / R1@0.5. Change: last validation minus step 0 (the warm start).")
    return "\n".join(lines)


def main() -> int:
    """Run the seeds (unless --table-only) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "tiny_tvg_cpu", help="the demo's OUT folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--table-only", action="store_true", help="only read the runs already in --out")
    parser.add_argument("trainer_args", nargs="*", help="after --: key=value for the trainer")
    args = parser.parse_args()
    walls = {} if args.table_only else {seed: run_seed(args.out, seed, args.trainer_args) for seed in args.seeds}
    text = table(args.out.resolve(), args.seeds, walls)
    (args.out / "seeds.md").write_text(text + "\n")
    print(text)
    print(f"written: {args.out / 'seeds.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
