"""Demo videos show their event exactly during the annotated window; records, configs and reruns are stable."""

from __future__ import annotations

import json
from types import SimpleNamespace

import av
import numpy as np
import pytest
import yaml

from verl_video.tools.demo_data import COLOURS, FPS, HEIGHT, POSITIONS, WIDTH, digest, generate

CANONICAL_KEYS = {"id", "video", "query", "timestamps", "duration", "task", "source"}
# The reasoning text a supervised warm start puts inside <think> (an extra field canonical records may carry).
EXTRA_KEYS = {"reasoning"}


def read(path) -> list[dict]:
    """The records of a JSONL file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def decoded_frames(path) -> list[tuple[float, np.ndarray]]:
    """(seconds, RGB frame) for every frame of a video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]


def named(query: str, names) -> str:
    """The one name from `names` that the query mentions."""
    (found,) = [n for n in names if f" {n}" in f" {query}"]
    return found


@pytest.mark.parametrize("split,count", [("train", 4), ("val", 2)])
def test_records_follow_the_canonical_schema(demo_dir, split: str, count: int) -> None:
    records = read(demo_dir / f"{split}.jsonl")
    assert len(records) == count
    for r in records:
        assert set(r) == CANONICAL_KEYS | EXTRA_KEYS and r["task"] == "tvg" and r["source"] == "demo"
        assert r["reasoning"].strip()
        (start, end), duration = r["timestamps"][0], r["duration"]
        assert 0 <= start < end <= duration and 8 <= duration <= 16
        assert (2 * start).is_integer() and (2 * end).is_integer()
        assert (demo_dir / r["video"]).is_file() and r["query"]
    assert len({r["id"] for r in records}) == count


def test_data_configs_point_at_the_records(demo_dir) -> None:
    for split in ("train", "val"):
        config = yaml.safe_load((demo_dir / f"{split}.yaml").read_text())
        (entry,) = config["datasets"]
        assert entry["name"] == "demo" and entry["task"] == "tvg"
        records = read(demo_dir / entry["json_path"])
        assert all((demo_dir / entry["data_folder"] / r["video"]).is_file() for r in records)


def test_event_is_visible_exactly_during_its_window(demo_dir) -> None:
    for r in read(demo_dir / "train.jsonl"):
        (start, end), query = r["timestamps"][0], r["query"]
        colour = np.array(COLOURS[named(query, COLOURS)], dtype=float)
        cx, cy = POSITIONS[named(query, POSITIONS)]
        frames = decoded_frames(demo_dir / r["video"])
        assert len(frames) == r["duration"] * FPS and frames[0][1].shape == (HEIGHT, WIDTH, 3)
        for t, frame in frames:
            # A 5x5 patch inside every shape (square, circle, triangle) near the centre of its box.
            patch = frame[int(cy * HEIGHT) : int(cy * HEIGHT) + 5, int(cx * WIDTH) - 2 : int(cx * WIDTH) + 3]
            distance = np.abs(patch.reshape(-1, 3).mean(0) - colour).max()
            if start <= t < end:
                assert distance < 25, f"{r['video']}: shape missing at {t:.1f}s"
            else:
                assert distance > 80, f"{r['video']}: shape visible at {t:.1f}s outside [{start}, {end})"


def test_generation_is_deterministic_and_idempotent(tmp_path, demo_dir) -> None:
    again = tmp_path / "again"
    # The session's demo data was written by one process; this copy by two.
    assert generate(again, num_train=4, num_val=2, seed=0, workers=2) is True
    # Same records (every task's), and videos that decode to the same pictures. Bytes are compared only loosely:
    # in a long test session the H.264 stream once differed in 2 bytes of one frame (same size, same content).
    names = sorted(path.name for path in demo_dir.glob("*.jsonl"))
    assert names == sorted(path.name for path in again.glob("*.jsonl")) and len(names) >= 2
    for name in names:
        assert read(again / name) == read(demo_dir / name), name
    for video in sorted((demo_dir / "videos").rglob("*.mp4")):
        first, second = decoded_frames(video), decoded_frames(again / video.relative_to(demo_dir))
        assert [t for t, _ in first] == [t for t, _ in second]
        worst = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for (_, a), (_, b) in zip(first, second))
        assert worst <= 8, f"{video.name}: decoded frames differ by up to {worst} levels"
    stamp = (again / "train.jsonl").stat().st_mtime_ns
    assert generate(again, num_train=4, num_val=2, seed=0) is False
    assert (again / "train.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="--force"):
        generate(again, num_train=4, num_val=2, seed=1)
    assert generate(again, num_train=4, num_val=2, seed=1, force=True) is True
    assert digest(again) != digest(demo_dir)


def test_val_split_does_not_depend_on_train_size(tmp_path, demo_dir) -> None:
    other = tmp_path / "other"
    generate(other, num_train=1, num_val=2, seed=0)
    assert read(other / "val.jsonl") == read(demo_dir / "val.jsonl")


def test_choice_records_name_the_shown_colour(demo_dir) -> None:
    videos = {r["video"]: r for r in read(demo_dir / "train.jsonl")}
    for task in ("mcq", "grounded_qa"):
        for r in read(demo_dir / f"train_{task}.jsonl"):
            grounding = videos[r["video"]]
            colour = named(grounding["query"], COLOURS)
            assert r["options"]["ABCD".index(r["answer"])] == colour and len(set(r["options"])) == 4
            if task == "grounded_qa":
                assert r["timestamps"] == grounding["timestamps"]  # the evidence is the visible window


def square_box(frame: np.ndarray, colour: tuple[int, int, int]) -> list[float]:
    """Normalised [x0, y0, x1, y1] of the pixels of `colour` in an H x W x 3 frame."""
    close = np.abs(frame.astype(int) - np.array(colour)).max(axis=2) < 60
    ys, xs = np.nonzero(close)
    height, width = frame.shape[:2]
    return [xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height]


def test_tracking_shows_exactly_the_annotated_frames_and_the_boxes_line_up(demo_dir) -> None:
    from verl_video.annotations.formats import read_annotations
    from verl_video.video.probe import probe_video
    from verl_video.video.settings import VideoBudget
    from verl_video.video.decode import decode_video
    from verl_video.rewards.boxes import box_iou
    from verl_video.tasks import get_task

    budget = VideoBudget(total_pixels=8 * 112 * 112, max_pixels=112 * 112)  # frames keep their 112 x 112 size
    for record in read_annotations(str(demo_dir / "train_tracking.jsonl")):
        task = get_task(record.task)
        folder = str(demo_dir / record.video)
        total = probe_video(folder, record.extra["frame_rate"]).num_frames
        indices = task.frame_indices(record, total)
        asked = len(record.extra["boxes"]) - 1
        # VideoChat-R1's frames: the first, int(i * (n - 1) / (asked - 1)) between, the last.
        assert indices == [int(i * (total - 1) / (asked - 1)) for i in range(asked)] and indices[-1] == total - 1
        video = decode_video(folder, budget, frame_rate=record.extra["frame_rate"], frame_indices=tuple(indices))
        truth = task.ground_truth(record, None)
        colour = COLOURS[record.query.split()[0]]
        shown = [square_box(frame.permute(1, 2, 0).numpy(), colour) for frame in video.frames]
        # Frames come in pairs: an odd count repeats the last.
        assert len(truth["boxes"]) == len(indices) == asked and video.frames.shape[0] == asked + asked % 2
        for j, box in enumerate(truth["boxes"]):
            assert box_iou(shown[j], box) > 0.95, (record.id, j, shown[j], box)
        # The box the prompt gives is the square in the folder's first frame, and the square moves.
        assert box_iou(shown[0], truth["first_box"]) > 0.95 and box_iou(shown[0], shown[asked - 1]) < 0.2


def test_every_tasks_reference_answer_fits_the_mixture_experiments_response_length(demo_dir) -> None:
    # A reference answer longer than the rollout may write is cut before </answer>: every rollout of that
    # task then scores 0 and GRPO gets no signal from it (the 8-box tracking demo took 225 tokens of 160).
    from verl_video.pipeline.items import load_items
    from verl_video.pipeline.run_settings import settings_from_defaults
    from verl_video.tasks import get_task
    from verl_video.tools.tiny_model import build_tokenizer
    from verl_video.tools.warm_start import target_text

    settings = settings_from_defaults(["experiment=tiny_tasks_cpu"])
    tokenizer = build_tokenizer()
    longest = {}
    for item in load_items([str(demo_dir / "train_mix.yaml")], settings.video):
        record = item.record
        text = target_text(SimpleNamespace(item=item, duration=record.duration))
        assert get_task(record.task).reference_answer(record, record.duration) in text
        longest[record.task] = max(longest.get(record.task, 0), len(tokenizer(text)["input_ids"]) + 1)  # + EOS
    assert set(longest) == {"tvg", "mcq", "grounded_qa", "tracking"}
    # A margin for what a sampled answer adds (a longer number, a space).
    assert all(n <= 0.8 * settings.max_response_length for n in longest.values()), (longest, settings.max_response_length)


def test_verls_warm_start_keeps_every_tasks_records(demo_dir) -> None:
    # verl's SFT dataset leaves out think-template records without reasoning; the demo's MCQ and tracking
    # records had none, so the default warm start never showed the model their answer form and GRPO got
    # all-zero groups for them.
    from verl_video.pipeline.items import load_items
    from verl_video.pipeline.run_settings import settings_from_defaults
    from verl_video.pipeline.sft_dataset import answer_text

    settings = settings_from_defaults(["experiment=tiny_tasks_cpu"])
    items = load_items([str(demo_dir / "train_mix.yaml")], settings.video)
    kept = {item.record.task for item in items if answer_text(item.record, settings.video.prompt_template)}
    assert kept == {"tvg", "mcq", "grounded_qa", "tracking"}



def test_the_warm_start_split_is_written_exact_and_lagged(tmp_path) -> None:
    from verl_video.tools.demo_data import LAG

    out = tmp_path / "data"
    generate(out, num_train=3, num_val=2, seed=0, num_warm_start=6)
    exact, late = read(out / "warm_start.jsonl"), read(out / "warm_start_lagged.jsonl")
    assert len(exact) == len(late) == 6
    for a, b in zip(exact, late):
        (s, e), (ls, le) = a["timestamps"][0], b["timestamps"][0]
        assert a["video"] == b["video"] and ls == s + LAG and le == min(e + LAG, a["duration"]) and ls < le
    for name in ("warm_start", "warm_start_lagged"):
        (entry,) = yaml.safe_load((out / f"{name}.yaml").read_text())["datasets"]
        assert entry["json_path"] == f"{name}.jsonl" and entry["task"] == "tvg"
    # The warm start takes the stream train draws from without it (the same videos), and train moves to another.
    plain = tmp_path / "plain"
    generate(plain, num_train=6, num_val=2, seed=0)
    plain_train = read(plain / "train.jsonl")
    assert [(r["query"], r["timestamps"]) for r in exact] == [(r["query"], r["timestamps"]) for r in plain_train]
    assert [r["timestamps"] for r in read(out / "train.jsonl")] != [r["timestamps"] for r in plain_train[:3]]
    assert read(out / "val.jsonl") == read(plain / "val.jsonl") and not (plain / "warm_start.jsonl").exists()
    assert not (out / "warm_start_mix.yaml").exists()
    assert generate(out, num_train=3, num_val=2, seed=0, num_warm_start=6) is False  # complete: kept
