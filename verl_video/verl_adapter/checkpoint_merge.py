"""Merge a verl FSDP checkpoint into a Hugging Face model folder with verl's own model merger."""

from __future__ import annotations

import os
import shutil
import time


def merge_checkpoint(actor: str, target: str) -> str:
    """Merge the FSDP shards in `actor` into a Hugging Face folder `target` with verl's model merger."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    # Written aside and renamed when complete: an interrupted merge never looks like a merged model.
    partial = f"{target}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    print(f"verl-video: merging {actor} into {target} (verl.model_merger, once)")
    config = ModelMergerConfig(
        operation="merge", backend="fsdp", local_dir=actor, target_dir=partial,
        hf_model_config_path=os.path.join(actor, "huggingface"),
    )  # fmt: skip
    try:
        FSDPModelMerger(config).merge_and_save()
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(
            f"{actor}: merging the verl checkpoint failed ({type(exc).__name__}: {exc}); to run it by hand:\n"
            f"  python -m verl.model_merger merge --backend fsdp --local_dir {actor} --target_dir {target}"
        ) from exc
    os.replace(partial, target)
    print(f"verl-video: merged in {time.perf_counter() - start:.1f} s")
    return target
