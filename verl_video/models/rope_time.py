"""Make verl's M-RoPE positions honour the video sampling rate (families whose time encoding is
`mrope_seconds`, i.e. Qwen2.5-VL; verl 0.9.1, transformers 5.9).

verl's agent loop computes position ids with `processor.get_rope_index(input_ids, attention_mask,
image_grid_thw, video_grid_thw, mm_token_type_ids)` and adds only what an optional
`processor.get_rope_index_kwargs(multi_modal_inputs)` returns. Without that hook `second_per_grid_ts`
never reaches get_rope_index, which then assumes 1 s per temporal grid (2 fps) for every video: a
video sampled at 1 fps would be told its frames are twice as close as they are, and training positions
would disagree with vLLM's. Installing the hook on the processor class fixes every instance in the
process; the verl plugin installs it in every verl process (`verl_adapter/patches/transformers_qwen_processor.py`).
Qwen3-VL tells time in the prompt text instead (`<t seconds>` from the video metadata): nothing to hook.
"""

from __future__ import annotations

from typing import Any

import torch

from verl_video.models.family import FAMILIES, MROPE_SECONDS


def rope_index_kwargs(multi_modal_inputs: dict[str, Any]) -> dict[str, Any]:
    """get_rope_index's `second_per_grid_ts` taken from the processor outputs (integers for 2/k fps)."""
    seconds = multi_modal_inputs.get("second_per_grid_ts")
    if seconds is None:
        return {}
    # 2/k fps gives k seconds per grid; rounding guards transformers' int() truncation against float noise.
    return {"second_per_grid_ts": torch.round(torch.as_tensor(seconds, dtype=torch.float64))}


def install_rope_time_hook() -> bool:
    """Attach `get_rope_index_kwargs` to the processor class of every `mrope_seconds` family; True when all were."""
    import transformers

    installed = True
    for family in FAMILIES.values():
        if family.time_encoding != MROPE_SECONDS:
            continue
        processor_class = getattr(transformers, family.processor_class, None)
        if processor_class is None:
            installed = False
        elif getattr(processor_class, "get_rope_index_kwargs", None) is None:
            processor_class.get_rope_index_kwargs = staticmethod(rope_index_kwargs)
    return installed
