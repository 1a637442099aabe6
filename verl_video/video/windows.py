"""Zoom windows: the frames of one time window [start, end) of a long video, planned, checked and decoded.

A zoom call `zoom(start, end)` asks for a part of a video the model has seen only coarsely. `plan_window` turns
it into a `Window`: the same `SamplingPlan` a whole video gets (sampling_plan.py: a rate p/k fps not above the
call's fps, whole frame groups of the family's temporal patch, the frame size fitted into the call's pixel
budget), laid on [start, end) of the file, so that frame i is taken at `start + i / fps` in the ORIGINAL video.
How the model is told those times is family-specific (verl_video/models/window_time.py).

A call that cannot be served gives a `WindowError` (reason and a sentence the tool shows the model), never an
exception: a model's bad call must not end its rollout. The rules:
- not numbers, reversed (end < start) or empty (end == start once rounded): refused;
- partly outside the video: clamped to [0, duration] and the window says so (`Window.note`), since the model
  often overshoots the end by a little; wholly outside: refused, naming the video's duration;
- more frames at the call's rate than its frame budget: refused, naming the longest window that fits (a
  zoom that silently fell back to a lower rate would show the overview again); `lower_rate=True` lowers the
  rate instead, as a whole video's plan does.
Start and end are rounded to 0.1 s (WINDOW_RESOLUTION, the precision at which Qwen3-VL writes times), so the
start said in a window's text is exactly the time of its first frame.

Decoding (`decode_window`) touches only the frames asked for (decode.py's decode by timestamp):
- decord reads the container's index (every frame's timestamp, from the packets, nothing decoded), picks the
  frame on screen at each asked instant and `get_batch` seeks to the keyframe before each one and decodes
  forward to it: the cost is a GOP per asked frame at worst, never the frames before the window;
- PyAV seeks once to the keyframe at or before the window start, decodes forward and stops after the frame
  on screen at the last asked instant (`decode.pyav_decoded_frames` counts what it decoded);
- a frame folder reads only the asked images.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

from verl_video.models.family import VideoGeometry, default_geometry
from verl_video.video.decode import DecodedVideo, decode_plan
from verl_video.video.sampling_plan import SamplingPlan, plan_sampling, sampling_rate
from verl_video.video.settings import VideoBudget

# Seconds: windows are rounded to this (Qwen3-VL writes times with one decimal).
WINDOW_RESOLUTION = 0.1

INVALID = "invalid"
REVERSED = "reversed"
EMPTY = "empty"
OUTSIDE = "outside"
OVER_BUDGET = "over_budget"


@dataclass(frozen=True)
class WindowError:
    """A zoom call that cannot be served: why (`reason`, one of the constants above) and what to tell the model."""

    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Window:
    """The frames shown for one zoom call: [start, end) seconds of the original video and their plan."""

    asked: tuple[float, float]  # the call's (start, end), as given
    start: float  # seconds in the original video where the window (and its first frame) begins
    end: float  # seconds in the original video where it ends, after rounding and clamping
    clamped: bool  # the call reached outside the video and was cut to it
    video_duration: float
    plan: SamplingPlan

    @property
    def fps(self) -> float:
        """Frames per second shown (p/k for the temporal patch p)."""
        return self.plan.fps

    @property
    def times(self) -> list[float]:
        """Seconds in the original video of each frame."""
        return self.plan.times

    @property
    def note(self) -> str:
        """What the tool should add to its answer ('' unless the window was clamped)."""
        if not self.clamped:
            return ""
        return (
            f"The video lasts {self.video_duration:.1f} s: the window [{self.asked[0]:g}, {self.asked[1]:g}] "
            f"was cut to [{self.start:.1f}, {self.end:.1f}]."
        )


def _rounded(t: float) -> float:
    return round(round(t / WINDOW_RESOLUTION) * WINDOW_RESOLUTION, 6)


def _bounds(start: float, end: float, duration: float) -> tuple[float, float, bool] | WindowError:
    """The window's rounded [start, end) in the video and whether it was clamped, or why there is none."""
    if not (math.isfinite(start) and math.isfinite(end)):
        return WindowError(INVALID, f"zoom needs finite seconds, got [{start}, {end}].")
    if end < start:
        return WindowError(REVERSED, f"zoom window [{start:g}, {end:g}] ends before it starts; give start < end.")
    low, high = _rounded(start), _rounded(end)
    if high <= low:
        return WindowError(
            EMPTY, f"zoom window [{start:g}, {end:g}] is empty; give windows of at least {WINDOW_RESOLUTION:g} s."
        )
    clamped_low, clamped_high = max(low, 0.0), min(high, duration)
    if clamped_high - clamped_low < WINDOW_RESOLUTION - 1e-9:
        return WindowError(
            OUTSIDE, f"zoom window [{start:g}, {end:g}] lies outside the video, which lasts {duration:.1f} s."
        )
    return clamped_low, clamped_high, (clamped_low, clamped_high) != (low, high)


def plan_window(
    start: float,
    end: float,
    video_duration: float,
    height: int,
    width: int,
    budget: VideoBudget,
    geometry: VideoGeometry | None = None,
    lower_rate: bool = False,
) -> Window | WindowError:
    """Plan the frames of a zoom call [start, end) on a video of `video_duration` s and height x width pixels.

    `budget` is the per-call budget (fps, max_frames, pixels); see the module docstring for the rules.
    """
    geometry = geometry or default_geometry()
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        return WindowError(INVALID, f"zoom needs two numbers of seconds, got start={start!r} end={end!r}.")
    if not (math.isfinite(video_duration) and video_duration > 0):
        return WindowError(INVALID, f"the video has no usable duration ({video_duration}); it cannot be zoomed.")
    bounds = _bounds(start, end, video_duration)
    if isinstance(bounds, WindowError):
        return bounds
    low, high, clamped = bounds
    duration = high - low
    wanted = sampling_rate(duration, replace(budget, max_frames=sys.maxsize), geometry)
    plan = plan_sampling(duration, height, width, budget, start=low, geometry=geometry)
    if plan.fps < wanted and not lower_rate:
        patch = geometry.temporal_patch_size
        longest = (budget.max_frames // patch) * patch / wanted
        return WindowError(
            OVER_BUDGET,
            f"zoom window [{start:g}, {end:g}] is too long: one call shows at most {budget.max_frames} frames at "
            f"{wanted:g} frames per second, i.e. {longest:g} s; ask for a shorter window.",
        )
    return Window(
        asked=(start, end), start=low, end=high, clamped=clamped, video_duration=video_duration, plan=plan
    )


def decode_window(path: str, window: Window, decoder: str = "auto", frame_rate: float | None = None) -> DecodedVideo:
    """Decode only the frames of `window` from `path` (a frame folder needs its `frame_rate`)."""
    return decode_plan(path, window.plan, decoder, frame_rate)
