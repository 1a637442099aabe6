"""`verl-video export CHECKPOINT OUT`: a verl checkpoint as a Hugging Face model folder (transformers, vLLM).

The checkpoint is merged once with verl's model merger (cached in `actor/huggingface_merged`, see
evaluation/checkpoint.py), then copied to OUT with its config, tokenizer, processor and chat template.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil

from verl_video.evaluation.checkpoint import resolve_model

# What a folder needs so that transformers' AutoProcessor and vLLM serve it with the training chat format.
REQUIRED = ("config.json", "tokenizer_config.json", "processor_config.json")


def missing_files(folder: str) -> list[str]:
    """What of REQUIRED, the weights and a chat template `folder` lacks."""
    missing = [name for name in REQUIRED if not os.path.isfile(os.path.join(folder, name))]
    if not glob.glob(os.path.join(folder, "*.safetensors")):
        missing.append("*.safetensors")
    has_template = os.path.isfile(os.path.join(folder, "chat_template.jinja")) or os.path.isfile(
        os.path.join(folder, "chat_template.json"))
    if not has_template:
        missing.append("chat_template.jinja")
    return missing


def export(checkpoint: str, out: str, overwrite: bool = False) -> str:
    """Copy the merged model of `checkpoint` (global_step_N or its actor/) to `out`; returns `out`."""
    merged = resolve_model(checkpoint)
    missing = missing_files(merged)
    if missing:
        raise ValueError(f"{merged}: merged model lacks {', '.join(missing)}")
    if os.path.exists(out):
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
        shutil.rmtree(out)
    shutil.copytree(merged, out)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video export`."""
    parser.add_argument("checkpoint", help="verl checkpoint: runs/x/checkpoints/global_step_N (or its actor/)")
    parser.add_argument("out", help="folder to write the Hugging Face model to")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    """Entry point of `verl-video export`."""
    try:
        out = export(args.checkpoint, args.out, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        print(f"verl-video export: {exc}")
        return 2
    print(f"verl-video export: Hugging Face model in {out}")
    return 0
