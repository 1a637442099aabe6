"""Patch: transformers' Qwen2.5-VL processor class gets verl's `get_rope_index_kwargs` hook.

What: sets `Qwen2_5_VLProcessor.get_rope_index_kwargs` (the processor class of every family whose time
encoding is `mrope_seconds`) to `verl_video.models.rope_time.rope_index_kwargs`.
Why: verl 0.9.1's agent loop passes `get_rope_index` only what this optional hook returns besides the grids;
without it `second_per_grid_ts` never arrives and every video is positioned as if sampled at 2 fps
(see models/rope_time.py). The hook is verl's protocol, set on transformers' class (either upgrade can break it).
Fails without it: tests/data/test_video_mrope.py::test_temporal_positions_are_frame_seconds.
"""

from __future__ import annotations

from verl_video.models.rope_time import install_rope_time_hook

TARGET = ("transformers", "5.9.0")
TEST = "tests/data/test_video_mrope.py::test_temporal_positions_are_frame_seconds"
PROCESSES = ("verl",)


def apply() -> bool:
    """Attach the hook to each `mrope_seconds` processor class; True when every such class exists."""
    return install_rope_time_hook()
