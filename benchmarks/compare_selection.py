"""Selection and dynamic sampling on the CPU demo: zero-variance groups per GRPO step, reward and IoU curves.

    python benchmarks/compare_selection.py -o runs/compare_selection             # builds the demo, seed 42, 6 steps
    python benchmarks/compare_selection.py -o runs/cmp --model DIR --data TRAIN.yaml --val VAL.yaml --seed 1
    python benchmarks/compare_selection.py -o runs/compare_selection --report-only  # print the tables again

1. `verl-video select DATA --model M -k K --strategy variance` (Temporal-R1's selection: keep the records whose
   k sampled rewards vary), seeded with --seed (or --select-seed).
2. Three GRPO runs of --steps steps from the same model with the same seed: `full` (all of DATA), `selected`
   (the selection's data_config) and `dynamic` (all of DATA with `algorithm.filter_groups.enable=true`, metric
   `reward`, `max_num_gen_batches`); validation after the last step (and before the first, in `full`).
3. Tables from each run's metrics.jsonl: the share of zero-variance groups in each trained batch
   (`groups/zero_variance_fraction`), the dynamic run's groups generated / kept / share of generated groups
   with zero variance / generation batches, the training reward and IoU per step, and the final validation.

Without --model the demo's own steps build the model (`make-tiny-model`, `make-demo-data`, `warm-start` with
experiment=tiny_tvg_cpu) into OUT/demo. A run whose metrics already hold --steps steps is not run again, so
rerunning the command after an interruption finishes the comparison. Extra `key=value` arguments go to every run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from verl_video.tools.summarize import RunMetrics

RUNS = ("full", "selected", "dynamic")
FILTER = "training/filter_groups"
COUNTS = {f"{FILTER}/{name}" for name in ("groups_generated", "groups_kept", "gen_batches")}


def verl_video(*args: str) -> list[str]:
    """The `verl-video` command line run by this interpreter (the same installation as the trainer)."""
    return [sys.executable, "-m", "verl_video.cli", *args]


def prepare_demo(work: Path) -> tuple[str, str, str]:
    """The demo's tiny model, data and supervised warm start, built as `make demo` builds them."""
    model, data, warm = work / "tiny_model", work / "data", work / "warm_model"
    if not (model / "config.json").exists():
        subprocess.run(verl_video("make-tiny-model", str(model)), check=True)
    if not (data / "train.yaml").exists():
        subprocess.run(verl_video("make-demo-data", str(data)), check=True)
    if not (warm / "config.json").exists():
        subprocess.run(verl_video("warm-start", str(model), str(data / "train.yaml"), str(warm),
                                  "--set", "experiment=tiny_tvg_cpu"), check=True)
    return str(warm), str(data / "train.yaml"), str(data / "val.yaml")


def run_select(args: argparse.Namespace, out: Path) -> Path:
    """k answers per record with the starting model, then the variance strategy; returns the data_config."""
    seed = args.seed if args.select_seed is None else args.select_seed
    cmd = verl_video("select", args.data, "--model", args.model, "-k", str(args.k), "--strategy", "variance",
                     "-o", str(out), "--seed", str(seed), "--set", f"experiment={args.experiment}",
                     "--backend", "hf", "--device", "cpu")
    subprocess.run(cmd, check=True)
    return out / "data_config.yaml"


def steps_done(metrics: Path) -> int:
    """Training steps a run's metrics file holds (0 when there is none)."""
    if not metrics.exists():
        return 0
    return sum(1 for _, data in RunMetrics.load(metrics).steps if "training/global_step" in data)


def train(args: argparse.Namespace, name: str, train_files: str, extra: list[str],
          val_before: bool = False) -> None:
    """One GRPO run of args.steps steps into OUT/runs/NAME (skipped when already complete)."""
    root = Path(args.output_dir) / "runs" / name
    metrics = root / "metrics.jsonl"
    if steps_done(metrics) >= args.steps:
        print(f"compare_selection: {name}: {args.steps} steps already in {metrics}", file=sys.stderr)
        return
    root.mkdir(parents=True, exist_ok=True)
    metrics.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "verl_video.main", f"experiment={args.experiment}",
           f"actor_rollout_ref.model.path={args.model}", f"data.train_files={train_files}",
           f"data.val_files={args.val}", f"trainer.seed={args.seed}", f"trainer.total_training_steps={args.steps}",
           f"trainer.val_before_train={str(val_before).lower()}", f"trainer.test_freq={args.steps}",
           "trainer.save_freq=-1",
           f"trainer.default_local_dir={root / 'checkpoints'}", f"trainer.validation_data_dir={root / 'validation'}",
           *extra, *args.overrides]
    env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(metrics)}
    print(f"compare_selection: {name}: {' '.join(cmd[3:])}", file=sys.stderr)
    with open(root / "train.log", "w", encoding="utf-8") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def _value(data: dict, key: str) -> str:
    if key not in data:
        return "-"
    # Group and batch counts print as counts, fractions and rewards with three decimals.
    return f"{data[key]:.0f}" if key in COUNTS else f"{data[key]:.3f}"


def _at(run: RunMetrics, key: str | None, index: int) -> str:
    series = run.series(key) if key else []
    return f"{series[index][1]:.3f}" if series else "-"


def _first_key(run: RunMetrics, prefix: str, suffix: str) -> str | None:
    keys = run.keys_matching(prefix, suffix)
    return keys[0] if keys else None


def tables(out: Path) -> str:
    """Markdown tables of the runs under OUT/runs, read from their metrics files."""
    runs = {name: RunMetrics.load(out / "runs" / name / "metrics.jsonl") for name in RUNS
            if (out / "runs" / name / "metrics.jsonl").exists()}
    train_steps = {name: [(s, d) for s, d in run.steps if "training/global_step" in d] for name, run in runs.items()}
    steps = sorted({s for rows in train_steps.values() for s, _ in rows})
    lines = []
    selection = out / "select" / "selection.json"
    if selection.exists():
        report = json.loads(selection.read_text())
        counts = report.get("counts", report)
        lines += ["selection (variance strategy): " + ", ".join(f"{k} {v}" for k, v in counts.items()
                                                                  if isinstance(v, (int, float))), ""]

    def per_step(title: str, columns: list[tuple[str, str, str]]) -> None:
        lines.extend([title, "", "| step | " + " | ".join(c[0] for c in columns) + " |",
                      "|---" * (len(columns) + 1) + "|"])
        by_run = {name: dict(rows) for name, rows in train_steps.items()}
        for step in steps:
            cells = [_value(by_run.get(run_name, {}).get(step, {}), key) for _, run_name, key in columns]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("")

    zero = "groups/zero_variance_fraction"
    per_step("Zero-variance groups in the trained batch (share of its prompt groups whose rewards all agree)",
             [(name, name, zero) for name in RUNS if name in runs]
             + ([("dynamic: of generated groups", "dynamic", f"{FILTER}/zero_variance_fraction"),
                 ("dynamic: groups generated", "dynamic", f"{FILTER}/groups_generated"),
                 ("dynamic: groups kept", "dynamic", f"{FILTER}/groups_kept"),
                 ("dynamic: gen batches", "dynamic", f"{FILTER}/gen_batches")] if "dynamic" in runs else []))
    iou = {name: _first_key(run, "reward/", "/iou") for name, run in runs.items()}
    per_step("Training reward (critic/score/mean) and IoU (reward/<dataset>/iou) per step",
             [(f"{name} reward", name, "critic/score/mean") for name in runs]
             + [(f"{name} IoU", name, iou[name]) for name in runs if iou[name]])
    lines += ["Means over the steps and validation after the last step (greedy)", "",
              "| run | steps | zero-variance | reward | IoU | answer parsed | val mIoU | val R1@0.5 | s/step |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        rows = [d for _, d in train_steps[name]]

        def mean(key: str | None, rows=rows) -> str:
            values = [d[key] for d in rows if key and key in d]
            return f"{sum(values) / len(values):.3f}" if values else "-"

        val_iou = _first_key(run, "val-aux/", "/iou/mean@1")
        val_r1 = _first_key(run, "val-aux/", "/r1@0.5/mean@1")
        parsed = _first_key(run, "reward/", "/parse_ok")
        if val_iou and run.series(val_iou)[0][0] == 0:
            lines.append(f"| start (step 0) | 0 | - | - | - | - | {_at(run, val_iou, 0)} | {_at(run, val_r1, 0)} | - |")
        lines.append(f"| {name} | {len(rows)} | {mean(zero)} | {mean('critic/score/mean')} | {mean(iou[name])} | "
                     f"{mean(parsed)} | {_at(run, val_iou, -1)} | {_at(run, val_r1, -1)} | {mean('timing_s/step')} |")
    return "\n".join(lines)


def main() -> None:
    """Select, run the three trainings, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", "-o", default="runs/compare_selection")
    parser.add_argument("--model", help="starting model (default: the demo's warm start, built into OUT/demo)")
    parser.add_argument("--data", help="training data_config (default: the demo's)")
    parser.add_argument("--val", help="validation data_config (default: the demo's)")
    parser.add_argument("--experiment", default="tiny_tvg_cpu")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--select-seed", type=int, help="seed of the k answers (default: --seed); with OUT/select "
                        "copied from a run with that seed, its answers are reused")
    parser.add_argument("-k", type=int, default=8, help="answers per record for the selection (GRPO's group size)")
    parser.add_argument("--max-gen-batches", type=int, default=4, help="algorithm.filter_groups.max_num_gen_batches")
    parser.add_argument("--report-only", action="store_true", help="print the tables of the runs already in OUT")
    args, args.overrides = parser.parse_known_args()
    out = Path(args.output_dir).resolve()
    args.output_dir = str(out)
    if not args.report_only:
        if args.model is None:
            args.model, demo_data, demo_val = prepare_demo(out / "demo")
            args.data, args.val = args.data or demo_data, args.val or demo_val
        if not (args.data and args.val):
            parser.error("--model needs --data and --val")
        selected = run_select(args, out / "select")
        train(args, "full", args.data, [], val_before=True)  # the starting model's validation, once
        report = json.loads((out / "select" / "selection.json").read_text())
        if report["counts"]["kept"] < report["records"]:
            train(args, "selected", str(selected), [])
        else:  # the same records, seed and model: the run would repeat `full`
            print("compare_selection: the selection kept every record; no `selected` run", file=sys.stderr)
        train(args, "dynamic", args.data, ["algorithm.filter_groups.enable=true",
                                           "algorithm.filter_groups.metric=reward",
                                           f"algorithm.filter_groups.max_num_gen_batches={args.max_gen_batches}"])
    print(tables(out))


if __name__ == "__main__":
    main()
