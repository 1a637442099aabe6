"""Disk a GRPO checkpoint takes: measured on a run's global_step folder, computed for Qwen2.5-VL-3B/7B.

    python benchmarks/bench_checkpoint_size.py runs/tiny_tvg_cpu/checkpoints/global_step_30 [--metrics FILE]

What verl 0.9.1 saves per global_step (FSDP actor, no critic): `actor/model_world_size_W_rank_R.pt` (the
rank's shard of every parameter, in the actor's parameter dtype: fp32, the master weights, on CPU and GPU),
`actor/optim_*.pt` (AdamW's two fp32 moments per *trainable* parameter), `actor/extra_state_*.pt` (LR
scheduler and RNG states), `actor/huggingface/` (config, tokenizer, processor), `data.pt` (the dataloader's
position) and our `verl_video_state.json`. The script checks that formula on the measured folder (parameter
counts from the shards), then applies it to the 3B and 7B parameter counts (models built on the meta device
from their published configs, as in bench_optimizer_state.py). With --metrics (a run's metrics.jsonl) it
also prints the logged `timing_s/save_checkpoint` per saved step.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from bench_optimizer_state import CONFIGS, FROZEN, meta_model, trainable_count

from verl_video.models.vision_tower import apply_freeze

FP32 = 4
ADAM_MOMENTS = 2
GIB = 1024**3


def folder_bytes(folder: Path) -> dict[str, int]:
    """Bytes per kind of file in a global_step folder."""
    kinds: dict[str, int] = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        name = path.name
        kind = next((k for k in ("model_", "optim_", "extra_state_") if name.startswith(k)), None)
        kind = (kind.rstrip("_") if kind else "huggingface/" if "huggingface" in path.parts else name)
        kinds[kind] = kinds.get(kind, 0) + path.stat().st_size
    return kinds


def shard_counts(actor: Path) -> tuple[int, int]:
    """(parameters in the model shards, elements of AdamW's moments) of a verl actor checkpoint."""
    params = moments = 0
    for path in actor.glob("model_world_size_*_rank_*.pt"):
        for tensor in torch.load(path, map_location="cpu", weights_only=False).values():
            params += getattr(tensor, "_local_tensor", tensor).numel()
    for path in actor.glob("optim_world_size_*_rank_*.pt"):
        for state in torch.load(path, map_location="cpu", weights_only=False)["state"].values():
            moments += sum(getattr(t, "_local_tensor", t).numel() for k, t in state.items() if k != "step")
    return params, moments


def main() -> None:
    """Print the measured folder, the formula's prediction for it, and the 3B/7B figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("global_step", type=Path, help="a run's checkpoints/global_step_N folder")
    parser.add_argument("--metrics", type=Path, help="the run's metrics.jsonl, for the save times")
    args = parser.parse_args()

    kinds = folder_bytes(args.global_step)
    total = sum(kinds.values())
    print(f"{args.global_step}: {total / 1e6:.3f} MB")
    for kind, size in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:28s} {size:>12,d} B")
    params, moments = shard_counts(args.global_step / "actor")
    trainable = moments // ADAM_MOMENTS
    predicted = params * FP32 + trainable * ADAM_MOMENTS * FP32
    measured = kinds.get("model", 0) + kinds.get("optim", 0)
    print(f"  parameters {params:,d}, trainable {trainable:,d}: {params:,d} x 4 B + {trainable:,d} x 8 B = "
          f"{predicted:,d} B; model + optim files {measured:,d} B ({measured / predicted - 1:+.2%} pickle overhead)")
    small = total - measured
    print(f"  everything else (extra state, huggingface/, data.pt): {small:,d} B")

    print("\nper checkpoint, vision encoder frozen (default) / trained; fp32 weights + 2 fp32 AdamW moments:")
    for name, spec in CONFIGS.items():
        model = meta_model(spec)
        total_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        all_trainable = trainable_count(model)
        apply_freeze(model, FROZEN)
        frozen_trainable = trainable_count(model)
        for label, count in (("frozen", frozen_trainable), ("trained", all_trainable)):
            size = total_params * FP32 + count * ADAM_MOMENTS * FP32
            print(f"  {name} {label:7s}: {total_params / 1e9:.3f}B x 4 B + {count / 1e9:.3f}B x 8 B = "
                  f"{size / GIB:.1f} GiB")

    if args.metrics and args.metrics.is_file():
        for line in args.metrics.read_text().splitlines():
            record = json.loads(line)
            seconds = record["data"].get("timing_s/save_checkpoint")
            if seconds is not None:
                print(f"save_checkpoint at step {record['step']}: {seconds:.3f} s")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
