"""A zoom window's frames told in the ORIGINAL video's time, per model family.

A window [start, end) of a video is shown as a video of its own, so the model must be told where it lies:
- `text_timestamps` (Qwen3-VL): the processor writes `<t seconds>` before each frame group, t = the mean over
  the group of `frames_indices[i] / fps` from the video metadata (transformers' Qwen3VLProcessor and vLLM's
  Qwen3-VL processor alike). The metadata here counts frames in a millisecond clock of the original video
  (fps = 1000, index = round(time * 1000)), so t is the frames' original time whatever the window's start,
  integer indices as VideoMetadata declares them. The text only names the window.
- `mrope_seconds` (Qwen2.5-VL): the temporal M-RoPE position of group g is g * second_per_grid_ts *
  tokens_per_second, counted from the video's first token: positions restart at every video and cannot carry
  the start. The metadata describes the window's frames from 0 (so second_per_grid_ts = p / fps, an integer
  for the p/k rates of sampling_plan.py) and the text says where the window starts: original time of group
  g = start + g * second_per_grid_ts.
- `mrope_order` (Qwen2-VL): positions are group indices; the text says the window and the spacing.
The temporal patch is read from the processor, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from verl_video.models.family import MROPE_ORDER, MROPE_SECONDS, TEXT_TIMESTAMPS, family_of_processor, video_geometry

# Ticks per second of the clock Qwen3-VL metadata counts frames in (the processor writes 0.1 s).
METADATA_CLOCK = 1000
WINDOW_TEXT = "Frames from {start:.1f} s to {end:.1f} s of the video:"
SPACING_TEXT = " one frame group every {seconds:g} s."


class TimedWindow(Protocol):
    """What this module needs of a window (verl_video.video.windows.Window has it)."""

    start: float
    end: float

    @property
    def fps(self) -> float:
        """Frames per second shown."""

    @property
    def times(self) -> list[float]:
        """Seconds in the original video of each frame."""


@dataclass(frozen=True)
class WindowVideoInputs:
    """What a zoom answer hands the model: text said before the frames, then the (frames, metadata) video."""

    text: str
    frames: Any  # T x C x H x W uint8 tensor, as decoded
    metadata: dict[str, Any]  # VideoMetadata fields for processor(videos=..., video_metadata=...)

    @property
    def video(self) -> tuple[Any, dict[str, Any]]:
        """The (frames, metadata) pair verl hands to the processor and the rollout server."""
        return self.frames, dict(self.metadata)


def _metadata(frames: Any, fps: float, indices: Sequence[int], total: int, duration: float) -> dict[str, Any]:
    """VideoMetadata fields (only those: it rejects others) for frames taken at `indices` of a `fps` clock."""
    return {
        "total_num_frames": total,
        "fps": fps,
        "width": int(frames.shape[-1]),
        "height": int(frames.shape[-2]),
        "duration": duration,
        "video_backend": "window",
        "frames_indices": list(indices),
    }


def _text_timestamps(processor: Any, window: TimedWindow, frames: Any) -> WindowVideoInputs:
    indices = [round(t * METADATA_CLOCK) for t in window.times]
    metadata = _metadata(frames, float(METADATA_CLOCK), indices, max(indices) + 1, window.end)
    return WindowVideoInputs(WINDOW_TEXT.format(start=window.start, end=window.end), frames, metadata)


def _seconds_per_group(processor: Any, window: TimedWindow) -> float:
    return video_geometry(processor).temporal_patch_size / window.fps


def _mrope_seconds(processor: Any, window: TimedWindow, frames: Any) -> WindowVideoInputs:
    seconds = _seconds_per_group(processor, window)
    if abs(seconds - round(seconds)) > 1e-6:
        # transformers truncates second_per_grid_ts to an integer: any other rate gives wrong positions.
        raise ValueError(
            f"a window at {window.fps:g} fps has {seconds:g} s per frame group; Qwen2.5-VL needs whole seconds"
        )
    count = len(window.times)
    metadata = _metadata(frames, window.fps, range(count), count, window.end - window.start)
    return WindowVideoInputs(WINDOW_TEXT.format(start=window.start, end=window.end), frames, metadata)


def _mrope_order(processor: Any, window: TimedWindow, frames: Any) -> WindowVideoInputs:
    inputs = _mrope_seconds(processor, window, frames)
    spacing = SPACING_TEXT.format(seconds=_seconds_per_group(processor, window))
    return WindowVideoInputs(inputs.text.rstrip(":") + "," + spacing, frames, inputs.metadata)


_BY_ENCODING = {TEXT_TIMESTAMPS: _text_timestamps, MROPE_SECONDS: _mrope_seconds, MROPE_ORDER: _mrope_order}


def window_video_inputs(processor: Any, window: TimedWindow, frames: Any) -> WindowVideoInputs:
    """The text and (frames, metadata) that show `window`'s frames at their original times to `processor`'s model."""
    if int(frames.shape[0]) != len(window.times):
        raise ValueError(f"{int(frames.shape[0])} frames given for a window of {len(window.times)} instants")
    encoding = family_of_processor(processor).time_encoding
    return _BY_ENCODING[encoding](processor, window, frames)
