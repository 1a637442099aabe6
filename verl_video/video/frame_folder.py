"""A video given as a folder of frame images (GOT-10k's layout) played at a declared frame rate.

The frames are the folder's image files in name order; frame i is on screen from i / rate to (i + 1) / rate,
so the folder lasts n / rate seconds and is sampled by time like any video file. Probing reads the first
image's header only; decoding opens just the frames the plan picks and resizes them to the plan's size.
"""

from __future__ import annotations

import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class FrameFolderError(RuntimeError):
    """A frame folder that cannot be used; the message says why (the caller names the folder)."""


def list_frames(path: str) -> list[str]:
    """The folder's frame image files in name order (other files, such as GOT-10k's labels, are ignored)."""
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise FrameFolderError(f"cannot list the frame folder ({exc.strerror})") from None
    frames = sorted(name for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
    if not frames:
        raise FrameFolderError(f"no frame images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    return [os.path.join(path, name) for name in frames]


def frame_size(first_frame: str) -> tuple[int, int]:
    """(width, height) of a frame from its image header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(first_frame) as image:
            return image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise FrameFolderError(f"{os.path.basename(first_frame)} is not a readable image ({exc})") from None


def read_frames(frames: list[str], rate: float, times: list[float], height: int, width: int) -> np.ndarray:
    """The frames on screen at `times` (seconds), resized to height x width, as T x H x W x 3 uint8."""
    from PIL import Image, UnidentifiedImageError

    picked = [min(len(frames) - 1, max(0, int(np.floor(t * rate + 1e-6)))) for t in times]
    decoded: dict[int, np.ndarray] = {}
    for index in dict.fromkeys(picked):
        try:
            with Image.open(frames[index]) as image:
                decoded[index] = np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR))
        except (OSError, UnidentifiedImageError) as exc:
            raise FrameFolderError(f"{os.path.basename(frames[index])} cannot be decoded ({exc})") from None
    return np.stack([decoded[i] for i in picked])
