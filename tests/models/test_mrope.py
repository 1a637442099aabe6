"""Qwen-VL M-RoPE positions by the released checkpoints' rule (verl_video/models/mrope.py).

The rule: text after an image or video resumes at 1 + the block's largest position on any axis. Checked
on explicit token sequences for the tiny Qwen2.5-VL config (tokens_per_second 2, 2x2 spatial merge);
vLLM's own positions for a real prompt are compared in tests/data/test_video_mrope.py.
"""

from __future__ import annotations

import types

import pytest
import torch
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

from verl_video.models.mrope import TRANSFORMERS_RULES, install_released_mrope_rule, released_rope_index
from verl_video.tools.tiny_model import build_config, build_tokenizer

install_released_mrope_rule()  # as the verl plugin does; keeps transformers' own function for comparison
TRANSFORMERS_RULE = TRANSFORMERS_RULES["Qwen2_5_VLModel"]


@pytest.fixture(scope="module")
def owner():
    """What verl binds get_rope_index to: an object with the model config (and transformers' helper)."""
    owner = types.SimpleNamespace(config=build_config(build_tokenizer()))
    owner.get_vision_position_ids = types.MethodType(Qwen2_5_VLModel.get_vision_position_ids, owner)
    return owner


def _sequence(config, parts: list) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and token types for [("text", n) | ("video"/"image", (t, h, w))...], grids before merging."""
    ids, kinds = [], []
    for kind, size in parts:
        if kind == "text":
            ids += [0] * size
            kinds += [0] * size
        else:
            t, h, w = size
            token = config.video_token_id if kind == "video" else config.image_token_id
            ids += [token] * (t * h * w // 4)
            kinds += [2 if kind == "video" else 1] * (t * h * w // 4)
    return torch.tensor([ids]), torch.tensor([kinds])


def _both_rules(owner, parts, second_per_grid=None, attention_mask=None):
    input_ids, kinds = _sequence(owner.config, parts)
    videos = [size for kind, size in parts if kind == "video"]
    images = [size for kind, size in parts if kind == "image"]
    kwargs = {
        "mm_token_type_ids": kinds,
        "video_grid_thw": torch.tensor(videos) if videos else None,
        "image_grid_thw": torch.tensor(images) if images else None,
        "second_per_grid_ts": second_per_grid,
        "attention_mask": attention_mask,
    }
    theirs = TRANSFORMERS_RULE(owner, input_ids, **kwargs)
    ours = released_rope_index(owner, input_ids, **kwargs)
    return ours, theirs


def test_text_after_a_video_resumes_after_its_last_time(owner):
    # 10 temporal grids at 1 s each, 2 position steps a second: times 0..18, a 4x4 merged frame.
    parts = [("text", 5), ("video", (10, 8, 8)), ("text", 7)]
    (ours, delta), (theirs, _) = _both_rules(owner, parts, second_per_grid=torch.tensor([1.0]))
    video = slice(5, 5 + 160)
    assert ours[0, 0, video].max() == 5 + 18 and ours[1, 0, video].max() == 5 + 3
    after = ours[:, 0, 165:]
    assert (after == torch.arange(5 + 19, 5 + 19 + 7)).all()
    assert int(delta) == (5 + 19 + 7) - (5 + 160 + 7)
    # The video's own positions and the text before it are transformers' (the rules differ only after it).
    assert torch.equal(ours[:, :, :165], theirs[:, :, :165])
    assert (theirs[:, 0, 165] == 5 + 4).all()


def test_the_rules_agree_on_images_and_on_videos_no_longer_in_time_than_in_space(owner):
    for parts, seconds in (
        ([("text", 3), ("image", (1, 8, 12)), ("text", 4)], None),
        ([("text", 3), ("video", (2, 8, 8)), ("text", 4), ("image", (1, 4, 4)), ("text", 2)], torch.tensor([1.0])),
    ):
        (ours, our_delta), (theirs, their_delta) = _both_rules(owner, parts, second_per_grid=seconds)
        assert torch.equal(ours, theirs) and torch.equal(our_delta, their_delta)


def test_padding_and_the_seconds_of_each_video(owner):
    # Left padding (as in batched generation) is skipped; each video gets its own seconds per grid.
    parts = [("text", 4), ("video", (3, 4, 4)), ("text", 2), ("video", (3, 4, 4)), ("text", 1)]
    mask = torch.tensor([[0, 0] + [1] * 2 + [1] * 12 + [1] * 2 + [1] * 12 + [1]])
    input_ids, kinds = _sequence(owner.config, parts)
    input_ids = torch.cat([torch.zeros(1, 2, dtype=torch.long), input_ids[:, 2:]], dim=1)
    ours, _ = released_rope_index(
        owner, input_ids, mm_token_type_ids=kinds, video_grid_thw=torch.tensor([[3, 4, 4], [3, 4, 4]]),
        second_per_grid_ts=torch.tensor([1.0, 2.0]), attention_mask=mask,
    )
    assert (ours[:, 0, :2] == 0).all()
    first = ours[0, 0, 4:16:4]  # one per temporal grid
    assert (first - first[0]).tolist() == [0, 2, 4]
    second_start = 16 + 2
    second = ours[0, 0, second_start : second_start + 12 : 4]
    assert (second - second[0]).tolist() == [0, 4, 8]
    assert ours[0, 0, 16] == ours[0, 0, 4] + 4 + 1  # text after the first video: its last time + 1


def test_a_grid_that_does_not_match_its_placeholders_is_refused(owner):
    input_ids, kinds = _sequence(owner.config, [("text", 2), ("video", (2, 8, 8)), ("text", 1)])
    with pytest.raises(ValueError, match="does not match its grid"):
        released_rope_index(owner, input_ids, mm_token_type_ids=kinds, video_grid_thw=torch.tensor([[3, 8, 8]]))


def test_importing_verl_installs_it_on_the_classes_verl_binds():
    # verl imports our plugin (entry point verl.plugins), which installs the rule, before any processor is loaded.
    import subprocess
    import sys

    check = (
        "import verl\n"
        "from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel\n"
        "from verl.utils.tokenizer import hf_processor\n"
        "from verl_video.models.mrope import released_rope_index as rule\n"
        "assert Qwen2_5_VLModel.get_rope_index is rule and Qwen2VLModel.get_rope_index is rule\n"
    )
    check = "from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel\n" + check
    subprocess.run([sys.executable, "-c", check], check=True)
