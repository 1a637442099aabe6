"""`verl-video make-demo-data OUT --long`: minutes-long generated videos in which a short event must be found.

The demo's event (a coloured shape visible during [start, end), half-second boundaries, 2-6 s) placed at a random
time in a 120-300 s video: an overview of 32 frames sees a frame every 4-9 s, too coarse to place the event's
ends (or to see a 2 s event at all), so a model must zoom (the `video_search` loop, experiment=tiny_tvg_search_cpu)
or see many more frames (experiment=tiny_tvg_longsingle_cpu).
The event happens inside a SCENE: the background turns a tint for 16-20 s (longer than the overview's gap between
frames) somewhere around the event, as a short action in a long video happens within a longer shot that a coarse
look can find. The event lies anywhere inside its scene, so the scene says where to zoom but not where the event's
ends are: only a closer look places them. The videos reuse demo_data's rendering and writing;
what differs is their length, a low frame rate on disk and a fixed keyframe interval. OUT holds `train.jsonl`,
`val.jsonl` (canonical grounding records), `train.yaml`, `val.yaml` and the mp4 files; a rerun with the same
parameters keeps them (manifest.json).
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np

from verl_video.tools import demo_data
from verl_video.tools.demo_data import SPLITS, WARM_START, Event, record, render_frames, sample_event, write_mp4

DURATIONS = tuple(range(120, 301))  # seconds, integers
# 4 fps on disk: the event's half-second boundaries stay on frames, and the files stay small (1,200 frames at most).
FPS = 4
# One keyframe every 2 s (8 frames). A zoom window (verl_video/video/windows.py) decodes from the keyframe at or
# before its start: with x264's default (one keyframe per 250 frames, about a minute at 4 fps) every zoom would
# decode up to a minute of video it does not show; at 2 s it decodes at most 2 s more than it shows, for files
# about 15% larger (measured: 116 against 101 KB for four videos).
KEYFRAME_SECONDS = 2
# Bumped whenever these videos change, so an old output directory is not mistaken for a current one.
# 2: the scene around the event. 3: the event anywhere in its scene (in 2 it sat 4-6 s from either end, so the
# scene's centre was within 0.5 s of the event's, median of 128 videos: one look at the scene placed the event).
LONG_VERSION = 3
# The scene's length (half-second steps): more than 16 s, so every overview of 32 frames (one every 9.4 s at most)
# has a frame in it.
SCENE_LENGTHS = np.arange(16.0, 20.25, 0.5)
# The least time between the event and either end of its scene (when the scene does not meet the video's ends).
SCENE_EDGE = 1.0
# The scene's background: a dim magenta, far from the grey backgrounds (15-60) and from every shape colour.
SCENE_TINT = (110, 50, 110)
# Random streams of their own: the long videos never share an event with the short demo's (demo_data.STREAMS).
STREAMS = {"val": 11, "train": 12, WARM_START: 13}
NAME = "demo_long"


def manifest(num_train: int, num_val: int, seed: int, num_warm_start: int = 0) -> dict:
    """What determines the long output; a directory with the same manifest need not be regenerated."""
    return {"generator": NAME, "generator_version": demo_data.GENERATOR_VERSION, "long_version": LONG_VERSION,
            "num_train": num_train, "num_val": num_val, "num_warm_start": num_warm_start, "seed": seed}  # fmt: skip


def splits(num_warm_start: int) -> tuple[str, ...]:
    """The splits an output holds: train and val, and the warm start's when asked for."""
    return (*SPLITS, WARM_START) if num_warm_start else SPLITS


def is_complete(out: Path, expected: dict) -> bool:
    """Whether OUT holds a finished long dataset made with these parameters."""
    path = out / "manifest.json"
    if not path.is_file() or json.loads(path.read_text()) != expected:
        return False
    for split in splits(expected.get("num_warm_start", 0)):
        jsonl = out / f"{split}.jsonl"
        if not (jsonl.is_file() and (out / f"{split}.yaml").is_file()):
            return False
        if not all((out / json.loads(line)["video"]).is_file() for line in jsonl.read_text().splitlines()):
            return False
    return True


def sample_scene(event: Event, rng: np.random.Generator) -> tuple[float, float]:
    """The scene holding `event`: SCENE_LENGTHS long, the event anywhere inside it, moved inside the video."""
    length = float(rng.choice(SCENE_LENGTHS))
    before = float(rng.choice(np.arange(SCENE_EDGE, length - (event.end - event.start) - SCENE_EDGE + 0.25, 0.5)))
    # A scene that would begin before the video (or end after it) is moved in whole: it keeps its length, so the
    # overview still has a frame in it, and still holds the event.
    start = min(max(event.start - before, 0.0), float(event.duration) - length)
    return start, start + length


def render_long_frames(event: Event, scene: tuple[float, float]) -> np.ndarray:
    """The event's frames at FPS with the scene's background tinted (the shape drawn over it)."""
    frames = render_frames(event, FPS)
    times = np.arange(len(frames)) / FPS
    in_scene = (times >= scene[0]) & (times < scene[1])
    background = (frames[in_scene] == event.background).all(axis=-1, keepdims=True)
    frames[in_scene] = np.where(background, np.array(SCENE_TINT, np.uint8), frames[in_scene])
    return frames


def make_long_item(out: Path, seed: int, job: tuple[str, int]) -> dict:
    """Write long video `i` of `split` under OUT; its canonical record."""
    split, i = job
    event = sample_event(np.random.default_rng([seed, STREAMS[split], i]), DURATIONS)
    # Its own stream: the events stay those of version 1.
    scene = sample_scene(event, np.random.default_rng([seed, STREAMS[split], i, 1]))
    video = f"videos/{split}/{i:05d}.mp4"
    write_mp4(out / video, render_long_frames(event, scene), FPS, keyframe_interval=KEYFRAME_SECONDS * FPS)
    return {**record(event, f"{NAME}_{split}_{i:05d}", video), "source": NAME}


def generate_long(out: Path, num_train: int = 200, num_val: int = 32, seed: int = 0, force: bool = False,
                  workers: int = 1, num_warm_start: int = 0) -> bool:
    """Write long videos, train/val (and warm_start) JSONL and data_configs under OUT; return False when an
    identical dataset was kept."""  # fmt: skip
    import yaml

    expected = manifest(num_train, num_val, seed, num_warm_start)
    if not demo_data.prepare_output(out, is_complete(out, expected), force, ("videos",)):
        return False
    counts = {"train": num_train, "val": num_val, WARM_START: num_warm_start}
    for split in splits(num_warm_start):
        jobs = [(split, i) for i in range(counts[split])]
        rows = demo_data.run_jobs(partial(make_long_item, out, seed), jobs, workers, f"make-demo-data --long {split}")
        with open(out / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        with open(out / f"{split}.yaml", "w") as f:
            yaml.safe_dump(demo_data.data_config(f"{split}.jsonl", ".", NAME), f, sort_keys=False)
    (out / "manifest.json").write_text(json.dumps(expected, indent=2) + "\n")
    return True


def run_long(args: argparse.Namespace) -> int:
    """Generate the long demo dataset (`make-demo-data OUT --long`)."""
    if generate_long(args.out, args.num_train, args.num_val, args.seed, args.force, args.workers, args.num_warm_start):
        warm = f", {args.out}/warm_start.yaml" if args.num_warm_start else ""
        print(f"make-demo-data: wrote {args.out}/train.yaml and {args.out}/val.yaml{warm} "
              f"({DURATIONS[0]}-{DURATIONS[-1]} s videos at {FPS} fps; experiment=tiny_tvg_search_cpu or "
              "tiny_tvg_longsingle_cpu)")
    else:
        print(f"make-demo-data: {args.out} already holds this dataset (use --force to rebuild)")
    return 0
