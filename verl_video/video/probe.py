"""Cheap facts about a video file (duration, size, rate) read from its container header, never decoded.

A probe is cached per file identity (real path, size, mtime), so each file is probed once per process.
A header without a duration (common for browser-recorded WebM: the recorder cannot seek back to write
it) is measured instead: the packets are read, not decoded, and the end of the last frame is the length.
A folder of frame images (frame_folder.py) is a video too when its frame rate is declared: n frames last n / rate s.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from verl_video.video.frame_folder import FrameFolderError, frame_size, list_frames


class VideoError(RuntimeError):
    """A video that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class FileIdentity:
    """What makes two reads of a path the same video: resolved path, byte size, modification time."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        """Stat `path` (following links); raise VideoError when it is missing."""
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise VideoError(f"{path}: video not found ({exc.strerror})") from None
        return cls(real, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class VideoProbe:
    """Header facts about a video stream."""

    duration: float  # seconds
    width: int
    height: int
    fps: float  # average frame rate (informative only; sampling is by timestamp)
    num_frames: int  # 0 when the container does not say
    measured: bool = False  # the header gave no duration; it was measured from the packets' timestamps


_probe_cache: dict[tuple[FileIdentity, float | None], VideoProbe] = {}
_probe_lock = threading.Lock()


def probe_video(path: str, frame_rate: float | None = None) -> VideoProbe:
    """Duration, size and rate of `path` from its header (PyAV), cached per file identity.

    `path` may be a folder of frame images; then `frame_rate` (frames per second) is required.
    """
    identity = FileIdentity.of(path)
    key = (identity, frame_rate)
    with _probe_lock:
        cached = _probe_cache.get(key)
    if cached is not None:
        return cached
    probe = _probe_folder(path, frame_rate) if os.path.isdir(identity.path) else _read_header(path, identity)
    with _probe_lock:
        _probe_cache[key] = probe
    return probe


def _probe_folder(path: str, frame_rate: float | None) -> VideoProbe:
    if not frame_rate or frame_rate <= 0:
        raise VideoError(f"{path}: a folder of frames needs its frame rate (set `frame_rate` in the data_config entry)")
    try:
        frames = list_frames(path)
        width, height = frame_size(frames[0])
    except FrameFolderError as exc:
        raise VideoError(f"{path}: {exc}") from None
    rate = float(frame_rate)
    return VideoProbe(duration=len(frames) / rate, width=width, height=height, fps=rate, num_frames=len(frames))


def _read_header(path: str, identity: FileIdentity) -> VideoProbe:
    import av

    if identity.size == 0:
        raise VideoError(f"{path}: empty file")
    try:
        with av.open(identity.path) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            if not duration and container.duration is not None:
                duration = container.duration / 1_000_000  # av.time_base is microseconds
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            width, height = stream.codec_context.width, stream.codec_context.height
            frames = int(stream.frames or 0)
            measured = not duration
            if measured:
                duration = _measure_duration(container, stream)
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many error types for damaged files
        raise VideoError(f"{path}: cannot read the container header ({type(exc).__name__}: {exc})") from None
    if not duration or duration <= 0:
        raise VideoError(f"{path}: the header gives no duration and no frame has a timestamp")
    if not width or not height:
        raise VideoError(f"{path}: the header gives no frame size")
    return VideoProbe(duration=duration, width=width, height=height, fps=rate, num_frames=frames, measured=measured)


def _measure_duration(container, stream) -> float | None:
    """Seconds from the stream's start to the end of its last frame, from packet timestamps (no decoding)."""
    if stream.time_base is None:
        return None
    origin = stream.start_time or 0
    end = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue  # the flushing packet at the end of the stream
        # A packet without a duration still ends no earlier than it starts.
        packet_end = packet.pts + (packet.duration or 0)
        end = packet_end if end is None else max(end, packet_end)
    return None if end is None else float((end - origin) * stream.time_base)
