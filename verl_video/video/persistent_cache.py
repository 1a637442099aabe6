"""A folder of decoded videos shared by runs and processes: keyed, atomic, bounded, no pickle.

Each entry is `<sha256>.npy` (uint8 frames, T x C x H x W, read with allow_pickle=False) plus
`<sha256>.json` (the key, the sampling plan and the processor metadata). The key holds the file's
identity (real path, size, mtime) and every sampling parameter, so an edited video or another budget
is a different entry. Both files are written to temporary names and renamed into place, the JSON last:
a reader never sees half an entry. When the folder outgrows its bound, the least recently used
entries (by modification time, refreshed on every hit) are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from verl_video.video.probe import FileIdentity
from verl_video.video.sampling_plan import SamplingPlan
from verl_video.video.decode import DecodedVideo, decode_video
from verl_video.models.family import VideoGeometry

FORMAT_VERSION = 2  # 2: the model's video geometry is part of the key and the plan


def entry_key(request: Any, decoder: str) -> dict[str, Any]:
    """The JSON identity of a decode: file identity, budget, clip, decoder, format version."""
    identity = FileIdentity.of(request.path)
    return {
        "version": FORMAT_VERSION,
        "file": asdict(identity),
        "budget": asdict(request.budget),
        "geometry": asdict(request.geometry),
        "clip": list(request.clip),
        "decoder": decoder,
        # Frame folders and exact frames only: older entries keep their keys (and stay valid).
        **({"frame_rate": request.frame_rate} if getattr(request, "frame_rate", None) is not None else {}),
        **({"frame_indices": list(request.frame_indices)} if getattr(request, "frame_indices", None) else {}),
    }


class PersistentVideoCache:
    """Decoded videos on disk under `root`, at most `max_bytes` in total."""

    def __init__(self, root: str, max_bytes: int):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.max_bytes = max_bytes
        os.makedirs(self.root, exist_ok=True)

    def _paths(self, key: dict[str, Any]) -> tuple[str, str]:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        base = os.path.join(self.root, digest)
        return base + ".npy", base + ".json"

    def load(self, key: dict[str, Any]) -> DecodedVideo | None:
        """The cached decode for `key`, or None."""
        frames_path, meta_path = self._paths(key)
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("key") != key:
                return None  # a hash collision or a stale format: treat as a miss
            frames = np.load(frames_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        os.utime(meta_path)  # recency for eviction
        return DecodedVideo(
            frames=torch.from_numpy(frames),
            metadata=meta["metadata"],
            plan=SamplingPlan(
                **{
                    **meta["plan"],
                    "geometry": VideoGeometry(**meta["plan"]["geometry"]),
                    "exact_times": _as_tuple(meta["plan"].get("exact_times")),
                }
            ),
            backend=meta["backend"],
        )

    def store(self, key: dict[str, Any], video: DecodedVideo) -> None:
        """Write `video` under `key` atomically, then keep the folder within its bound."""
        frames_path, meta_path = self._paths(key)
        _atomic_write(frames_path, lambda f: np.save(f, video.frames.numpy(), allow_pickle=False))
        meta = {"key": key, "plan": asdict(video.plan), "metadata": video.metadata, "backend": video.backend}
        _atomic_write(meta_path, lambda f: f.write(json.dumps(meta).encode()))
        self.evict()

    def get_or_decode(self, request: Any, decoder: str) -> DecodedVideo:
        """The cached decode of `request`, decoding and storing it on a miss."""
        key = entry_key(request, decoder)
        cached = self.load(key)
        if cached is not None:
            return cached
        video = decode_video(
            request.path, request.budget, request.video_start, request.video_end, decoder, request.geometry,
            getattr(request, "frame_rate", None), getattr(request, "frame_indices", None),
        )  # fmt: skip
        self.store(key, video)
        return video

    def size_bytes(self) -> int:
        """Bytes held by complete and partial entries."""
        return sum(e.stat().st_size for e in os.scandir(self.root) if e.is_file())

    def evict(self) -> int:
        """Delete least recently used entries until within the bound; return how many were deleted."""
        entries = {}
        for item in os.scandir(self.root):
            stem, ext = os.path.splitext(item.name)
            if ext in (".npy", ".json") and not item.name.startswith(".tmp-") and item.is_file():
                size, mtime = entries.get(stem, (0, 0.0))
                stat = item.stat()
                entries[stem] = (size + stat.st_size, max(mtime, stat.st_mtime) if ext == ".json" else mtime)
        total = sum(size for size, _ in entries.values())
        deleted = 0
        for stem, (size, _) in sorted(entries.items(), key=lambda kv: kv[1][1]):
            if total <= self.max_bytes:
                break
            for ext in (".json", ".npy"):  # the JSON first: the entry disappears before its frames
                try:
                    os.remove(os.path.join(self.root, stem + ext))
                except FileNotFoundError:
                    pass
            total -= size
            deleted += 1
        return deleted


def _as_tuple(values: list | None) -> tuple | None:
    # JSON gives lists; the plan is frozen and hashable, so its sequences are tuples.
    return tuple(values) if values is not None else None


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
