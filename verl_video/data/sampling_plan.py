"""Which instants of a video are shown to the model, at which size: pure arithmetic, no decoding.

Frame i is taken at `start + i / fps` (seconds in the file), so the model's temporal M-RoPE position of
grid g (frames 2g, 2g+1) is exactly the time of its first frame: g * (2 / fps) seconds after `start`.
The rate is always 2/k fps so that seconds-per-grid (2 / fps = k) is an integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from verl_video.data.settings import PIXELS_PER_TOKEN_SIDE, TEMPORAL_PATCH, VideoBudget


@dataclass(frozen=True)
class SamplingPlan:
    """The frames to take from one video (or clip) and their size."""

    fps: float
    num_frames: int
    start: float  # seconds in the file where the model's time 0 lies
    duration: float  # seconds the model sees
    height: int
    width: int
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
    def seconds_per_grid(self) -> int:
        """Seconds between consecutive temporal grids (an integer by construction)."""
        return round(TEMPORAL_PATCH / self.fps)

    @property
    def num_video_tokens(self) -> int:
        """LLM tokens this video occupies (Qwen2.5-VL: 2 frames x 28 x 28 pixels per token)."""
        side = PIXELS_PER_TOKEN_SIDE
        return (self.num_frames // TEMPORAL_PATCH) * (self.height // side) * (self.width // side)


def sampling_rate(duration: float, budget: VideoBudget) -> float:
    """The largest 2/k fps not above budget.fps whose frame count fits budget.max_frames."""
    if budget.fps <= 0:
        raise ValueError(f"video fps must be positive, got {budget.fps}")
    k = max(1, math.ceil(TEMPORAL_PATCH / budget.fps - 1e-9))
    max_pairs = max(1, budget.max_frames // TEMPORAL_PATCH)
    # frames = 2 * floor(duration / k): the smallest k with floor(duration / k) <= max_pairs.
    k = max(k, math.floor(duration / (max_pairs + 1)) + 1)
    fps = TEMPORAL_PATCH / k
    while TEMPORAL_PATCH / fps < k:  # e.g. 2 / (2 / 105) = 104.999...: int() would give 104
        fps = math.nextafter(fps, 0.0)
    return fps


def frame_count(duration: float, fps: float, budget: VideoBudget) -> int:
    """Even number of frames covering `duration` at `fps`, padded up to budget.min_frames."""
    pairs = math.floor(duration * fps / TEMPORAL_PATCH + 1e-9)
    min_pairs = math.ceil(max(budget.min_frames, TEMPORAL_PATCH) / TEMPORAL_PATCH)
    max_pairs = max(min_pairs, budget.max_frames // TEMPORAL_PATCH)
    return TEMPORAL_PATCH * min(max(pairs, min_pairs), max_pairs)


def fit_frame_size(height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Keep the aspect ratio, make both sides multiples of 28 and the area fall in [min, max] pixels.

    The area bound wins over the aspect ratio: rounding may leave the area outside the range, and
    then the longer (or, to grow, the shorter) side moves by 28 pixels at a time.
    """
    side = PIXELS_PER_TOKEN_SIDE
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
    duration: float, height: int, width: int, budget: VideoBudget, start: float = 0.0
) -> SamplingPlan:
    """Plan the frames for `duration` seconds from `start` of a height x width video under `budget`."""
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"video duration must be a positive number of seconds, got {duration}")
    fps = sampling_rate(duration, budget)
    num_frames = frame_count(duration, fps, budget)
    per_frame = budget.total_pixels * TEMPORAL_PATCH // num_frames
    max_pixels = max(budget.min_pixels, min(budget.max_pixels, per_frame))
    h, w = fit_frame_size(height, width, budget.min_pixels, max_pixels)
    return SamplingPlan(fps=fps, num_frames=num_frames, start=start, duration=duration, height=h, width=w)


def plan_exact_frames(
    times: list[float], duration: float, height: int, width: int, budget: VideoBudget, start: float = 0.0
) -> SamplingPlan:
    """A plan that shows exactly the instants `times` (an even count: the last one repeats), sized under `budget`."""
    if not times:
        raise ValueError("an exact-frame plan needs at least one instant")
    num_frames = TEMPORAL_PATCH * math.ceil(len(times) / TEMPORAL_PATCH)
    fps = sampling_rate(duration, budget)
    per_frame = budget.total_pixels * TEMPORAL_PATCH // num_frames
    max_pixels = max(budget.min_pixels, min(budget.max_pixels, per_frame))
    h, w = fit_frame_size(height, width, budget.min_pixels, max_pixels)
    return SamplingPlan(fps, num_frames, start, duration, h, w, exact_times=tuple(float(t) for t in times))
