"""Which instants of a video are shown to the model, at which size: pure arithmetic, no decoding.

Frame i is taken at `start + i / fps` (seconds in the file). With a temporal patch of p frames
(`VideoGeometry`, read from the model's processor) the rate is always p/k fps, so that a frame group
spans k whole seconds: Qwen2.5-VL's temporal M-RoPE position of group g is then exactly the time of its
first frame, g * k seconds after `start` (transformers 5.9 truncates a fractional seconds-per-group).
Qwen3-VL writes each group's time as text and needs no such rate, but gets the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from verl_video.video.settings import VideoBudget
from verl_video.models.family import VideoGeometry, default_geometry


@dataclass(frozen=True)
class SamplingPlan:
    """The frames to take from one video (or clip) and their size."""

    fps: float
    num_frames: int
    start: float  # seconds in the file where the model's time 0 lies
    duration: float  # seconds the model sees
    height: int
    width: int
    geometry: VideoGeometry = default_geometry()
    # Exact instants (seconds in the file) to show instead of the regular grid, e.g. the frames a tracking
    # record annotates; padded to `num_frames` by repeating the last. The time encoding still follows `fps`.
    exact_times: tuple[float, ...] | None = None

    @property
    def times(self) -> list[float]:
        """Seconds in the file at which each frame is taken (padding frames repeat the clip end)."""
        if self.exact_times:
            return [self.exact_times[min(i, len(self.exact_times) - 1)] for i in range(self.num_frames)]
        end = self.start + self.duration
        return [min(self.start + i / self.fps, end) for i in range(self.num_frames)]

    @property
    def relative_times(self) -> list[float]:
        """Seconds after the clip start that the model's time encoding assigns to each frame."""
        return [i / self.fps for i in range(self.num_frames)]

    @property
    def group_seconds(self) -> list[float]:
        """Per frame group (temporal patch), the mean of its frames' relative times (what Qwen3-VL writes)."""
        patch = self.geometry.temporal_patch_size
        times = self.relative_times
        return [sum(times[i : i + patch]) / len(times[i : i + patch]) for i in range(0, len(times), patch)]

    @property
    def seconds_per_grid(self) -> int:
        """Seconds between consecutive temporal grids (an integer by construction)."""
        return round(self.geometry.temporal_patch_size / self.fps)

    @property
    def num_video_tokens(self) -> int:
        """LLM tokens this video occupies under the model's geometry."""
        return self.geometry.num_tokens(self.num_frames, self.height, self.width)


def sampling_rate(duration: float, budget: VideoBudget, geometry: VideoGeometry | None = None) -> float:
    """The largest p/k fps (p: temporal patch) not above budget.fps whose frame count fits budget.max_frames."""
    patch = (geometry or default_geometry()).temporal_patch_size
    if budget.fps <= 0:
        raise ValueError(f"video fps must be positive, got {budget.fps}")
    k = max(1, math.ceil(patch / budget.fps - 1e-9))
    max_groups = max(1, budget.max_frames // patch)
    # frames = p * floor(duration / k): the smallest k with floor(duration / k) <= max_groups.
    k = max(k, math.floor(duration / (max_groups + 1)) + 1)
    fps = patch / k
    while patch / fps < k:  # e.g. 2 / (2 / 105) = 104.999...: int() would give 104
        fps = math.nextafter(fps, 0.0)
    return fps


def frame_count(duration: float, fps: float, budget: VideoBudget, geometry: VideoGeometry | None = None) -> int:
    """Whole frame groups covering `duration` at `fps`, padded up to budget.min_frames."""
    patch = (geometry or default_geometry()).temporal_patch_size
    groups = math.floor(duration * fps / patch + 1e-9)
    min_groups = math.ceil(max(budget.min_frames, patch) / patch)
    max_groups = max(min_groups, budget.max_frames // patch)
    return patch * min(max(groups, min_groups), max_groups)


def fit_frame_size(
    height: int, width: int, min_pixels: int, max_pixels: int, geometry: VideoGeometry | None = None
) -> tuple[int, int]:
    """Keep the aspect ratio, make both sides multiples of the token side and the area fall in [min, max].

    The area bound wins over the aspect ratio: rounding may leave the area outside the range, and
    then the longer (or, to grow, the shorter) side moves by one token side at a time.
    """
    side = (geometry or default_geometry()).pixels_per_token_side
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    area = height * width
    scale = math.sqrt(min(max(area, min_pixels), max_pixels) / area)
    h = max(side, round(height * scale / side) * side)
    w = max(side, round(width * scale / side) * side)
    while h * w > max_pixels and max(h, w) > side:
        if h >= w:
            h -= side
        else:
            w -= side
    while h * w < min_pixels:
        grow_h = (h + side) * w <= max_pixels
        grow_w = h * (w + side) <= max_pixels
        if not (grow_h or grow_w):
            break
        if grow_h and (h <= w or not grow_w):
            h += side
        else:
            w += side
    return h, w


def plan_sampling(
    duration: float,
    height: int,
    width: int,
    budget: VideoBudget,
    start: float = 0.0,
    geometry: VideoGeometry | None = None,
    exact_times: list[float] | None = None,
) -> SamplingPlan:
    """Plan the frames for `duration` seconds from `start` of a height x width video under `budget`.

    `exact_times` (seconds in the file): show exactly those instants instead of the time grid, padded to
    whole frame groups by repeating the last (the time encoding still follows the budget's rate).
    """
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"video duration must be a positive number of seconds, got {duration}")
    if exact_times is not None and not exact_times:
        raise ValueError("an exact-frame plan needs at least one instant")
    geometry = geometry or default_geometry()
    patch = geometry.temporal_patch_size
    fps = sampling_rate(duration, budget, geometry)
    if exact_times:
        num_frames = patch * math.ceil(len(exact_times) / patch)
    else:
        num_frames = frame_count(duration, fps, budget, geometry)
    # total_pixels bounds one frame's pixels summed over the frame groups: the video's tokens, whatever its length.
    per_frame = budget.total_pixels * patch // num_frames
    max_pixels = max(budget.min_pixels, min(budget.max_pixels, per_frame))
    h, w = fit_frame_size(height, width, budget.min_pixels, max_pixels, geometry)
    return SamplingPlan(
        fps=fps, num_frames=num_frames, start=start, duration=duration, height=h, width=w, geometry=geometry,
        exact_times=tuple(float(t) for t in exact_times) if exact_times else None,
    )  # fmt: skip
