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


def write_video(
    path: Path, segments: list[tuple[float, float]], size: tuple[int, int] = (120, 160), codec: str = "libx264"
) -> Path:
    """Write a video made of (seconds, fps) segments: a variable frame rate when the fps differ."""
    import av

    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
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
    return path


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
