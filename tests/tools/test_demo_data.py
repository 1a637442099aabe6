"""Demo videos show their event exactly during the annotated window; records, configs and reruns are stable."""

from __future__ import annotations

import json

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
    assert generate(again, num_train=4, num_val=2, seed=0) is True
    # Same records, and videos that decode to the same pictures. Bytes are compared only loosely: in a
    # long test session the H.264 stream once differed in 2 bytes of one frame (same size, same content).
    for split in ("train", "val"):
        assert read(again / f"{split}.jsonl") == read(demo_dir / f"{split}.jsonl")
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
