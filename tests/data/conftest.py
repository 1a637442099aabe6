"""Fixtures of the data-path tests: tiny generated videos and a tiny Qwen2.5-VL processor (no weights)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from synthetic_video import write_video


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Short generated videos: 10 s at 30 fps, 70 s variable rate (10 s at 30 fps, then 5 fps), 4 s webm,
    and a 6 s webm streamed as a browser records it (no duration in its header)."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "short": write_video(folder / "short.mp4", [(10, 30)]),
        "vfr": write_video(folder / "vfr.mp4", [(10, 30), (60, 5)]),
        "webm": write_video(folder / "clip.webm", [(4, 10)], size=(64, 96), codec="libvpx-vp9"),
        "no_duration": write_video(folder / "recorded.webm", [(6, 10)], size=(64, 96), codec="libvpx", streamed=True),
    }


@pytest.fixture(scope="session")
def tiny_processor():
    """The project's tiny Qwen2.5-VL processor with get_rope_index bound the way verl binds it."""
    from transformers import Qwen2_5_VLModel

    from verl_video.tools.tiny_model import build_config, build_processor, build_tokenizer

    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer)
    processor.config = build_config(tokenizer)
    processor.get_rope_index = types.MethodType(Qwen2_5_VLModel.get_rope_index, processor)
    processor.get_vision_position_ids = types.MethodType(Qwen2_5_VLModel.get_vision_position_ids, processor)
    return processor


@pytest.fixture(scope="session")
def tiny_qwen3_processor():
    """The project's tiny Qwen3-VL processor (no weights): it writes `<t seconds>` before each frame group."""
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    return build_processor(build_tokenizer(), "qwen3_vl")
