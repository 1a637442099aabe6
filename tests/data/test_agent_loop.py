"""A video that fails to decode after start-up: its trajectories leave training and are counted."""

from __future__ import annotations

import os

import torch
from hydra import compose, initialize_config_dir
from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, _agent_loop_registry

from verl_video.verl_adapter.agent_loop import (
    AGENT_LOOP_NAME,
    DECODE_FAILED_FIELD,
    VideoSingleTurnAgentLoop,
    mask_placeholder_videos,
    with_video_metadata,
)
from verl_video.verl_adapter.rl_dataset import placeholder_video
from verl_video.video.settings import VideoBudget
from verl_video.video.decode import video_metadata
from verl_video.verl_adapter.driver import CONFIG_DIR


def _output(video) -> AgentLoopOutput:
    return AgentLoopOutput(
        prompt_ids=[1, 2, 3], response_ids=[4, 5, 6], response_mask=[1, 1, 1],
        multi_modal_data={"videos": [video]}, num_turns=2, metrics={},
    )  # fmt: skip


def test_a_placeholder_video_masks_the_response_out_of_training():
    failed = _output(placeholder_video(VideoBudget()).as_processor_input())
    assert mask_placeholder_videos(failed)
    # verl's GRPO multiplies the advantage by this mask, and its loss_mask is this mask.
    assert failed.response_mask == [0, 0, 0] and failed.extra_fields[DECODE_FAILED_FIELD] == 1


def test_a_decoded_video_trains_normally():
    decoded = placeholder_video(VideoBudget())
    frames = torch.full_like(decoded.frames, 7)
    good = _output((frames, video_metadata(decoded.plan, "decord")))
    assert not mask_placeholder_videos(good)
    assert good.response_mask == [1, 1, 1] and DECODE_FAILED_FIELD not in good.extra_fields


def test_the_rollout_server_gets_each_videos_metadata():
    decoded = placeholder_video(VideoBudget().with_overrides({"fps": 1.0}))
    video = (decoded.frames, video_metadata(decoded.plan, "decord"))
    kwargs = with_video_metadata({"do_sample_frames": False}, [video])
    assert kwargs == {"do_sample_frames": False, "video_metadata": [video[1]]}
    assert kwargs["video_metadata"][0]["fps"] == 1.0
    # Nothing to add without videos, or when a video came without metadata (frames only).
    assert with_video_metadata({}, None) == {} and with_video_metadata({}, [decoded.frames]) == {}
    # The loop keeps the videos it extracted and adds their metadata to verl's kwargs for the server.
    loop = object.__new__(VideoSingleTurnAgentLoop)  # no server or tokenizer needed for this part
    loop.mm_processor_kwargs, loop.processor, loop._videos = {"max_pixels": 12544}, None, [video]
    sent = loop._get_mm_processor_kwargs()
    assert sent == {"max_pixels": 12544, "video_metadata": [video[1]]}


def test_metadata_goes_into_the_kwargs_only_for_the_families_whose_vllm_drops_it(tiny_processor, tiny_qwen3_processor):
    decoded = placeholder_video(VideoBudget())
    video = (decoded.frames, video_metadata(decoded.plan, "decord"))
    loop = object.__new__(VideoSingleTurnAgentLoop)
    loop.mm_processor_kwargs, loop._videos = {}, [video]
    loop.processor = tiny_processor  # Qwen2.5-VL: vLLM would assume 24 fps without it
    assert loop._get_mm_processor_kwargs() == {"video_metadata": [video[1]]}
    loop.processor = tiny_qwen3_processor  # Qwen3-VL: vLLM reads the pair's metadata; a copy breaks its processor
    assert loop._get_mm_processor_kwargs() == {}


def test_our_agent_loop_is_registered_and_selected():
    assert AGENT_LOOP_NAME in _agent_loop_registry
    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="video_grpo")
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == AGENT_LOOP_NAME
