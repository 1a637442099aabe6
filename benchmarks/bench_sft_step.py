"""Seconds per supervised step: verl's SFT trainer (our dataset class, CPU profile) beside the hand-written loop.

    python benchmarks/bench_sft_step.py --model TINY_MODEL --data DEMO/train.yaml [--steps 20 --batch-size 4]

Both train the same model on the same records with the same batch size, one after the other, on one torch
thread. The loop decodes every video before it starts timing; verl's trainer runs in its own process
(`warm-start --trainer verl`), whose dataset decodes in __getitem__ (each video once, then from its memory
cache), so its time includes decoding each record's video once. verl's time is its `fit` (including the
final Hugging Face save), the loop's its `train`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch


def main() -> None:
    """Run both trainers and print seconds per step and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    from verl_video.tools.warm_start import warm_start

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for trainer in ("loop", "verl"):
            summary = warm_start(args.model, args.data, Path(tmp) / trainer, steps=args.steps,
                                 batch_size=args.batch_size, trainer=trainer)
            results[trainer] = summary
            print(json.dumps({k: summary[k] for k in ("trainer", "steps", "batch_size", "samples", "first_loss",
                                                       "last_loss", "train_seconds", "seconds_per_step")}))
    ratio = results["verl"]["seconds_per_step"] / results["loop"]["seconds_per_step"]
    print(f"seconds per step: verl {results['verl']['seconds_per_step']:.3f}, "
          f"loop {results['loop']['seconds_per_step']:.3f} (verl / loop = {ratio:.2f})")


if __name__ == "__main__":
    main()
