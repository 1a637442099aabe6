"""Throughput of the default TVG reward on realistic 1-2 KB responses (a script, not a test).

    python benchmarks/bench_rewards.py [--n 20000] [--preset default]

Prints responses per second, one process, for the full per-row path the `tvg` reward manager runs
(composite + parse status + diagnostics), and for the parser alone. Target: >= 20,000 a second.
"""

from __future__ import annotations

import argparse
import random
import time

from verl_video.rewards import RewardScorer, parse_interval

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


def main() -> None:
    """Run the benchmark and print responses per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = make_responses(args.n)
    sizes = sorted(len(text.encode()) for text, _ in rows)
    print(f"{len(rows)} responses, median {sizes[len(sizes) // 2]} bytes (p10 {sizes[len(sizes) // 10]}, "
          f"p90 {sizes[9 * len(sizes) // 10]})")
    scorer = RewardScorer(preset=args.preset)
    extra = {"task": "tvg", "prompt_template": "think"}
    for label, fn in (
        (f"tvg reward, preset {args.preset!r} (full row path)", lambda t, g: scorer("bench", t, g, extra)),
        ("parse_interval alone", lambda t, g: parse_interval(t, g["duration"])),
    ):
        wall = cpu = 0.0
        for _ in range(args.repeats):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            for text, gt in rows:
                fn(text, gt)
            wall = max(wall, len(rows) / (time.perf_counter() - start_wall))
            cpu = max(cpu, len(rows) / max(1e-9, time.process_time() - start_cpu))
        # On a shared machine wall-clock time includes waiting for a core; CPU time does not.
        print(f"{label}: {wall:,.0f} responses/s wall clock, {cpu:,.0f} per CPU-second (best of {args.repeats})")


if __name__ == "__main__":
    main()
