"""Vision feature reuse: the actor's log-prob and update passes over n rollouts per video, with and without it.

    python benchmarks/bench_vision_reuse.py --model runs/tiny_tvg_cpu/tiny_model       # the tiny model
    python benchmarks/bench_vision_reuse.py --realistic                                 # 3B vision tower

One step as GRPO runs it in a trainer process: a log-prob pass (no grad) over the batch in micro-batches,
then an update pass (forward + backward per micro-batch, AdamW step per mini-batch) over the rows in a
shuffled order, with the encoder frozen and the projector trained (the defaults). `--realistic` builds a
random-weight model with Qwen2.5-VL-3B's vision tower (depth 32, width 1280) and a 2-layer 3B-width language
model, so the encoder is a realistic share of the cost. Each setting runs in its own process (clean peak
memory) and prints seconds per step, encoder passes per unique video, and the step's peak memory (CUDA:
max allocated; CPU: resident set sampled every 10 ms, above its level before the step). Target: reuse
>= 1.5x faster on the realistic configuration, encoder passes per video 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import torch

from verl_video.models import vision_cache
from verl_video.models.vision_tower import VisionSettings, apply_freeze, trainable_parameters
from verl_video.tools.vl_batches import micro_batches, token_log_probs, video_rows

# Qwen2.5-VL-3B-Instruct's vision_config.
VISION_3B = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048, patch_size=14,
    spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2,
)


def realistic_model_dir(out: str) -> str:
    """Save a random-weight model with the 3B vision tower and a shallow 3B-width language model under OUT."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from verl_video.tools.tiny_model import build_config, build_tokenizer, mrope_section

    tokenizer = build_tokenizer()
    base = build_config(tokenizer).to_dict()
    text = dict(base["text_config"], hidden_size=2048, intermediate_size=11008, num_hidden_layers=2,
                num_attention_heads=16, num_key_value_heads=2)
    text["rope_parameters"] = dict(text["rope_parameters"], mrope_section=mrope_section(128))
    config = Qwen2_5_VLConfig(**{k: v for k, v in base.items() if k not in ("text_config", "vision_config")},
                              text_config=text, vision_config=VISION_3B)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    model.save_pretrained(out)
    return out


class PeakMemory:
    """Peak memory of this process during a block, above its level at the start."""

    def __init__(self):
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        process = psutil.Process()
        self._base = process.memory_info().rss

        def sample():
            while not self._done.wait(0.01):
                self.peak = max(self.peak, process.memory_info().rss - self._base)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() - self._base
        else:
            self._done.set()
            self._thread.join()


def run_setting(args) -> dict:
    """One setting (reuse on or off) in this process: build, run the steps, report."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).to(device)
    settings = VisionSettings(freeze_encoder=True, reuse_features=args.reuse)
    apply_freeze(model, settings)
    vision_cache.install_feature_reuse(model, reuse=args.reuse, projector_frozen=False, model_key=args.model)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-6)
    grids = [tuple(args.grid)] * args.videos
    rows = video_rows(model.config, grids, args.rollouts, response_len=args.response_len)
    shuffled = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
    mini_batch = len(rows) // args.mini_batches

    def to_device(batch):
        return {k: v.to(device) for k, v in batch.items()}

    times, report = [], {}
    for _ in range(args.steps):
        with PeakMemory() as memory:
            start = time.perf_counter()
            model.eval()
            with torch.no_grad():
                for batch in micro_batches(rows, list(range(len(rows))), args.micro_batch):
                    token_log_probs(model, to_device(batch))
            model.train()
            for first in range(0, len(rows), mini_batch):
                for batch in micro_batches(rows, shuffled[first : first + mini_batch], args.micro_batch):
                    token_log_probs(model, to_device(batch)).sum().backward()
                optimizer.step()
                optimizer.zero_grad()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        report = vision_cache.step_metrics()
        vision_cache.end_step()
    report.update(seconds=min(times), all_seconds=times, peak_mb=memory.peak / 2**20, reuse=args.reuse)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Qwen2.5-VL folder (e.g. from `verl-video make-tiny-model DIR`)")
    parser.add_argument("--realistic", action="store_true", help="random model with Qwen2.5-VL-3B's vision tower")
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--rollouts", type=int, default=8, help="rows per video (GRPO's n)")
    parser.add_argument("--grid", type=int, nargs=3, default=None, metavar=("T", "H", "W"),
                        help="video size in patches (default 8x16x16 tiny, 2x8x8 realistic: 4 frames of 112x112)")
    parser.add_argument("--response-len", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--mini-batches", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="steps per setting; the fastest is reported")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--reuse", type=int, choices=(0, 1), help=argparse.SUPPRESS)  # one setting, in a child
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.reuse is not None:
        args.reuse = bool(args.reuse)
        print(json.dumps(run_setting(args)))
        return
    if args.grid is None:
        args.grid = [2, 8, 8] if args.realistic else [8, 16, 16]
    with tempfile.TemporaryDirectory() as tmp:
        model = realistic_model_dir(tmp) if args.realistic else args.model
        if not model:
            parser.error("give --model DIR or --realistic")
        child = [a for a in sys.argv[1:] if a != "--realistic"] + ["--model", model, "--grid", *map(str, args.grid)]
        results = {}
        for reuse in (0, 1):
            out = subprocess.run([sys.executable, __file__, *child, "--reuse", str(reuse)], check=True,
                                 capture_output=True, text=True).stdout
            results[reuse] = json.loads(out.strip().splitlines()[-1])
    off, on = results[0], results[1]
    rows = args.videos * args.rollouts
    print(f"{'model':<10} {'realistic (3B vision tower)' if args.realistic else args.model}")
    print(f"{'batch':<10} {args.videos} videos x {args.rollouts} rollouts = {rows} rows, grid {args.grid}, "
          f"micro-batch {args.micro_batch}, {args.mini_batches} mini-batches, device "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"{'':<10} {'s/step':>8} {'encoder passes':>15} {'per video':>10} {'peak MiB':>9}")
    for name, r in (("no reuse", off), ("reuse", on)):
        print(f"{name:<10} {r['seconds']:>8.2f} {r['vision/encoder_passes']:>15.0f} "
              f"{r['vision/encoder_passes_per_video']:>10.2f} {r['peak_mb']:>9.0f}")
    print(f"speed-up  {off['seconds'] / on['seconds']:.2f}x  "
          f"(feature store peak {on['vision/feature_cache_peak_mb']:.1f} MiB)")


if __name__ == "__main__":
    main()
