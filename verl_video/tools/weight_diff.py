"""Compare two sets of model weights, part by part: did the vision encoder, the projector, the language model change?

Reads a Hugging Face model folder or a verl FSDP actor checkpoint saved by one process
(`global_step_N[/actor]/model_world_size_1_rank_0.pt`); names are normalised by loading through
transformers, so a warm-start folder and a training checkpoint compare key by key.

    verl-video weight-diff runs/tiny_tvg_cpu/warm_model runs/tiny_tvg_cpu/checkpoints/global_step_15
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from dataclasses import asdict, dataclass

import torch

from verl_video.models.vision_tower import TOWER_ATTR, is_projector_param

PARTS = ("vision_encoder", "vision_projector", "language_model")


@dataclass
class PartChange:
    """How one part of the model changed between two weight sets."""

    tensors: int = 0
    changed: int = 0
    max_abs_change: float = 0.0
    mean_abs_value: float = 0.0


def part_of(name: str) -> str:
    """Which part a parameter name belongs to."""
    head, sep, rest = name.partition(f"{TOWER_ATTR}.")
    if not sep:
        return "language_model"
    return "vision_projector" if is_projector_param(rest) else "vision_encoder"


def _full(tensor) -> torch.Tensor:
    return (tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor).detach().float().cpu()


def load_weights(path: str) -> dict[str, torch.Tensor]:
    """Full tensors by parameter name from an HF folder or a single-process verl actor checkpoint."""
    for actor in (path, os.path.join(path, "actor")):
        shards = sorted(glob.glob(os.path.join(actor, "model_world_size_*_rank_*.pt")))
        if shards:
            if len(shards) != 1:
                raise ValueError(
                    f"{actor}: {len(shards)} FSDP shards; merge them first "
                    f"(python -m verl.model_merger merge --backend fsdp --local_dir {actor} --target_dir OUT)"
                )
            state = torch.load(shards[0], map_location="cpu", weights_only=False)
            return {name: _full(value) for name, value in state.items()}
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(path)
    loader = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    model = loader.from_pretrained(path, dtype=torch.float32)
    return {name: _full(value) for name, value in model.state_dict().items()}


def compare(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, PartChange]:
    """Per part: tensors compared, how many changed at all, the largest absolute change, the mean magnitude."""
    missing = sorted(set(before) ^ set(after))
    if missing:
        raise ValueError(f"the two weight sets name different tensors, e.g. {missing[:3]}")
    parts = {part: PartChange() for part in PARTS}
    sums = {part: [0.0, 0] for part in PARTS}
    for name, old in before.items():
        new = after[name]
        change = parts[part_of(name)]
        change.tensors += 1
        delta = (new - old).abs().max().item() if old.numel() else 0.0
        change.changed += int(delta > 0)
        change.max_abs_change = max(change.max_abs_change, delta)
        sums[part_of(name)][0] += old.abs().sum().item()
        sums[part_of(name)][1] += old.numel()
    for part, (total, count) in sums.items():
        parts[part].mean_abs_value = total / count if count else 0.0
    return parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video weight-diff`."""
    parser.add_argument("before", help="HF model folder or verl checkpoint (global_step_N)")
    parser.add_argument("after", help="HF model folder or verl checkpoint (global_step_N)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print a table (or JSON) of what changed per part."""
    parts = compare(load_weights(args.before), load_weights(args.after))
    if args.json:
        print(json.dumps({part: asdict(change) for part, change in parts.items()}, indent=2))
        return 0
    print(f"{'part':<18} {'tensors':>8} {'changed':>8} {'max |change|':>13} {'mean |value|':>13}")
    for part, change in parts.items():
        print(f"{part:<18} {change.tensors:>8} {change.changed:>8} {change.max_abs_change:>13.3g} {change.mean_abs_value:>13.3g}")
    return 0
