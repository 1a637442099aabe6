"""Long videos by search against one pass: greedy evaluation of both arms of examples/tiny_tvg_search_cpu.sh.

    bash examples/tiny_tvg_search_cpu.sh                   # builds OUT: data, warm starts, GRPO runs
    python benchmarks/bench_search_vs_single.py            # evaluates what OUT holds and prints the table
    python benchmarks/bench_search_vs_single.py --seeds 42 1 --out runs/tiny_tvg_search_cpu

For each arm (search: experiment=tiny_tvg_search_demo, the `video_search` loop; single: tiny_tvg_longsingle_demo,
one pass of 84 frames) it runs `verl-video eval` greedily on OUT/data/val.yaml, with the arm's settings, for the
warm start and for the last checkpoint of each GRPO seed found in OUT/<arm>/seed<N>: `eval` runs the same agent
loop as training, so the search arm's numbers are the loop's. Each row gives mIoU, R1@0.5, visual tokens per
answer (the whole trajectory's, windows included), zoom calls per answer, the share of answers that looked at a
window, the share whose window held the event, and, for GRPO rows, the mean seconds per step split as verl times
it (generation, actor log-prob, update). Evaluations already in OUT/eval/ are reused (`eval` resumes). The table
is printed and written to OUT/search_vs_single.md; what it printed is in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from verl_video.tools.summarize import RunMetrics, find_metrics

REPO = Path(__file__).resolve().parent.parent
ARMS = {"search": "tiny_tvg_search_demo", "single": "tiny_tvg_longsingle_demo"}
PHASES = (("gen", "generation"), ("old_log_prob", "log-prob"), ("update_actor", "update"))


def evaluate(out: Path, arm: str, model: Path, name: str) -> dict:
    """`verl-video eval` of `model` on OUT's validation videos with the arm's settings; its metrics."""
    folder = out / "eval" / f"{arm}_{name}"
    command = [str(Path(sys.executable).parent / "verl-video"), "eval", "--model", str(model),
               "--data", str(out / "data" / "val.yaml"), "-o", str(folder), "--no-plots",
               "--set", f"experiment={ARMS[arm]}"]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((folder / "metrics.json").read_text())["metrics"]


def last_checkpoint(run: Path) -> Path | None:
    """The run's latest global_step_N folder, None when it saved none."""
    steps = sorted((run / "checkpoints").glob("global_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return steps[-1] if steps else None


def step_times(run: Path) -> str:
    """Mean seconds per GRPO step, split as verl times it."""
    metrics = RunMetrics.load(find_metrics(run))
    parts = []
    for key, label in PHASES:
        values = [value for _, value in metrics.series(f"timing_s/{key}")]
        if values:
            parts.append(f"{label} {statistics.fmean(values):.1f}")
    return ", ".join(parts) or "-"


def row(label: str, metrics: dict, times: str = "") -> str:
    """One table row from an evaluation's metrics."""
    cells = [label, f"{metrics['miou']:.3f}", f"{metrics['r1@0.5']:.3f}", f"{metrics['visual_tokens_per_answer']:.0f}",
             f"{metrics.get('zoom/calls', 0.0):.2f}", f"{metrics.get('zoom/used', 0.0):.2f}",
             f"{metrics['zoom/window_contains_gt']:.2f}" if "zoom/window_contains_gt" in metrics else "-",
             times or "-"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def table(out: Path, seeds: list[int]) -> str:
    """Evaluate every model OUT holds and return the markdown table."""
    head = ["arm, model", "mIoU", "R1@0.5", "visual tokens / answer", "zoom calls / answer", "zoomed",
            "window held the event", "s / GRPO step"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm in ARMS:
        warm = out / f"warm_{arm}"
        if not (warm / "config.json").is_file():
            continue
        lines.append(row(f"{arm}, warm start", evaluate(out, arm, warm, "warm")))
        for seed in seeds:
            run = out / arm / f"seed{seed}"
            checkpoint = last_checkpoint(run) if run.is_dir() else None
            if checkpoint is not None:
                metrics = evaluate(out, arm, checkpoint, f"seed{seed}_{checkpoint.name}")
                lines.append(row(f"{arm}, GRPO seed {seed} ({checkpoint.name})", metrics, step_times(run)))
    if len(lines) == 2:
        raise SystemExit(f"{out}: no warm_search/ or warm_single/ model: run examples/tiny_tvg_search_cpu.sh first")
    lines += ["", "Greedy `verl-video eval` on the validation videos. zoomed: share of answers served a window; window "
              "held the event: share of those whose window held the whole annotated event."]
    return "\n".join(lines)


def main() -> int:
    """Evaluate both arms and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "tiny_tvg_search_cpu",
                        help="the search demo's OUT folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = parser.parse_args()
    text = table(args.out.resolve(), args.seeds)
    (args.out / "search_vs_single.md").write_text(text + "\n")
    print(text)
    print(f"written: {args.out / 'search_vs_single.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
