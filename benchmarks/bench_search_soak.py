"""Benchmark: memory of a long `video_search` GRPO run, per process role, while every step sees new long videos.

Builds (or reuses, under --out) `--videos` long demo videos (120-300 s at 4 fps), a tiny Qwen3-VL and its loop
warm start on the first 12 of them (the search e2e's recipe, so that trajectories zoom), then runs the real
trainer (`python -m verl_video.main experiment=tiny_tvg_search_cpu`, the e2e's `_train`) for `--steps` steps of
`--batch-size` prompts x 2 rollouts at a small learning rate (the policy keeps zooming): one epoch, no checkpoint,
validation only after the last step. Meanwhile a
thread samples every few seconds the RSS and USS of every process under this one (the driver, Ray's GCS and
raylet, each Ray worker), tagged by role: a Ray worker's role is its actor class (`ray::TaskRunnerV1`, the
trainer; `ray::WorkerDict`, actor and reference; `ray::HFServer`, the rollout server; `ray::RewardLoopWorker`,
...), summed over the processes of that role (RSS sums count shared libraries once per process; USS does not).

    python benchmarks/bench_search_soak.py --out /tmp/soak [--steps 100] [--videos 400] [--batch-size 4] [OVERRIDE ...]

Prints per role the RSS at steps ~0, ~half and the last, growth per 100 steps and the slope of a linear fit over
the second half (MiB per 100 steps), plus the zoom metrics (calls, used share) that show windows were decoded;
writes OUT/memory.csv (every sample) and OUT/memory.png (median RSS per step, per role).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import _cli  # noqa: E402
from test_grpo_cpu import _train  # noqa: E402

MIB = 1024**2
ROLLOUTS = 2
# The search e2e's warm start (tests/e2e/test_grpo_search_cpu.py): 120 loop steps of 4 traces on 12 videos,
# sampled at T=0.7, made 23 of 64 trajectories zoom.
WARM_STEPS = 120
WARM_VIDEOS = 12
TEMPERATURE = 0.7
# The experiment's 1e-3 (a tiny model's GRPO step) drove the policy off zooming within ~30 steps (measured: zoom/used
# 0.004 a trajectory over 64 steps, responses ~60 tokens); a small step keeps the warm start's zoom calls, so that
# windows are decoded all through the soak. Memory, not learning, is measured.
LEARNING_RATE = 1e-6
# A step's whole batch in one micro batch (the experiment's 8 does not divide batch size x rollouts = 4).
MICRO_BATCHES = ("actor.ppo_micro_batch_size_per_gpu", "rollout.log_prob_micro_batch_size_per_gpu",
                 "ref.log_prob_micro_batch_size_per_gpu")


def role_of(process: psutil.Process) -> str:
    """A process's role: `driver` (the trainer's main process), a Ray actor's class, or `ray-system` (GCS,
    raylet, dashboard, monitors: Ray's own programs)."""
    cmdline = process.cmdline()
    if cmdline and cmdline[0].startswith("ray::"):
        # Busy actors read `ray::Class.method`, TransferQueue's storage units `ray::Name#3:Class` when busy and
        # `ray::Class` when not, named actors `ray::name_0_1a2b3c4d` (one role for all of a name's instances),
        # idle workers `ray::IDLE`.
        title = re.sub(r"^ray::\w+#\d+:", "ray::", cmdline[0])
        return re.sub(r"_[0-9a-f]{8}$", "", re.match(r"ray::\w+", title).group())
    return "driver" if "verl_video.main" in cmdline else "ray-system"


class Sampler:
    """Samples memory of every descendant process every `interval_s` seconds, tagged with the completed steps."""

    def __init__(self, metrics: Path, interval_s: float) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self.rows: list[dict] = []
        self.seconds_per_sample: list[float] = []
        self._roles: dict[int, str] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def steps_done(self) -> int:
        """Steps the trainer has logged so far (one metrics line per finished step)."""
        with contextlib.suppress(FileNotFoundError):
            return sum(1 for line in self.metrics.read_text().splitlines() if line.strip())
        return 0

    def sample(self) -> None:
        """One sample of every process below this one."""
        began = time.monotonic()
        step = self.steps_done()
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                role = self._roles.get(process.pid) or role_of(process)
                if role.startswith("ray::") and role != "ray::IDLE":
                    # A worker keeps the actor it became (its later titles are methods of it); before its title
                    # is set it reads as a plain Python program, so only actor roles are remembered.
                    self._roles[process.pid] = role
                info = process.memory_full_info()
                self.rows.append({
                    "seconds": round(began - self._start, 1), "step": step, "pid": process.pid, "role": role,
                    "rss_mib": round(info.rss / MIB, 1), "uss_mib": round(info.uss / MIB, 1),
                })  # fmt: skip
        self.seconds_per_sample.append(time.monotonic() - began)

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def per_step(rows: list[dict], key: str = "rss_mib") -> dict[str, dict[int, float]]:
    """Per role (and `all`), per step: the median over that step's samples of the role's total (summed over its
    processes)."""
    totals: dict[tuple[str, float], float] = defaultdict(float)
    step_of: dict[float, int] = {}
    for row in rows:
        totals[(row["role"], row["seconds"])] += row[key]
        totals[("all", row["seconds"])] += row[key]
        step_of[row["seconds"]] = row["step"]
    by_step: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (role, seconds), total in totals.items():
        by_step[role][step_of[seconds]].append(total)
    return {role: {step: statistics.median(v) for step, v in sorted(steps.items())} for role, steps in by_step.items()}


def _at(series: dict[int, float], step: int) -> float:
    """The value at the logged step nearest to `step`."""
    return series[min(series, key=lambda s: abs(s - step))]


def slope_per_100(series: dict[int, float], first: int) -> float:
    """Least-squares slope (per 100 steps) of the series over steps >= first."""
    points = [(s, v) for s, v in series.items() if s >= first]
    if len(points) < 2:
        return float("nan")
    mean_s = statistics.fmean(s for s, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread = sum((s - mean_s) ** 2 for s, _ in points)
    return 100 * sum((s - mean_s) * (v - mean_v) for s, v in points) / spread if spread else float("nan")


def table(series: dict[str, dict[int, float]], steps: int) -> str:
    """Per role: RSS at steps ~0, ~half, ~last, growth per 100 steps from step 1 and second-half slope (MiB)."""
    half = steps // 2
    head = (f"{'role':<32}{'step~0':>9}{f'step~{half}':>11}{f'step~{steps}':>11}{'growth/100':>12}"
            f"{'slope/100 (2nd half)':>22}")
    lines = [head, "-" * len(head)]
    ordered = sorted(series.items(), key=lambda item: (item[0] == "all", -max(item[1].values())))
    for role, values in ordered:
        start, middle, end = _at(values, 0), _at(values, half), _at(values, steps)
        first = min((s for s in values if s >= 1), default=min(values))
        last = max(values)
        growth = 100 * (values[last] - values[first]) / (last - first) if last > first else float("nan")
        lines.append(f"{role:<32}{start:>9.0f}{middle:>11.0f}{end:>11.0f}{growth:>12.1f}"
                     f"{slope_per_100(values, half):>22.1f}")  # fmt: skip
    lines.append("-" * len(head))
    return "\n".join(lines)


def plot(series: dict[str, dict[int, float]], path: Path) -> None:
    """Median RSS per step, one line per role."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 5))
    for role, values in sorted(series.items(), key=lambda item: -max(item[1].values())):
        if role == "all":
            continue
        axis.plot(list(values), list(values.values()), label=role, marker=".", markersize=3)
    axis.set_xlabel("steps finished")
    axis.set_ylabel("RSS (MiB, summed over the role's processes)")
    axis.set_title("video_search GRPO soak: memory per process role")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def zoom_summary(metrics: Path) -> str:
    """The zoom metrics averaged over the run's steps (windows really decoded when used > 0)."""
    steps = [json.loads(line)["data"] for line in metrics.read_text().splitlines() if line.strip()]
    keys = ("zoom/calls", "zoom/used", "zoom/invalid_calls", "zoom/visual_tokens")
    means = {k: statistics.fmean(s[k] for s in steps if k in s) for k in keys if any(k in s for s in steps)}
    served = sum(1 for s in steps if s.get("zoom/used", 0) > 0)
    parts = ", ".join(f"{k} {v:.3g}" for k, v in means.items())
    return f"zoom metrics, mean over {len(steps)} steps: {parts}; steps with a served window: {served}"


def prepare(out: Path, videos: int) -> Path:
    """Long videos (OUT/data_N), the tiny Qwen3-VL and its loop warm start under OUT (kept across reruns); the
    data folder."""
    if not (out / "tiny").is_dir():
        _cli("make-tiny-model", str(out / "tiny"), "--family", "qwen3_vl")
    data = out / f"data_{videos}"
    # make-demo-data keeps an identical dataset (its manifest) instead of regenerating it.
    _cli("make-demo-data", str(data), "--long", "--num-train", str(videos), "--num-val", "2")
    if not (out / "warm").is_dir():
        # The first videos of every size are the same (one random stream per video index).
        _cli(
            "warm-start", str(out / "tiny"), str(data / "train.yaml"), str(out / "warm"), "--trainer", "loop",
            "--steps", str(WARM_STEPS), "--batch-size", "4", "--max-samples", str(WARM_VIDEOS),
            "--set", "experiment=tiny_tvg_search_cpu",
        )  # fmt: skip
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working and output folder (reused when rerun)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--videos", type=int, default=400, help="long training videos (>= steps x batch size)")
    # 2 prompts (4 trajectories) stopped at step 15 of the first try: when every sample of a step has the same
    # length (the same prompt length, all responses cut at max_response_length), TransferQueue packs the 3-D
    # position_ids as a nested tensor ragged on the wrong dimension and verl's actor update fails to split it.
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per step (each rolled out twice)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before the run is killed")
    parser.add_argument("overrides", nargs="*", help="more trainer overrides, e.g. data.video.memory_cache_mb=64")
    args = parser.parse_args()
    if args.videos < args.steps * args.batch_size:
        parser.error(f"--videos {args.videos} < --steps x --batch-size: later steps would see videos again")
    os.nice(10)  # the trainer and its Ray processes inherit it
    args.out.mkdir(parents=True, exist_ok=True)
    data = prepare(args.out, args.videos)
    # The e2e's `_train` reads OUT/data.
    link = args.out / "data"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(data.name)
    run = args.out / "run"
    if run.exists():
        raise SystemExit(f"{run} exists (an earlier soak): remove it to run again")
    run.mkdir()
    sampler = Sampler(run / "metrics.jsonl", args.interval)
    with sampler:
        result = _train(
            args.out, "run",
            f"data.train_batch_size={args.batch_size}", f"actor_rollout_ref.rollout.n={ROLLOUTS}",
            f"actor_rollout_ref.actor.ppo_mini_batch_size={args.batch_size}",
            *(f"actor_rollout_ref.{key}={args.batch_size * ROLLOUTS}" for key in MICRO_BATCHES),
            f"actor_rollout_ref.rollout.temperature={TEMPERATURE}",
            f"actor_rollout_ref.actor.optim.lr={LEARNING_RATE}", "trainer.save_freq=-1", "trainer.total_epochs=1",
            *args.overrides, steps=args.steps, timeout=args.timeout, experiment="tiny_tvg_search_cpu",
            # Ray's own memory monitor would kill workers on this shared machine instead of letting us watch.
            env={"RAY_memory_monitor_refresh_ms": "0"},
        )  # fmt: skip
    with open(args.out / "memory.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["seconds", "step", "pid", "role", "rss_mib", "uss_mib"])
        writer.writeheader()
        writer.writerows(sampler.rows)
    steps = sampler.steps_done()
    sample_s = statistics.fmean(sampler.seconds_per_sample or [0])
    print(f"run: exit code {result['code']}, {steps} steps in {result['seconds']:.0f} s, "
          f"{len(sampler.seconds_per_sample)} samples every {args.interval:g} s (a sample took {sample_s:.2f} s), "
          f"log {result['log']}")  # fmt: skip
    if not sampler.rows:
        raise SystemExit("no memory sample taken")
    # Samples after the last step (validation, shutdown: processes leaving) stay in the CSV and the plot only.
    training = [row for row in sampler.rows if row["step"] < steps] or sampler.rows
    for key, label in (("rss_mib", "RSS"), ("uss_mib", "USS")):
        print(f"\n{label} (MiB) per role, {args.batch_size} prompts x {ROLLOUTS} rollouts a step, new videos each step"
              f" (samples up to step {steps - 1}; `all`: every process summed):")
        print(table(per_step(training, key), steps - 1))
    print("\n" + zoom_summary(run / "metrics.jsonl"))
    plot(per_step(sampler.rows), args.out / "memory.png")
    print(f"wrote {args.out / 'memory.csv'} and {args.out / 'memory.png'}")
    if result["code"] != 0:
        raise SystemExit(f"the run failed (exit code {result['code']}): see {result['log']}")


if __name__ == "__main__":
    main()
