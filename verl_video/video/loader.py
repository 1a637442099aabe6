"""One entry point for "give me this video under this budget": memory cache, persistent cache, decoder.

A `VideoRequest` travels inside verl's rows as a plain dict (the `videos` column, then the chat
message's video item), so the agent-loop workers can rebuild it without the dataset object.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import asdict, dataclass
from typing import Any

from verl_video.video.decode_cache import DecodeCache
from verl_video.video.persistent_cache import PersistentVideoCache
from verl_video.video.probe import FileIdentity, VideoError
from verl_video.video.settings import BUDGET_FIELDS, VideoBudget, VideoDataSettings
from verl_video.video.decode import DecodedVideo, decode_video
from verl_video.models.family import VideoGeometry, default_geometry, geometry_from_item


@dataclass(frozen=True)
class VideoRequest:
    """A video file (or a frame folder at `frame_rate`), the optional clip of it the model sees, the sampling
    budget or the exact source frames to show (`frame_indices`), and the model's geometry."""

    path: str
    budget: VideoBudget = VideoBudget()
    video_start: float | None = None
    video_end: float | None = None
    # Set from the model's processor by whoever has it (dataset, eval, warm start); it fixes frame sizes.
    geometry: VideoGeometry = default_geometry()
    frame_rate: float | None = None
    frame_indices: tuple[int, ...] | None = None

    def to_item(self) -> dict[str, Any]:
        """The dict stored in a row's `videos` column (keys mirror qwen-vl-utils' video items)."""
        item = {
            "video": self.path,
            "video_start": self.video_start,
            "video_end": self.video_end,
            **asdict(self.budget),
            **self.geometry.as_item(),
        }
        if self.frame_rate is not None:
            item["frame_rate"] = self.frame_rate
        if self.frame_indices is not None:
            item["frame_indices"] = list(self.frame_indices)
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any], default: VideoBudget) -> VideoRequest:
        """Rebuild a request from a message's video item; budget keys it lacks take `default`."""
        budget = default.with_overrides({k: item.get(k) for k in BUDGET_FIELDS})
        geometry = geometry_from_item(item, default_geometry())
        indices = item.get("frame_indices")
        return cls(
            str(item["video"]),
            budget,
            item.get("video_start"),
            item.get("video_end"),
            geometry,
            frame_rate=item.get("frame_rate"),
            frame_indices=tuple(int(i) for i in indices) if indices is not None else None,
        )

    @property
    def clip(self) -> tuple[float | None, float | None]:
        """(video_start, video_end) as floats, so 20 and 20.0 name the same clip."""
        return tuple(None if t is None else float(t) for t in (self.video_start, self.video_end))

    def cache_key(self, decoder: str) -> tuple:
        """Identity of the decoded result: the file as it is now plus every sampling parameter."""
        return (
            FileIdentity.of(self.path), self.budget.as_key(), self.geometry, *self.clip, decoder, self.frame_rate,
            self.frame_indices,
        )  # fmt: skip


_memory_cache: DecodeCache[DecodedVideo] | None = None
_memory_cache_lock = threading.Lock()


def memory_cache(max_mb: int) -> DecodeCache[DecodedVideo]:
    """The process-wide decode cache (created on first use with `max_mb`)."""
    global _memory_cache
    with _memory_cache_lock:
        if _memory_cache is None:
            _memory_cache = DecodeCache(max_bytes=max_mb * 1024 * 1024, size_of=lambda v: v.nbytes)
        return _memory_cache


# Requests whose decode failed, by cache key: the n rollouts of a prompt ask for the same video, and a file
# that failed is not decoded n times again (the key holds size and mtime, so a replaced file is retried).
_failed: dict[tuple, VideoError] = {}


def load_video(request: VideoRequest, settings: VideoDataSettings, keep_in_memory: bool = True) -> DecodedVideo:
    """Decoded frames for `request`, decoding at most once per process (and per persistent cache).

    keep_in_memory=False skips the in-process cache, for callers that ask for each video once (evaluation).
    """
    key = request.cache_key(settings.decoder)
    if key in _failed:
        raise VideoError(str(_failed[key]))
    try:
        if not keep_in_memory:
            return _load_uncached(request, settings)
        return memory_cache(settings.memory_cache_mb).get_or_compute(key, lambda: _load_uncached(request, settings))
    except VideoError as exc:
        _failed[key] = exc
        raise


@functools.lru_cache(maxsize=8)
def persistent_cache(root: str, max_gb: float) -> PersistentVideoCache:
    """The persistent cache at `root` (one object per folder and bound in a process)."""
    return PersistentVideoCache(root, int(max_gb * 1024**3))


def _load_uncached(request: VideoRequest, settings: VideoDataSettings) -> DecodedVideo:
    if settings.cache_dir:
        return persistent_cache(settings.cache_dir, settings.cache_max_gb).get_or_decode(request, settings.decoder)
    return decode_video(
        request.path, request.budget, request.video_start, request.video_end, settings.decoder, request.geometry,
        request.frame_rate, request.frame_indices,
    )  # fmt: skip
