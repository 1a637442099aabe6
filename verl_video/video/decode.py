"""Decode a video (or a clip of it) by timestamp into uint8 frames plus the video metadata Qwen processors read.

Frames are chosen by TIME, not by index: frame i is the one on screen at `start + i / fps`, which stays
right on variable-frame-rate files. The decoder resizes (frames never exist at full resolution here).

Decoders: decord first (fast random access, resize inside FFmpeg). PyAV is the fallback: it reads what
decord cannot (decord 0.6 raises on some codecs and containers and on files whose index it cannot
build), decoding forward from the keyframe before the clip start and seeking again over long gaps between
instants, converting only the chosen frames.
A folder of frame images (frame_folder.py) is read image by image at its declared `frame_rate`; `frame_indices`
asks for exact source frames (tracking) instead of the regular time grid.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from verl_video.video.frame_folder import FrameFolderError, list_frames, read_frames
from verl_video.video.probe import VideoError, probe_video
from verl_video.video.sampling_plan import SamplingPlan, plan_sampling
from verl_video.video.settings import VideoBudget
from verl_video.models.family import VideoGeometry

DECODERS = ("auto", "decord", "pyav")
FRAME_FOLDER_BACKEND = "frames"

# Real decodes per resolved path in this process (the decode-once benchmark and tests read it).
decode_counts: Counter[str] = Counter()
# Frames PyAV decoded per path (not only those kept): shows that a clip decode does not read the whole file.
pyav_decoded_frames: Counter[str] = Counter()
_counts_lock = threading.Lock()


@dataclass
class DecodedVideo:
    """Frames (uint8, T x C x H x W) and the metadata transformers' video processor expects."""

    frames: torch.Tensor
    metadata: dict[str, Any]
    plan: SamplingPlan
    backend: str

    @property
    def nbytes(self) -> int:
        """Bytes held by the frames."""
        return self.frames.numel() * self.frames.element_size()

    def as_processor_input(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """The (frames, metadata) pair verl hands to the processor and to the rollout server."""
        return self.frames, dict(self.metadata)


def video_metadata(plan: SamplingPlan, backend: str) -> dict[str, Any]:
    """Metadata for `processor(videos=..., video_metadata=..., do_sample_frames=False)`.

    transformers derives the sampled rate as len(frames_indices) / total_num_frames * fps and
    seconds-per-grid as 2 / that rate; describing the returned frames themselves (indices 0..T-1 at
    `plan.fps`) makes both exact. Only VideoMetadata's own fields may appear (it rejects others).
    """
    return {
        "total_num_frames": plan.num_frames,
        "fps": plan.fps,
        "width": plan.width,
        "height": plan.height,
        "duration": plan.duration,
        "video_backend": backend,
        "frames_indices": list(range(plan.num_frames)),
    }


def clip_window(
    file_duration: float, video_start: float | None, video_end: float | None, path: str = ""
) -> tuple[float, float]:
    """Start and length (seconds) of the part of the file the model sees."""
    start = max(0.0, float(video_start or 0.0))
    end = file_duration if video_end is None else min(float(video_end), file_duration)
    if end - start <= 0:
        raise VideoError(
            f"{path}: clip [{video_start}, {video_end}] is empty for a video of {file_duration:.2f} s"
        )
    return start, end - start


def plan_for_file(
    path: str,
    budget: VideoBudget,
    video_start: float | None = None,
    video_end: float | None = None,
    geometry: VideoGeometry | None = None,
    frame_rate: float | None = None,
    frame_indices: tuple[int, ...] | None = None,
) -> SamplingPlan:
    """Probe `path` (header only) and plan its frames under `budget` for the model's `geometry`.

    A frame folder is read at `frame_rate`; `frame_indices` asks for exactly those source frames.
    """
    probe = probe_video(path, frame_rate)
    start, duration = clip_window(probe.duration, video_start, video_end, path)
    if frame_indices:
        if probe.num_frames and max(frame_indices) >= probe.num_frames:
            raise VideoError(f"{path}: frame {max(frame_indices)} asked for, the video has {probe.num_frames} frames")
        # The middle of each frame's display time, so that no rounding can reach its neighbour.
        times = [(index + 0.5) / probe.fps for index in frame_indices]
    else:
        times = None
    return plan_sampling(duration, probe.height, probe.width, budget, start=start, geometry=geometry, exact_times=times)


def decode_video(
    path: str,
    budget: VideoBudget,
    video_start: float | None = None,
    video_end: float | None = None,
    decoder: str = "auto",
    geometry: VideoGeometry | None = None,
    frame_rate: float | None = None,
    frame_indices: tuple[int, ...] | None = None,
) -> DecodedVideo:
    """Decode `path` (optionally the clip [video_start, video_end]) under `budget`; no caching."""
    plan = plan_for_file(path, budget, video_start, video_end, geometry, frame_rate, frame_indices)
    return decode_plan(path, plan, decoder, frame_rate)


def decode_plan(path: str, plan: SamplingPlan, decoder: str = "auto", frame_rate: float | None = None) -> DecodedVideo:
    """Decode exactly the instants of `plan` (seconds in the file) from `path`; no caching."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown video decoder {decoder!r}; choose from {', '.join(DECODERS)}")
    if os.path.isdir(path):
        return _decode_folder(path, plan, probe_video(path, frame_rate).fps)
    errors = []
    for backend in ("decord", "pyav") if decoder == "auto" else (decoder,):
        try:
            frames = _BACKENDS[backend](path, plan)
        except Exception as exc:  # decord's DECORDError is not a RuntimeError; PyAV has its own tree
            errors.append(f"{backend}: {type(exc).__name__}: {exc}")
            continue
        with _counts_lock:
            decode_counts[path] += 1
        return DecodedVideo(frames=frames, metadata=video_metadata(plan, backend), plan=plan, backend=backend)
    raise VideoError(f"{path}: cannot decode ({'; '.join(errors)})")


def _decode_folder(path: str, plan: SamplingPlan, rate: float) -> DecodedVideo:
    try:
        images = read_frames(list_frames(path), rate, plan.times, plan.height, plan.width)
    except FrameFolderError as exc:
        raise VideoError(f"{path}: {exc}") from None
    with _counts_lock:
        decode_counts[path] += 1
    return DecodedVideo(frames=_to_tensor(images), metadata=video_metadata(plan, FRAME_FOLDER_BACKEND), plan=plan, backend=FRAME_FOLDER_BACKEND)


def _pick_frames(frame_times: list[float], targets: list[float]) -> list[int]:
    """Index of the frame on screen at each target time (the last one starting at or before it)."""
    return [max(0, bisect.bisect_right(frame_times, t + 1e-6) - 1) for t in targets]


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    # (T, H, W, C) -> (T, C, H, W), contiguous so that the processor and caches see one block.
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))


def _decode_with_decord(path: str, plan: SamplingPlan) -> torch.Tensor:
    import decord

    # FFmpeg prints a line per damaged packet (hundreds per file, from every worker) to stderr; what went
    # wrong reaches the user once per file through the VideoError this decode raises instead.
    decord.logging.set_level(decord.logging.QUIET)

    reader = decord.VideoReader(path, width=plan.width, height=plan.height, num_threads=0)
    stamps = reader.get_frame_timestamp(range(len(reader)))[:, 0]
    frame_times = (stamps - stamps[0]).tolist()
    indices = _pick_frames(frame_times, plan.times)
    batch = reader.get_batch(indices).asnumpy()
    if batch.shape[0] != plan.num_frames or batch.shape[1:3] != (plan.height, plan.width):
        raise VideoError(f"decord returned {batch.shape} for {plan.num_frames}x{plan.height}x{plan.width}")
    return _to_tensor(batch)


# Seek past a gap between instants only when the seek skips more than this many frames: a seek has a cost of its
# own (the decoder is flushed and its threads refilled). Measured (benchmarks/bench_pyav_overview.py, 60 s at 4 fps,
# 32 instants 1.9 s apart, a keyframe every 8 frames): seeking over every gap decoded 145 frames instead of 234 for
# 15% more CPU, over gaps of more than 4 frames 169 for the same CPU; 8 (one keyframe interval of the long demo
# videos) keeps such dense plans one pass. `inf` gives the previous behaviour: one pass from the plan's start.
PYAV_SEEK_GAP_FRAMES = 8.0


class _PyAVPass:
    """PyAV's decode of one plan: forward from the keyframe before its start, converting only the frames on screen at
    its instants, and seeking again when the next instant lies past a keyframe far enough ahead.

    An overview of a long video so decodes about a GOP per instant instead of every frame up to its last one. When
    that keyframe is at or before the current frame (a long GOP) the pass decodes on: never more than one pass.
    Every pending instant lies at or after the keyframe sought, so the last frame before a seek is assigned nothing
    more and the frames chosen stay those of one pass."""

    def __init__(self, path: str, plan: SamplingPlan, container: Any, stack: contextlib.ExitStack) -> None:
        self.path, self.plan, self.container, self.stack = path, plan, container, stack
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.base = self.stream.time_base
        self.origin = self.stream.start_time or 0
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.min_skip = PYAV_SEEK_GAP_FRAMES / float(rate) if rate else float("inf")  # seconds
        self.frames: list[np.ndarray | None] = [None] * len(plan.times)
        self.next_target = 0  # the first instant without a frame yet
        self._probe: Any = None
        self._probed: tuple[int, float | None] = (-1, None)  # (instant, keyframe a seek to it lands on)

    def run(self) -> list[np.ndarray | None]:
        """Each instant's frame (rgb24 at the plan's size); None where the file ended before any frame."""
        targets = self.plan.times
        if self.plan.start > 0:
            self._seek(self.container, self.plan.start)
        previous = None
        seeking = True
        while seeking:
            seeking = False
            for frame in self.container.decode(self.stream):
                with _counts_lock:
                    pyav_decoded_frames[self.path] += 1
                if frame.pts is None:
                    continue
                t = float((frame.pts - self.origin) * self.base)
                if previous is None:
                    previous = frame
                    if t > targets[0]:
                        self._assign(frame, t + 1e-3)  # the first decoded frame also stands for earlier instants
                    continue
                self._assign(previous, t)
                previous = frame
                if self.next_target >= len(targets):
                    break
                if self._seek_pays(t):
                    self._seek(self.container, targets[self.next_target])
                    self._probed = (self.next_target, None)  # one seek per instant at most, wherever it lands
                    seeking = True
                    break
        if previous is not None:
            self._assign(previous, float("inf"))
        return self.frames

    def _seek(self, handle: Any, seconds: float) -> None:
        handle.seek(int(seconds / self.base) + self.origin, stream=handle.streams.video[0], backward=True,
                    any_frame=False)  # fmt: skip

    def _keyframe_before(self, seconds: float) -> float | None:
        # Where a backward seek to `seconds` lands, read on a second handle by demuxing one packet (nothing decoded),
        # so that the decode's own position is kept when no seek pays.
        self._probe = self._probe or self.stack.enter_context(_av_open(self.path))
        self._seek(self._probe, seconds)
        packet = next(self._probe.demux(self._probe.streams.video[0]), None)
        return None if packet is None or packet.pts is None else float((packet.pts - self.origin) * self.base)

    def _seek_pays(self, t: float) -> bool:
        # The next instant lies more than `min_skip` ahead of the frame at `t`, past a keyframe that is too.
        target = self.plan.times[self.next_target]
        if target - t <= self.min_skip:
            return False
        if self._probed[0] != self.next_target:
            self._probed = (self.next_target, self._keyframe_before(target))
        keyframe = self._probed[1]
        return keyframe is not None and keyframe - t > self.min_skip and keyframe <= target + 1e-6

    def _assign(self, frame: Any, upto: float) -> None:
        # `frame` is on screen at every pending instant before `upto` (seconds); converted once, if at all.
        image = None
        while self.next_target < len(self.plan.times) and self.plan.times[self.next_target] < upto - 1e-6:
            if image is None:
                image = frame.to_ndarray(width=self.plan.width, height=self.plan.height, format="rgb24")
            self.frames[self.next_target] = image
            self.next_target += 1


def _av_open(path: str) -> Any:
    """PyAV's container for `path` (imported here: PyAV is the fallback decoder)."""
    import av

    return av.open(path)


def _decode_with_pyav(path: str, plan: SamplingPlan) -> torch.Tensor:
    with _av_open(path) as container, contextlib.ExitStack() as stack:
        frames = _PyAVPass(path, plan, container, stack).run()
    if any(image is None for image in frames):
        raise VideoError("PyAV decoded no frame in the requested window")
    return _to_tensor(np.stack(frames))


_BACKENDS = {"decord": _decode_with_decord, "pyav": _decode_with_pyav}
