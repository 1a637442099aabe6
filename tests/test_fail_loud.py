"""Fail loud: settings that decide what trains are never assumed, and the data the token budget drops is reported.

The engine's side (no vision settings -> the run stops; the per-rank freeze line) is in
tests/models/test_vision_freeze.py; here: the SFT command's explicit settings and the overlong-prompt report.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from verl_video.pipeline.issues import NoUsableData
from verl_video.models.vision_tower import VisionSettings
from verl_video.video.decode import plan_for_file
from verl_video.verl_adapter.driver import CONFIG_DIR

sys.path.insert(0, str(Path(__file__).parent / "data"))
from synthetic_video import write_video  # noqa: E402

FRAMES = 768


# ---- SFT: the vision settings come from its config, stated there --------------------------------------------


def _sft_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose("sft", list(overrides))


def test_the_sft_config_states_that_the_cold_start_trains_the_whole_model():
    assert VisionSettings.from_sft_config(_sft_config()) == VisionSettings(freeze_encoder=False)
    frozen = VisionSettings.from_sft_config(_sft_config("vision.freeze_vision_tower=true"))
    assert frozen.freeze_encoder and not frozen.freeze_projector


def test_an_sft_config_without_the_switch_is_refused():
    config = _sft_config()
    OmegaConf.set_struct(config, False)
    del config.vision["freeze_vision_tower"]
    with pytest.raises(ValueError, match="vision.freeze_vision_tower"):
        VisionSettings.from_sft_config(config)


# ---- the overlong-prompt filter's report, with a long video for Qwen3-VL -------------------------------------


@pytest.fixture(scope="module")
def long_video_config(tmp_path_factory) -> Path:
    """A data_config of one record over a 385 s video at 2 fps: sampled at 2 fps, 768 frames."""
    folder = tmp_path_factory.mktemp("long_video")
    video = write_video(folder / "long.mp4", [(385, 2)], size=(64, 64))
    record = {"id": "long", "video": video.name, "query": "the end", "timestamps": [[380.0, 384.0]], "duration": 385.0}
    (folder / "train.jsonl").write_text(json.dumps(record) + "\n")
    entry = {"name": "long_videos", "json_path": "train.jsonl", "data_folder": str(folder)}
    (folder / "train.yaml").write_text(yaml.safe_dump({"datasets": [entry]}))
    return folder / "train.yaml"


@pytest.fixture(scope="module")
def qwen3_processor():
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    return build_processor(build_tokenizer(), "qwen3_vl")


def _dataset(data_config: Path, processor, max_prompt_length: int):
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset

    config = OmegaConf.create(
        {"max_prompt_length": max_prompt_length, "filter_overlong_prompts": True,
         "video": {"fps": 2.0, "max_frames": FRAMES, "min_pixels": 4096, "max_pixels": 4096,
                   "total_pixels": 4096 * FRAMES}}
    )  # fmt: skip
    return VideoRLDataset(str(data_config), processor.tokenizer, config, processor)


@pytest.mark.parametrize("over_budget", [True, False])
def test_the_filter_reports_what_the_budget_drops(long_video_config, qwen3_processor, caplog, over_budget):
    probe = _dataset(long_video_config, qwen3_processor, 10**9)
    (item,) = probe.dataframe.items
    # Counted from the file's header, as the filter counts: no frame is decoded.
    request = item.video
    plan = plan_for_file(request.path, request.budget, request.video_start, request.video_end, request.geometry)
    assert plan.num_frames == FRAMES
    tokens = probe.estimate_prompt_length(item)
    assert tokens > plan.num_video_tokens  # the frames' tokens, per-group timestamps and the question
    budget = tokens - 1 if over_budget else tokens
    with caplog.at_level(logging.INFO, logger="verl_video.data"):
        if over_budget:
            # Its one record dropped, the set is empty: start-up stops with the reason counted (after the report).
            with pytest.raises(NoUsableData, match=f"1  prompt longer than data.max_prompt_length={budget}"):
                _dataset(long_video_config, qwen3_processor, budget)
        else:
            dataset = _dataset(long_video_config, qwen3_processor, budget)
    report = [(r.levelno, r.getMessage()) for r in caplog.records if "prompt-length filter" in r.getMessage()]
    if over_budget:
        assert report == [(logging.WARNING, (
            f"verl-video data: long_videos: 1 of 1 records dropped by the prompt-length filter "
            f"(longest {tokens} tokens > data.max_prompt_length={budget})"
        ))]  # fmt: skip
    else:
        assert len(dataset) == 1
        assert report == [(logging.INFO, (
            f"verl-video data: long_videos: 0 of 1 records dropped by the prompt-length filter "
            f"(data.max_prompt_length={budget})"
        ))]  # fmt: skip
