"""Model families: an unsupported model is refused at start-up, and each family's processor gets exactly the
frames and token count our planner computes from the geometry read off that processor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from verl_video.video.sampling_plan import plan_sampling
from verl_video.video.settings import VideoBudget
from verl_video.models.family import FAMILIES, UnsupportedModelError, require_family, video_geometry, video_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))


def _model_dir(tmp_path: Path, model_type: str) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return tmp_path


def test_unknown_family_is_refused_naming_it_and_the_supported_ones(tmp_path):
    with pytest.raises(UnsupportedModelError) as error:
        require_family(_model_dir(tmp_path, "llava_onevision"))
    message = str(error.value)
    assert "llava_onevision" in message and str(tmp_path / "config.json") in message
    assert all(name in message for name in FAMILIES)


def test_training_stops_at_start_up_for_an_unknown_family(tmp_path):
    from verl_video.verl_adapter.driver import ConfigError, check_model_family

    config = OmegaConf.create({"actor_rollout_ref": {"model": {"path": str(_model_dir(tmp_path, "gemma3"))}}})
    with pytest.raises(ConfigError, match="gemma3"):
        check_model_family(config)


def test_a_processor_of_another_family_is_refused():
    from transformers import AutoTokenizer  # noqa: F401  (any non-Qwen-VL object stands in)

    with pytest.raises(UnsupportedModelError, match="no supported model family"):
        video_geometry(object())


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_planned_frames_reach_the_model_unresized_with_the_planned_token_count(family):
    """The overlong-prompt filter's count (plan) equals the processor's, and the processor resizes nothing."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    from verl_video.video.decode import video_metadata
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    processor = build_processor(build_tokenizer(), family)
    geometry = video_geometry(processor)
    token, token_id = video_token(processor)
    for duration, height, width in ((9.0, 360, 480), (61.0, 720, 1280), (3.0, 100, 90)):
        # min_pixels at or above every tiny processor's floor (4 tokens a frame), as warn_if_processor_resizes asks.
        budget = VideoBudget(total_pixels=64 * 64 * 40, max_pixels=160 * 160, min_pixels=64 * 64)
        plan = plan_sampling(duration, height, width, budget, geometry=geometry)
        frames = torch.zeros((plan.num_frames, 3, plan.height, plan.width), dtype=torch.uint8)
        messages = [{"role": "user", "content": [{"type": "video", "video": "v.mp4"}, {"type": "text", "text": "?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = build_multimodal_processor_inputs(processor, text=[text], videos=[(frames, video_metadata(plan, "x"))])
        grid = inputs["video_grid_thw"][0].tolist()
        side = geometry.patch_size
        assert grid == [plan.num_frames // geometry.temporal_patch_size, plan.height // side, plan.width // side]
        assert int((inputs["input_ids"][0] == token_id).sum()) == plan.num_video_tokens, (family, duration)
        assert token in processor.tokenizer.convert_ids_to_tokens([token_id])
