"""Benchmark: PyAV's overview of a long video, one pass (before) against seeking over the gaps (after).

Writes 300 s videos at 4 fps (1,200 frames) as `make-demo-data --long` encodes them (a keyframe every 2 s) and
the same with x264's default keyframe interval (250 frames, about a minute), decodes the search experiment's
overview (32 frames) with `data.video.decoder=pyav` at each seek threshold in frames (`inf` = one pass, the previous
behaviour) and prints frames decoded, seconds (best of --repeats) and whether the frames equal the one pass's.

    python benchmarks/bench_pyav_overview.py [--size 112] [--seconds 300] [--fps 4] [--thresholds inf 0 4 8 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from verl_video.tools.demo_data import write_mp4
from verl_video.tools.long_demo_data import KEYFRAME_SECONDS
from verl_video.video import decode
from verl_video.video.settings import VideoBudget

# The search experiment's overview (experiment/tiny_tvg_search_cpu.yaml).
OVERVIEW = VideoBudget(fps=2.0, max_frames=32, min_frames=2, total_pixels=401408, max_pixels=12544, min_pixels=3136)


def write_long(path: Path, seconds: int, fps: int, size: int, keyframe_interval: int | None) -> str:
    """A video whose frames differ (a brightness ramp plus noise), so that the encoder cannot skip them."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 64, (seconds * fps, size, size, 3), dtype=np.uint8)
    frames[..., 0] += (np.arange(len(frames)) % 192).astype(np.uint8)[:, None, None]
    write_mp4(path, frames, fps, keyframe_interval=keyframe_interval)
    return str(path)


def measure(path: str, threshold: float, repeats: int) -> tuple[int, float, float, torch.Tensor]:
    """Frames PyAV decoded for one overview, its best wall and CPU seconds (all threads) and the frames returned."""
    decode.PYAV_SEEK_GAP_FRAMES = threshold
    wall, cpu, frames, decoded = float("inf"), float("inf"), None, 0
    for _ in range(repeats):
        before = decode.pyav_decoded_frames[path]
        started, started_cpu = time.perf_counter(), time.process_time()
        frames = decode.decode_video(path, OVERVIEW, decoder="pyav").frames
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - started_cpu)
        decoded = decode.pyav_decoded_frames[path] - before
    return decoded, wall, cpu, frames


def main() -> None:
    """Print one line per video and threshold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--fps", type=int, default=4)
    parser.add_argument("--size", type=int, default=112, help="frame side in pixels (the demo videos: 112)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[float("inf"), 0.0, 4.0, 8.0, 16.0])
    args = parser.parse_args()
    default = decode.PYAV_SEEK_GAP_FRAMES
    with tempfile.TemporaryDirectory() as tmp:
        videos = {
            f"keyframe every {KEYFRAME_SECONDS} s": KEYFRAME_SECONDS * args.fps,
            "x264 default keyframes (250)": None,
        }
        for name, interval in videos.items():
            path = write_long(Path(tmp) / f"{interval}.mp4", args.seconds, args.fps, args.size, interval)
            total = args.seconds * args.fps
            *_, reference = measure(path, float("inf"), 1)
            for threshold in args.thresholds:
                decoded, wall, cpu, frames = measure(path, threshold, args.repeats)
                label = "one pass" if threshold == float("inf") else f"seek when it skips > {threshold:g} frames"
                mark = " (default)" if threshold == default else ""
                same = torch.equal(frames, reference)
                print(f"{name}, {args.size}px: {label}{mark}: {decoded} of {total} frames decoded, "
                      f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU, frames {'identical' if same else 'DIFFER'}")  # fmt: skip
    decode.PYAV_SEEK_GAP_FRAMES = default


if __name__ == "__main__":
    main()
