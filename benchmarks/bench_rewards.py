"""Throughput of the rewards on realistic 1-2 KB responses, per task (a script, not a test).

    python benchmarks/bench_rewards.py [--n 20000] [--preset default] [--tasks tvg,mcq,grounded_qa,tracking]

Prints responses per second, one process, for the full per-row path the `video` reward manager runs
(composite + parse status + diagnostics) for grounding rows and for the rows of every other task (each
scored by its task's default preset), and for the interval parser alone. Target: >= 20,000 a second each.
"""

from __future__ import annotations

import argparse
import random
import time

from verl_video.annotations.records import DEFAULT_TASK, Record
from verl_video.rewards import RewardScorer, parse_interval
from verl_video.tasks import TASKS

_WORDS = ("the person opens the door and walks in then sits down near the table while holding a cup "
          "at around frame 12 the camera pans left and at 00:14 someone laughs between 3 and 5 seconds").split()


def make_responses(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """Rollout-like responses (think 1-2 KB + answer in the forms models write) with their ground truth."""
    rng = random.Random(seed)
    forms = ("{:.2f} to {:.2f}", "{:.1f} - {:.1f}", "{:.2f} and {:.2f}", '{{"start_time": {:.2f}, "end_time": {:.2f}}}',
             "from {:.1f} seconds to {:.1f} seconds", "[{:.2f}, {:.2f}]")
    rows = []
    for _ in range(n):
        duration = rng.uniform(20, 180)
        gs = rng.uniform(0, duration * 0.8)
        gt = {"timestamps": [[gs, min(duration, gs + rng.uniform(2, 20))]], "duration": duration}
        think = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(180, 360)))
        ps = max(0.0, gs + rng.gauss(0, 5))
        answer = rng.choice(forms).format(ps, ps + rng.uniform(1, 25))
        tail = rng.random()
        if tail < 0.8:
            text = f"<think>{think}</think>\n<answer>{answer}</answer>"
        elif tail < 0.9:
            text = f"<answer>{answer}</answer> {think}"
        else:
            text = think  # no answer block
        rows.append((text, gt))
    return rows


_OPTIONS = ["(A) a", "(B) b", "(C) c", "(D) d", "(E) e"]


def _task_record(rng: random.Random, i: int, task_name: str) -> Record:
    # Every field any built-in task reads; each task takes what it declares.
    start, x, y = rng.uniform(0, 60), rng.uniform(0, 0.6), rng.uniform(0, 0.6)
    boxes = [[x + j * 0.02, y, x + 0.3 + j * 0.02, y + 0.3] for j in range(8)]
    return Record(
        id=str(i), video="v.mp4", query="what happens", timestamps=[[start, start + rng.uniform(2, 20)]],
        duration=90.0, task=task_name, extra={"options": _OPTIONS, "answer": rng.choice("ABCDE"), "boxes": boxes},
    )  # fmt: skip


def _task_answer(rng: random.Random, truth: dict) -> str:
    # A rollout-like answer block for the row's answer kind, right or wrong at random.
    if truth["answer_kind"] == "boxes":
        boxes = [[round(min(1.0, max(0.0, v + rng.gauss(0, 0.05))), 3) for v in box] for box in truth["boxes"]]
        return f"<answer>{boxes[: len(boxes) - (rng.random() < 0.1)]}</answer>"  # 10% with a box missing
    answer = f"<answer>{rng.choice('ABCDE')}</answer>"
    if truth.get("evidence_tag"):
        start = rng.uniform(0, 60)
        answer += f"<{truth['evidence_tag']}>[({start:.1f}, {start + rng.uniform(2, 20):.1f})]</{truth['evidence_tag']}>"
    return answer


def make_task_rows(task_name: str, n: int, seed: int = 0) -> list[tuple[str, dict, dict]]:
    """(response, ground truth, extra_info) for `n` random records of a non-grounding task."""
    rng = random.Random(seed)
    task = TASKS[task_name]
    rows = []
    for i in range(n):
        truth = task.ground_truth(_task_record(rng, i, task_name), 90.0)
        think = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(180, 360)))
        text = f"<think>{think}</think>\n{_task_answer(rng, truth)}" if rng.random() < 0.9 else think
        rows.append((text, truth, {"task": task_name, "reward_preset": task.default_preset, "prompt_template": "think"}))
    return rows


def _rate(rows: list, fn, repeats: int) -> tuple[float, float]:
    wall = cpu = 0.0
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        for row in rows:
            fn(*row)
        wall = max(wall, len(rows) / (time.perf_counter() - start_wall))
        cpu = max(cpu, len(rows) / max(1e-9, time.process_time() - start_cpu))
    return wall, cpu


def main() -> None:
    """Run the benchmark and print responses per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks to time")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]

    rows = make_responses(args.n)
    sizes = sorted(len(text.encode()) for text, _ in rows)
    print(f"{len(rows)} responses, median {sizes[len(sizes) // 2]} bytes (p10 {sizes[len(sizes) // 10]}, "
          f"p90 {sizes[9 * len(sizes) // 10]})")
    scorer = RewardScorer(preset=args.preset)
    extra = {"task": DEFAULT_TASK, "prompt_template": "think"}
    timings = []
    if DEFAULT_TASK in tasks:
        timings.append((f"{DEFAULT_TASK} reward, preset {args.preset!r} (full row path)", rows, lambda t, g: scorer("bench", t, g, extra)))
        timings.append(("parse_interval alone", rows, lambda t, g: parse_interval(t, g["duration"])))
    for name in tasks:
        if name != DEFAULT_TASK:
            label = f"{name} reward, preset {TASKS[name].default_preset!r} (full row path)"
            timings.append((label, make_task_rows(name, args.n), lambda t, g, e: scorer("bench", t, g, e)))
    for label, task_rows, fn in timings:
        wall, cpu = _rate(task_rows, fn, args.repeats)
        # On a shared machine wall-clock time includes waiting for a core; CPU time does not.
        print(f"{label}: {wall:,.0f} responses/s wall clock, {cpu:,.0f} per CPU-second (best of {args.repeats})")


if __name__ == "__main__":
    main()
