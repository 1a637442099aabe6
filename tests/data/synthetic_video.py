"""Tiny test videos whose frames encode their own presentation time, written with PyAV."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

# Each frame shows its own time as a barcode: BITS vertical bars, white for 1, of round(t * TICKS_PER_SECOND).
# Black/white bars survive compression and resizing (a grey level does not survive the YUV conversion).
BITS = 10
TICKS_PER_SECOND = 10  # 0.1 s resolution, up to 102.3 s


def frame_at(t: float, height: int, width: int) -> np.ndarray:
    """An RGB frame carrying the time code of `t` as a barcode."""
    code = int(round(t * TICKS_PER_SECOND))
    bars = np.array([(code >> (BITS - 1 - b)) & 1 for b in range(BITS)], dtype=np.uint8) * 255
    columns = bars[np.arange(width) * BITS // width]
    return np.repeat(np.repeat(columns[None, :, None], height, axis=0), 3, axis=2)


def time_of(frame: np.ndarray) -> float:
    """The time (seconds) a decoded H x W x 3 frame carries, read from the centre of each bar."""
    height, width = frame.shape[:2]
    row = frame[height // 2, :, :].mean(axis=1)
    centres = ((np.arange(BITS) + 0.5) * width / BITS).astype(int)
    code = 0
    for value in row[centres]:
        code = (code << 1) | int(value > 127)
    return code / TICKS_PER_SECOND


class _StreamingSink:
    """A write-only file, as a browser's recorder sees its output: the muxer cannot seek back."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        return self.handle.write(data)

    def seekable(self) -> bool:
        return False


def write_video(
    path: Path,
    segments: list[tuple[float, float]],
    size: tuple[int, int] = (120, 160),
    codec: str = "libx264",
    streamed: bool = False,
) -> Path:
    """Write a video made of (seconds, fps) segments: a variable frame rate when the fps differ.

    `streamed` writes through a sink that cannot seek, so a WebM header gets no duration (as recorded in
    a browser).
    """
    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    time_base = Fraction(1, 1000)
    with open(path, "wb") as handle:
        target = _StreamingSink(handle) if streamed else handle
        _encode(target, path.suffix.lstrip("."), segments, height, width, codec, time_base)
    return path


def _encode(target, container_format, segments, height, width, codec, time_base) -> None:
    import av

    with av.open(target, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast", "threads": "1"}
        t0 = 0.0
        for seconds, fps in segments:
            for i in range(int(round(seconds * fps))):
                t = t0 + i / fps
                frame = av.VideoFrame.from_ndarray(frame_at(t, height, width), format="rgb24")
                frame.pts = int(round(t / time_base))
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            t0 += seconds
        container.mux(stream.encode())


def erase_frames(path: Path) -> None:
    """Zero an MP4's media data in place: the header (duration, size) still reads, no frame decodes."""
    data = bytearray(Path(path).read_bytes())
    position = 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size < 8:
            raise ValueError(f"{path}: box at byte {position} has size {size}; not an MP4 this helper can edit")
        if kind == b"mdat":
            data[position + 8 : position + size] = bytes(size - 8)
        position += size
    Path(path).write_bytes(bytes(data))
