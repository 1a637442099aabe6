"""A Qwen3-VL prompt's video spans, collapsed back to the placeholder a rollout server expands itself.

Qwen3-VL's processor replaces each video's `<|vision_start|><|video_pad|><|vision_end|>` by, per frame group,
`<t seconds><|vision_start|>` + the group's video tokens + `<|vision_end|>` (t from the video metadata). The
actor trains on those expanded ids. verl's vLLM server receives the same ids with the (frames, metadata)
pairs; it only squeezes each run of video tokens to one (made for Qwen2.5-VL, whose span is one run), and
vLLM's Qwen3-VL processor then expands the first group's triple into the whole video, leaving the other
groups' timestamps and delimiters behind as text: a longer, garbled prompt (measured on the tiny model: 401
ids instead of 325). Handing vLLM one triple per video instead lets it rebuild the span from the frames and
their metadata, timestamps included, as its text path does (`collapse_video_spans`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

# How Qwen3-VL's processor writes a frame group's time (one decimal).
TIMESTAMP = re.compile(r"<\d+(?:\.\d+)? seconds>")
# A timestamp is a few tokens; a search past this many tokens back from a group's start has missed it.
MAX_TIMESTAMP_TOKENS = 16


class VideoSpanError(ValueError):
    """Prompt ids whose video spans do not have the shape Qwen3-VL's processor gives them."""


def frame_groups(num_frames: int, temporal_patch_size: int) -> int:
    """Frame groups (one timestamp each) of a video of `num_frames` frames (the processor pads the last group)."""
    return math.ceil(num_frames / temporal_patch_size)


def _token_ids(processor: Any) -> tuple[int, int, int]:
    """Ids of the vision start, video and vision end tokens of a Qwen3-VL processor."""
    tokenizer = processor.tokenizer
    names = (processor.vision_start_token, processor.video_token, processor.vision_end_token)
    return tuple(int(tokenizer.convert_tokens_to_ids(name)) for name in names)  # type: ignore[return-value]


def _is_timestamp(tokenizer: Any, ids: Sequence[int]) -> bool:
    return bool(ids) and TIMESTAMP.fullmatch(tokenizer.decode(list(ids), skip_special_tokens=False)) is not None


def _timestamp_start(tokenizer: Any, ids: Sequence[int], group_start: int) -> int:
    """Index where the timestamp written just before the frame group at `group_start` begins."""
    for length in range(1, min(MAX_TIMESTAMP_TOKENS, group_start) + 1):
        if _is_timestamp(tokenizer, ids[group_start - length : group_start]):
            return group_start - length
    context = tokenizer.decode(list(ids[max(0, group_start - MAX_TIMESTAMP_TOKENS) : group_start + 1]))
    raise VideoSpanError(f"no `<t seconds>` timestamp as whole tokens before a video frame group: ...{context!r}")


def collapse_video_spans(prompt_ids: Sequence[int], processor: Any, groups_per_video: Sequence[int]) -> list[int]:
    """The ids with each video's expanded span (timestamps, frame groups) replaced by its one placeholder triple.

    `groups_per_video` holds each video's frame-group count, in prompt order (two videos written next to each
    other cannot be told apart otherwise). Refuses ids whose spans do not have Qwen3-VL's shape.
    """
    start_id, video_id, end_id = _token_ids(processor)
    tokenizer = processor.tokenizer
    ids = list(prompt_ids)
    starts = [i for i in range(len(ids) - 1) if ids[i] == start_id and ids[i + 1] == video_id]
    if len(starts) != sum(groups_per_video):
        raise VideoSpanError(
            f"the prompt has {len(starts)} video frame groups, its videos {list(groups_per_video)} "
            f"(sum {sum(groups_per_video)})"
        )
    collapsed: list[int] = []
    cursor = 0
    group = 0
    for count in groups_per_video:
        if count == 0:
            continue
        span_start = _timestamp_start(tokenizer, ids, starts[group])
        if span_start < cursor:
            raise VideoSpanError("a video's first timestamp overlaps the previous video's span")
        for g in range(group, group + count):
            end = ids.index(end_id, starts[g])
            if ids[starts[g] + 1 : end].count(video_id) != end - starts[g] - 1:
                raise VideoSpanError(f"frame group {g} holds tokens other than video tokens")
            if g + 1 < group + count and not _is_timestamp(tokenizer, ids[end + 1 : starts[g + 1]]):
                raise VideoSpanError(f"frame groups {g} and {g + 1} of one video are not separated by a timestamp")
        collapsed += ids[cursor:span_start] + [start_id, video_id, end_id]
        cursor = end + 1
        group += count
    return collapsed + ids[cursor:]
