"""Find the Hugging Face model to evaluate: a model folder, or a verl checkpoint merged into one.

A sharded FSDP checkpoint (`global_step_N/actor/model_world_size_*_rank_*.pt`) is merged with verl's
own model merger once, into `global_step_N/actor/huggingface_merged/` (weights in bfloat16, as verl's
merger writes them, with the config, tokenizer, processor and chat template verl saved beside the shards);
later calls find the merged folder there.
"""

from __future__ import annotations

import glob
import os

from verl_video.verl_adapter.checkpoint_merge import merge_checkpoint

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")
# Where a merged model is looked for inside a verl actor checkpoint, in order.
MERGED_SUBDIRS = ("huggingface_merged", "merged_hf", "huggingface")


def _has_weights(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json")) and any(
        glob.glob(os.path.join(folder, pattern)) for pattern in WEIGHT_PATTERNS)


def _actor_dir(path: str) -> str | None:
    """The actor folder of a verl checkpoint (global_step_N or its actor/), or None."""
    for candidate in (path, os.path.join(path, "actor")):
        if glob.glob(os.path.join(candidate, "model_world_size_*_rank_*.pt")) or \
                os.path.isfile(os.path.join(candidate, "fsdp_config.json")):
            return candidate
    return None


def resolve_model(path: str) -> str:
    """A loadable HF model folder for `path`; a verl checkpoint is merged on first use."""
    if not os.path.exists(path):
        # A hub id: let transformers / vLLM resolve it.
        return path
    if _has_weights(path):
        return path
    actor = _actor_dir(path)
    if actor is None:
        raise ValueError(f"{path}: neither a Hugging Face model folder (config.json + weights) nor a verl checkpoint")
    for sub in MERGED_SUBDIRS:
        if _has_weights(os.path.join(actor, sub)):
            return os.path.join(actor, sub)
    return merge_checkpoint(actor, os.path.join(actor, MERGED_SUBDIRS[0]))
