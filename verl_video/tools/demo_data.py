"""`verl-video make-demo-data OUT`: short generated videos in which a coloured shape is visible during a known window.

Each video is a dark background on which one coloured shape is visible during [start, end) and absent
otherwise. Windows start and end on half seconds, so a model that sees the video at 2 fps can locate
them exactly. The output is canonical JSONL (train/val), the mp4 files, and one data_config per split.

With `--num-warm-start N` a third split of N other videos is written for a supervised warm start, twice:
`warm_start.jsonl` with the exact windows, and `warm_start_lagged.jsonl` with every window LAG seconds late (cut at
the video's end), as weak labels often are (a narration follows what it describes). The CPU demo's warm start
ends on the lagged labels, so its model localises but answers late, an error that GRPO's reward (exact windows)
exposes (README: The CPU demo).

The same videos also carry a record of every other built-in task, and tracking gets its own videos:
    mcq          "What colour is the <shape>?" with four colour options
    grounded_qa  "Which colour is the <shape>, and when is it visible?" with the visible window as evidence
    tracking     a folder of frame images (10 fps) in which a coloured square moves along a straight line from
                 one corner region to another; its 8 boxes are the square's exact extent in the frames
                 `box_frames: videochat_r1` names (tasks/tracking.py)
`<split>_<task>.jsonl` holds them and `<split>_mix.yaml` lists all four tasks as one mixture.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from verl_video.annotations.records import DEFAULT_FRAME_RATE_KEY, DEFAULT_TASK
from verl_video.tasks.grounded_qa import GroundedQA
from verl_video.tasks.mcq import MultipleChoice
from verl_video.tasks.tracking import DEFAULT_BOX_FRAMES, Tracking, box_frame_indices

# Frame geometry and rate: small enough that a CPU decodes and the vision tower embeds a video in milliseconds.
WIDTH = HEIGHT = 112
FPS = 10
DURATIONS = tuple(range(8, 17))  # seconds, integers
MIN_EVENT, MAX_EVENT = 2.0, 6.0  # event length bounds, seconds
LAG = 1.0  # seconds by which the lagged warm-start labels are late
SHAPE_SIZE = 36  # pixels, the side of the shape's bounding box
# Bumped whenever the generator changes, so an old output directory is not mistaken for a current one.
GENERATOR_VERSION = 4
# Tracking videos: frames, boxes and how many options a colour question offers.
TRACK_FRAMES = (40, 80)  # frame count range at FPS (4 to 8 s)
# VideoChat-R1's GOT-10k records have 8 boxes (7 asked: ~225 tokens of the tiny tokenizer, which spells digits one by
# one). 4 boxes (3 asked, ~115 tokens) fit tiny_tasks_cpu's response length, so a rollout can close its answer.
TRACK_BOXES = 4
TRACK_SIZE = 24  # pixels, the side of the moving square
NUM_OPTIONS = 4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 200, 60),
    "blue": (40, 90, 240),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
}
SHAPES = ("square", "circle", "triangle")
# Centre of the shape's bounding box, as fractions of the frame.
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
    "centre": (0.5, 0.5),
}
PHRASINGS = (
    "a {colour} {shape} appears in the {position}",
    "the {colour} {shape} is visible in the {position}",
    "a {colour} {shape} shows up in the {position}",
)
SPLITS = ("train", "val")
WARM_START = "warm_start"
# Each split draws from its own random stream: train from 0 and val from 1, as up to generator version 3. With a
# warm-start split, the warm start takes stream 0 (so its videos are the ones the demo's warm start was measured
# on, docs/experiments.md) and train moves to stream 2, so GRPO trains on other videos than the warm start.
STREAMS = {WARM_START: 0, "val": 1, "train": 0}
TRAIN_BESIDE_WARM_START = 2


def stream(split: str, with_warm_start: bool) -> int:
    """The random stream a split's videos are drawn from."""
    return TRAIN_BESIDE_WARM_START if split == "train" and with_warm_start else STREAMS[split]


@dataclass(frozen=True)
class Event:
    """One demo video: a shape of a colour at a position, visible during [start, end)."""

    colour: str
    shape: str
    position: str
    start: float
    end: float
    duration: int
    background: int  # grey level of the background
    phrasing: int

    @property
    def query(self) -> str:
        """The sentence that describes the event."""
        return PHRASINGS[self.phrasing].format(colour=self.colour, shape=self.shape, position=self.position)


def all_queries() -> list[str]:
    """Every query the generator can produce (the tiny tokenizer's corpus uses them)."""
    return [
        phrasing.format(colour=colour, shape=shape, position=position)
        for phrasing in PHRASINGS
        for colour in COLOURS
        for shape in SHAPES
        for position in POSITIONS
    ]


def explain(query: str) -> str:
    """A short reasoning sentence for a demo query, e.g. 'the red square is visible.'."""
    colour = next((c for c in COLOURS if f" {c} " in f" {query} "), None)
    shape = next((s for s in SHAPES if f" {s} " in f" {query} "), None)
    if colour is None or shape is None:
        return "the event is visible."
    return f"the {colour} {shape} is visible."


def sample_event(rng: np.random.Generator, durations: tuple[int, ...] = DURATIONS) -> Event:
    """Draw one event with half-second boundaries that fits inside its video (a duration from `durations`)."""
    duration = int(rng.choice(durations))
    length = float(rng.choice(np.arange(MIN_EVENT, MAX_EVENT + 0.25, 0.5)))
    start = float(rng.choice(np.arange(0.0, duration - length + 0.25, 0.5)))
    return Event(
        colour=str(rng.choice(list(COLOURS))),
        shape=str(rng.choice(SHAPES)),
        position=str(rng.choice(list(POSITIONS))),
        start=start,
        end=start + length,
        duration=duration,
        background=int(rng.integers(15, 60)),
        phrasing=int(rng.integers(len(PHRASINGS))),
    )


def shape_mask(event: Event) -> np.ndarray:
    """Boolean HxW mask of the event's shape."""
    cx, cy = POSITIONS[event.position]
    cx, cy, r = cx * WIDTH, cy * HEIGHT, SHAPE_SIZE / 2
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    dx, dy = xx - cx, yy - cy
    if event.shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if event.shape == "circle":
        return dx**2 + dy**2 <= r**2
    # Upright isosceles triangle: apex at the top centre, base on the bottom edge of the box.
    inside_height = (dy >= -r) & (dy <= r)
    half_width = (dy + r) / 2
    return inside_height & (np.abs(dx) <= half_width)


def render_frames(event: Event, fps: int = FPS) -> np.ndarray:
    """All frames of the event's video at `fps` as uint8 (T, H, W, 3)."""
    times = np.arange(event.duration * fps) / fps
    frames = np.full((len(times), HEIGHT, WIDTH, 3), event.background, dtype=np.uint8)
    visible = (times >= event.start) & (times < event.end)
    frames[visible] = np.where(shape_mask(event)[..., None], np.array(COLOURS[event.colour], np.uint8), frames[visible])
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS, keyframe_interval: int | None = None) -> None:
    """Encode uint8 RGB frames as H.264 mp4 (one encoder thread, so reruns normally give the same bytes); at most
    `keyframe_interval` frames between keyframes when given (x264's default otherwise)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    # One encoder thread: x264's output then depends only on the input, so reruns give identical files.
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if keyframe_interval is not None:
            stream.codec_context.gop_size = keyframe_interval
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def record(event: Event, sample_id: str, video: str) -> dict:
    """The canonical JSONL record of one demo video."""
    return {
        "id": sample_id,
        "video": video,
        "query": event.query,
        "timestamps": [[event.start, event.end]],
        "duration": float(event.duration),
        "task": DEFAULT_TASK,
        "source": "demo",
        # The reasoning a supervised cold start puts inside <think> (verl_video/pipeline/sft_dataset.py).
        "reasoning": explain(event.query),
    }


def colour_options(event: Event, rng: np.random.Generator) -> tuple[list[str], int]:
    """Four colour names (the event's among them, at a random place) and the index of the right one."""
    others = [c for c in COLOURS if c != event.colour]
    options = [str(c) for c in rng.choice(others, NUM_OPTIONS - 1, replace=False)]
    answer = int(rng.integers(NUM_OPTIONS))
    options.insert(answer, event.colour)
    return options, answer


def qa_records(event: Event, sample_id: str, video: str, rng: np.random.Generator) -> dict[str, dict]:
    """The multiple-choice and grounded-QA records of one demo video, by task name."""
    options, answer = colour_options(event, rng)
    base = {"video": video, "options": options, "answer": "ABCD"[answer], "duration": float(event.duration), "source": "demo",
            "reasoning": explain(event.query)}  # fmt: skip
    return {
        MultipleChoice.name: {**base, "id": f"{sample_id}_mcq", "task": MultipleChoice.name,
                              "query": f"What colour is the {event.shape}?"},
        GroundedQA.name: {**base, "id": f"{sample_id}_gqa", "task": GroundedQA.name,
                          "query": f"Which colour is the {event.shape}, and when is it visible?",
                          "timestamps": [[event.start, event.end]]},
    }  # fmt: skip


@dataclass(frozen=True)
class Track:
    """One tracking video: a square of a colour moving in a straight line from `begin` to `end` (pixel centres)."""

    colour: str
    num_frames: int
    begin: tuple[float, float]
    end: tuple[float, float]
    background: int

    def centre(self, frame: int) -> tuple[float, float]:
        """The square's centre (pixels) in `frame`: linear from begin (frame 0) to end (the last frame)."""
        f = frame / (self.num_frames - 1)
        return self.begin[0] + f * (self.end[0] - self.begin[0]), self.begin[1] + f * (self.end[1] - self.begin[1])

    def box(self, frame: int) -> list[float]:
        """The square's normalised [x0, y0, x1, y1] in `frame` (the pixels it covers, exactly)."""
        x0, y0 = self._corner(frame)
        return [x0 / WIDTH, y0 / HEIGHT, (x0 + TRACK_SIZE) / WIDTH, (y0 + TRACK_SIZE) / HEIGHT]

    def _corner(self, frame: int) -> tuple[int, int]:
        cx, cy = self.centre(frame)
        return int(round(cx - TRACK_SIZE / 2)), int(round(cy - TRACK_SIZE / 2))

    def frames(self) -> np.ndarray:
        """All frames as uint8 (T, H, W, 3)."""
        frames = np.full((self.num_frames, HEIGHT, WIDTH, 3), self.background, dtype=np.uint8)
        for i in range(self.num_frames):
            x0, y0 = self._corner(i)
            frames[i, y0 : y0 + TRACK_SIZE, x0 : x0 + TRACK_SIZE] = COLOURS[self.colour]
        return frames


def sample_track(rng: np.random.Generator) -> Track:
    """A square crossing from one corner region towards the opposite one, staying inside the frame."""
    margin = TRACK_SIZE / 2 + 2
    low, high = margin, WIDTH - margin
    begin = (float(rng.uniform(low, WIDTH / 2)), float(rng.uniform(low, HEIGHT / 2)))
    end = (float(rng.uniform(WIDTH / 2, high)), float(rng.uniform(HEIGHT / 2, high)))
    if rng.random() < 0.5:  # half of them move right to left
        begin, end = (end[0], begin[1]), (begin[0], end[1])
    return Track(
        colour=str(rng.choice(list(COLOURS))), num_frames=int(rng.integers(TRACK_FRAMES[0], TRACK_FRAMES[1] + 1)),
        begin=begin, end=end, background=int(rng.integers(15, 60)),
    )  # fmt: skip


def tracking_record(track: Track, sample_id: str, video: str) -> dict:
    """The canonical tracking record: the square's boxes in the frames `box_frames` assigns to them."""
    frames = box_frame_indices(track.num_frames, TRACK_BOXES, DEFAULT_BOX_FRAMES)
    return {
        "id": sample_id, "video": video, "task": Tracking.name, "query": f"{track.colour} square",
        "boxes": [[round(v, 4) for v in track.box(f)] for f in frames], "box_frames": DEFAULT_BOX_FRAMES,
        DEFAULT_FRAME_RATE_KEY: float(FPS), "source": "demo",
        # Every task's record carries reasoning: a think-template cold start leaves out records without it.
        "reasoning": f"the {track.colour} square moves in a straight line.",
    }  # fmt: skip


def write_frame_folder(folder: Path, frames: np.ndarray) -> None:
    """Frames as lossless PNG images named like GOT-10k's (00000001.png, ...)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i + 1:08d}.png")


def data_config(json_path: str, data_folder: str, name: str = "demo") -> dict:
    """A data_config with one demo dataset; paths are relative to the YAML file."""
    return {"datasets": [{"name": name, "json_path": json_path, "data_folder": data_folder, "task": DEFAULT_TASK}]}


def mixture_config(split: str) -> dict:
    """A data_config of all four demo tasks over one split, equal weights."""
    entries = [{"name": "demo", "json_path": f"{split}.jsonl", "data_folder": ".", "task": DEFAULT_TASK}]
    for task in (MultipleChoice.name, GroundedQA.name, Tracking.name):
        entries.append({"name": f"demo_{task}", "json_path": f"{split}_{task}.jsonl", "data_folder": ".", "format": "canonical",
                        "task": task})  # fmt: skip
    return {"datasets": entries}


def manifest(num_train: int, num_val: int, seed: int, num_warm_start: int = 0) -> dict:
    """What determines the output; a directory with the same manifest need not be regenerated."""
    return {"generator_version": GENERATOR_VERSION, "num_train": num_train, "num_val": num_val,
            "num_warm_start": num_warm_start, "seed": seed}  # fmt: skip


LAGGED = f"{WARM_START}_lagged"


def lagged(row: dict, lag: float = LAG) -> dict:
    """A grounding record whose window is `lag` seconds late, its end cut at the video's end."""
    (start, end), duration = row["timestamps"][0], row["duration"]
    return {**row, "timestamps": [[start + lag, min(end + lag, duration)]]}


def written_splits(expected: dict) -> list[str]:
    """The splits a manifest's dataset holds: train and val, and the warm-start slice when it has videos."""
    return list(SPLITS) + ([WARM_START] if expected.get("num_warm_start") else [])


def is_complete(out: Path, expected: dict) -> bool:
    """Whether OUT holds a finished dataset made with these parameters."""
    path = out / "manifest.json"
    if not path.is_file() or json.loads(path.read_text()) != expected:
        return False
    for split in written_splits(expected):
        jsonl = out / f"{split}.jsonl"
        configs = [f"{split}.yaml"] + ([f"{split}_mix.yaml"] if split in SPLITS else [f"{LAGGED}.yaml"])
        if not jsonl.is_file() or not all((out / name).is_file() for name in configs):
            return False
        if not all((out / json.loads(line)["video"]).is_file() for line in jsonl.read_text().splitlines()):
            return False
    return True


def make_item(out: Path, seed: int, job: tuple[str, int, int]) -> list[tuple[tuple[str, str], dict]]:
    """Write video `i` of `split`, drawn from random stream `stream_id`, (and its tracking frames) under OUT; its
    records as ((split, task), record)."""
    split, i, stream_id = job
    # Each split draws from its own stream, so adding val videos never changes the train set; the other
    # tasks draw from streams of their own, so the grounding records stay what version 1 wrote.
    rng = np.random.default_rng([seed, stream_id, i])
    event = sample_event(rng)
    video = f"videos/{split}/{i:05d}.mp4"
    write_mp4(out / video, render_frames(event))
    sample_id = f"demo_{split}_{i:05d}"
    rows = [((split, DEFAULT_TASK), record(event, sample_id, video))]
    if split == WARM_START:
        return rows  # grounding only; its lagged copy is written with the records
    task_rng = np.random.default_rng([seed, stream_id, i, 1])
    rows += [((split, task), qa) for task, qa in qa_records(event, sample_id, video, task_rng).items()]
    track = sample_track(task_rng)
    folder = f"frames/{split}/{i:05d}"
    write_frame_folder(out / folder, track.frames())
    rows.append(((split, Tracking.name), tracking_record(track, f"{sample_id}_track", folder)))
    return rows


def default_workers() -> int:
    """Processes for writing videos: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def prepare_output(out: Path, complete: bool, force: bool, folders: tuple[str, ...]) -> bool:
    """Ready OUT for a new dataset (its `folders` emptied when forced); False when it already holds a `complete` one."""
    if complete and not force:
        return False
    if (out / "manifest.json").exists() and not force:
        raise FileExistsError(f"{out}/manifest.json was made with other parameters; pass --force to replace it")
    for folder in folders:
        if force and (out / folder).is_dir():
            shutil.rmtree(out / folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # written last: its presence marks a finished dataset
    return True


def run_jobs(fn: Callable[[Any], Any], jobs: list, workers: int, desc: str) -> list:
    """`fn` of every job, in job order, in `workers` processes (one: in this process), with a progress bar."""
    from tqdm import tqdm

    with contextlib.ExitStack() as stack:
        # One worker: in this process (no pool to start, and errors keep their traceback).
        pool_map = map if workers <= 1 else partial(stack.enter_context(ProcessPoolExecutor(workers)).map, chunksize=8)
        return list(tqdm(pool_map(fn, jobs), total=len(jobs), desc=desc, unit="video"))


def generate(out: Path, num_train: int = 200, num_val: int = 32, seed: int = 0, force: bool = False,
             workers: int = 1, num_warm_start: int = 0) -> bool:
    """Write videos, train/val (and warm-start) JSONL and data_configs under OUT (in `workers` processes); return
    False when an identical dataset was kept."""
    import yaml

    expected = manifest(num_train, num_val, seed, num_warm_start)
    if not prepare_output(out, is_complete(out, expected), force, ("videos", "frames")):
        return False
    counts = {"train": num_train, "val": num_val, WARM_START: num_warm_start}
    splits = written_splits(expected)
    jobs = [(split, i, stream(split, WARM_START in splits)) for split in splits for i in range(counts[split])]
    records: dict[tuple[str, str], list[dict]] = {}
    # Each video is drawn from its own seed, so the workers' output (collected in job order) is the same files
    # and records as one process writes.
    for item_records in run_jobs(partial(make_item, out, seed), jobs, workers, "make-demo-data"):
        for key, row in item_records:
            records.setdefault(key, []).append(row)

    if (WARM_START, DEFAULT_TASK) in records:
        records[(LAGGED, DEFAULT_TASK)] = [lagged(row) for row in records[(WARM_START, DEFAULT_TASK)]]
    for (split, task), rows in records.items():
        name = f"{split}.jsonl" if task == DEFAULT_TASK else f"{split}_{task}.jsonl"
        with open(out / name, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    for split in written_splits(expected) + ([LAGGED] if WARM_START in written_splits(expected) else []):
        with open(out / f"{split}.yaml", "w") as f:
            yaml.safe_dump(data_config(f"{split}.jsonl", "."), f, sort_keys=False)
        if split not in SPLITS:
            continue
        with open(out / f"{split}_mix.yaml", "w") as f:
            yaml.safe_dump(mixture_config(split), f, sort_keys=False)
    (out / "manifest.json").write_text(json.dumps(expected, indent=2) + "\n")
    return True


def digest(out: Path) -> str:
    """A hash of every JSONL line and video byte under OUT (used to check determinism)."""
    h = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.suffix in (".jsonl", ".mp4", ".png")):
        h.update(path.relative_to(out).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video make-demo-data`."""
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--num-train", type=int, default=200, help="number of training videos")
    parser.add_argument("--num-val", type=int, default=32, help="number of validation videos")
    parser.add_argument("--num-warm-start", type=int, default=0,
                        help="videos for a warm start (warm_start.yaml, and warm_start_lagged.yaml with every "
                             f"window {LAG:g} s late; with --long warm_start.yaml only), 0 for none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long", action="store_true",
                        help="120-300 s videos with a 2-6 s event to find (verl_video/tools/long_demo_data.py), "
                             "train and val only")
    parser.add_argument("--force", action="store_true", help="rebuild even if OUT already holds this dataset")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes writing videos (default: the cores, at most 4); the output is the same")


def run(args: argparse.Namespace) -> int:
    """Generate the demo dataset."""
    if args.long:
        from verl_video.tools.long_demo_data import run_long  # it builds on this module

        return run_long(args)
    if generate(args.out, args.num_train, args.num_val, args.seed, args.force, args.workers, args.num_warm_start):
        slice_note = f", {args.out}/warm_start.yaml and warm_start_lagged.yaml (warm start)" if args.num_warm_start else ""
        print(f"make-demo-data: wrote {args.out}/train.yaml and {args.out}/val.yaml (grounding), "
              f"{args.out}/train_mix.yaml and {args.out}/val_mix.yaml (all four tasks){slice_note}")
    else:
        print(f"make-demo-data: {args.out} already holds this dataset (use --force to rebuild)")
    return 0
