"""Encode each distinct video once per generation call of the `hf` rollout.

A GRPO batch asks for n rollouts of every prompt, so the rollout server receives each video n times and
Hugging Face `generate` runs the vision encoder on all of them: a fifth of the server's time on the tiny demo
model (profiled with py-spy). Inside one `generate` the weights are fixed, so equal pixels give equal
features; `encode_distinct_videos` runs the tower on the distinct videos only and lays its outputs out again
in the order the model asked for. Videos are told apart by grid and a checksum of a sample of their pixels,
and a checksum match is confirmed by exact equality, so no video is ever served another's features.

The tower's outputs are split per video by their first dimension: per patch (`grid_thw.prod()` rows per
video) or per merged token (that divided by the merge size squared), which covers Qwen2.5-VL
(`last_hidden_state`, `pooler_output`) and Qwen3-VL (also its `deepstack_features`). Any output laid out
otherwise makes the call fall back to encoding every video.
"""

from __future__ import annotations

import hashlib
import types
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch

from verl_video.models.vision_tower import find_vision_tower


def _checksum(pixels: torch.Tensor) -> str:
    """A digest of about 4096 evenly spaced values of a video's pixel rows: cheap (hashing all of them cost as
    much as the processor), and only a candidate; exact equality confirms a match."""
    flat = pixels.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // 4096)].contiguous().cpu()
    return hashlib.blake2b(sample.numpy().tobytes(), digest_size=16).hexdigest()


def distinct_order(chunks: list[torch.Tensor], grids: list[tuple[int, ...]]) -> tuple[list[int], list[int]]:
    """Indices of the first copy of each distinct video, and for every video the position of its copy there."""
    firsts: list[int] = []
    where: list[int] = []
    seen: dict[tuple, list[int]] = {}
    for index, (chunk, grid) in enumerate(zip(chunks, grids)):
        key = (grid, chunk.dtype, _checksum(chunk))
        match = next((slot for slot in seen.get(key, ()) if torch.equal(chunks[firsts[slot]], chunk)), None)
        if match is None:
            match = len(firsts)
            firsts.append(index)
            seen.setdefault(key, []).append(match)
        where.append(match)
    return firsts, where


def _relayout(value: Any, per_video: dict[int, list[int]], where: list[int]) -> Any:
    """One output of the tower on the distinct videos, repeated into the requested order; None if its layout
    is not one of the known per-video splits."""
    if isinstance(value, (list, tuple)):
        parts = [_relayout(item, per_video, where) for item in value]
        return None if any(p is None for p in parts) else type(value)(parts)
    if not isinstance(value, torch.Tensor):
        return value
    sizes = per_video.get(value.shape[0])
    if sizes is None:
        return None
    pieces = torch.split(value, sizes)
    return torch.cat([pieces[slot] for slot in where], dim=0)


def encode_distinct_videos(tower: torch.nn.Module, original, hidden_states: torch.Tensor,
                           grid_thw: torch.Tensor, **kwargs: Any):
    """The tower's forward on `hidden_states` (all videos' patches, concatenated), encoding each distinct video
    once; the result equals `original(hidden_states, grid_thw)` up to float rounding."""
    grids = [tuple(int(x) for x in row) for row in grid_thw.tolist()]
    patches = [t * h * w for t, h, w in grids]
    chunks = list(torch.split(hidden_states, patches))
    firsts, where = distinct_order(chunks, grids)
    if len(firsts) == len(chunks):
        return original(hidden_states, grid_thw, **kwargs)
    out = original(torch.cat([chunks[i] for i in firsts]), grid_thw[firsts], **kwargs)
    merge = int(getattr(tower, "spatial_merge_size", 2)) ** 2
    distinct_patches = [patches[i] for i in firsts]
    per_video = {sum(distinct_patches): distinct_patches}
    merged = [p // merge for p in distinct_patches]
    per_video.setdefault(sum(merged), merged)
    fields = out.items() if hasattr(out, "items") else None
    if fields is None:
        relaid = _relayout(out, per_video, where)
        return relaid if relaid is not None else original(hidden_states, grid_thw, **kwargs)
    for name, value in list(fields):
        relaid = _relayout(value, per_video, where)
        if relaid is None:
            return original(hidden_states, grid_thw, **kwargs)
        out[name] = relaid
    return out


@contextmanager
def distinct_video_encoding(model: torch.nn.Module) -> Iterator[Optional[torch.nn.Module]]:
    """Within the block, the model's vision tower encodes each distinct video of a call once."""
    tower = find_vision_tower(model)
    if tower is None:
        yield None
        return
    original = tower.forward
    shadowed = tower.__dict__.get("forward")

    def forward(self, hidden_states: torch.Tensor, grid_thw: torch.Tensor, **kwargs: Any):
        return encode_distinct_videos(self, original, hidden_states, grid_thw, **kwargs)

    tower.forward = types.MethodType(forward, tower)
    try:
        yield tower
    finally:
        if shadowed is None:
            del tower.forward
        else:
            tower.forward = shadowed
