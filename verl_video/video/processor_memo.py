"""Run a processor's video part once per distinct video, however many rollouts and passes ask for it.

GRPO sends each video through the model's processor once per rollout, and more than once per rollout: verl's
agent loop renders the prompt through the processor, then calls it again for the model inputs, and the `hf`
rollout server calls it a third time. Profiled with py-spy on the CPU demo (8 videos x 8 rollouts a step),
those calls were 58% of the agent-loop worker's time, and that worker is what the generation phase waits on.

`memoize_video_processor` puts `VideoProcessorMemo` in front of `processor.video_processor` (the part that
resizes and normalises frames into `pixel_values_videos`); text, chat templates and timestamps are still
computed on every call. A result is reused only for the same frames (shape, dtype and a 128-bit BLAKE2
digest of their bytes) with the same keyword arguments (metadata, sampling flags), and each caller gets its
own copy of the result mapping, since processors pop keys from it. The memo keeps the most recent results
up to `cap_mb` and drops the oldest beyond it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Optional

import torch

DEFAULT_CAP_MB = 1024.0


def _frames_key(video: Any) -> Optional[tuple]:
    """Shape, dtype and digest of one video's frames, or None when they are not an array or tensor."""
    try:
        array = video.detach().contiguous().cpu().numpy() if isinstance(video, torch.Tensor) else video
        raw = array.tobytes()
        return tuple(array.shape), str(array.dtype), hashlib.blake2b(raw, digest_size=16).hexdigest()
    except (AttributeError, TypeError, RuntimeError):  # PIL frames, lists of paths: not memoised
        return None


def _result_bytes(result: Any) -> int:
    """Bytes held by the tensors of a processor result."""
    return sum(v.nbytes for v in result.values() if isinstance(v, torch.Tensor))


class VideoProcessorMemo:
    """Stands in for a Hugging Face video processor; calls it only for videos it has not processed yet."""

    def __init__(self, inner: Any, cap_mb: float = DEFAULT_CAP_MB) -> None:
        self._inner = inner
        self._cap_bytes = int(cap_mb * 2**20)
        self._results: OrderedDict[tuple, Any] = OrderedDict()
        self._held = 0
        # verl's agent-loop worker calls the processor from a thread pool.
        self._lock = threading.Lock()
        self.calls = 0
        self.hits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _key(self, videos: Any, kwargs: dict[str, Any]) -> Optional[tuple]:
        items = videos if isinstance(videos, (list, tuple)) else [videos]
        frames = [_frames_key(v) for v in items]
        if not frames or any(f is None for f in frames):
            return None
        return tuple(frames), repr(sorted(kwargs.items()))

    def __call__(self, videos: Any = None, **kwargs: Any) -> Any:
        """The inner processor's result for these videos and arguments, computed at most once."""
        key = self._key(videos, kwargs) if videos is not None else None
        with self._lock:
            self.calls += 1
            result = self._results.get(key) if key is not None else None
            if result is not None:
                self.hits += 1
                self._results.move_to_end(key)
        if result is None:
            # Outside the lock: two threads may process the same new video at once, never wait on each other.
            result = self._inner(videos=videos, **kwargs)
            if key is not None:
                self._store(key, result)
        return _copy(result)

    def _store(self, key: tuple, result: Any) -> None:
        size = _result_bytes(result)
        if size > self._cap_bytes:
            return
        with self._lock:
            if key in self._results:
                return
            self._results[key] = _copy(result)
            self._held += size
            while self._held > self._cap_bytes:
                _, dropped = self._results.popitem(last=False)
                self._held -= _result_bytes(dropped)


def _copy(result: Any) -> Any:
    """A new mapping over the same tensors (callers pop keys from it, they do not write into the tensors)."""
    try:
        return type(result)(dict(result))
    except TypeError:
        return dict(result)


def memoize_video_processor(processor: Any, cap_mb: float = DEFAULT_CAP_MB) -> Any:
    """Put a `VideoProcessorMemo` in front of `processor.video_processor` (once); returns the processor."""
    inner = getattr(processor, "video_processor", None)
    if inner is not None and not isinstance(inner, VideoProcessorMemo):
        processor.video_processor = VideoProcessorMemo(inner, cap_mb)
    return processor
