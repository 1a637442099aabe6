"""Long demo videos (`make-demo-data OUT --long`): a short event at its annotated window in minutes of video, cheap
zoom windows, and the two experiments that use them: the search loop's budgets fit, the single pass sees as much."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from test_demo_data import CANONICAL_KEYS, EXTRA_KEYS, named, read

from verl_video.models.family import video_geometry
from verl_video.tools.demo_data import COLOURS, HEIGHT, MAX_EVENT, MIN_EVENT, POSITIONS, WIDTH, digest, sample_event
from verl_video.tools.demo_data import run as make_demo_data
from verl_video.tools.long_demo_data import (
    DURATIONS, FPS, KEYFRAME_SECONDS, SCENE_EDGE, SCENE_LENGTHS, SCENE_TINT, STREAMS, generate_long, sample_scene,
)
from verl_video.video import decode
from verl_video.video.sampling_plan import plan_sampling
from verl_video.video.settings import VideoBudget, settings_from_config
from verl_video.video.windows import decode_window, plan_window

# The search loop's scripted policy (tests/data/test_search_agent_loop.py), as tests/e2e/conftest.py reaches it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

SEARCH, SINGLE = "experiment=tiny_tvg_search_cpu", "experiment=tiny_tvg_longsingle_cpu"
FAMILIES = ("qwen3_vl", "qwen2_5_vl")


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory) -> Path:
    """3 training and 2 validation long videos."""
    out = tmp_path_factory.mktemp("long") / "data"
    generate_long(out, num_train=3, num_val=2, seed=0)
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def family(request) -> str:
    """Each family the tiny model is built in (its HF model_type)."""
    return request.param


@pytest.fixture(scope="module")
def processor(family: str):
    """The tiny model's processor of the family (no weights)."""
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    return build_processor(build_tokenizer(), family)


def experiment(*overrides: str):
    """The trainer config as `python -m verl_video.main` composes it."""
    from verl_video.verl_adapter.driver import CONFIG_DIR

    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        return compose(config_name="video_grpo", overrides=["actor_rollout_ref.rollout.name=hf", *overrides])


def test_records_follow_the_canonical_schema(long_dir) -> None:
    for split, count in (("train", 3), ("val", 2)):
        records = read(long_dir / f"{split}.jsonl")
        assert len(records) == count and len({r["id"] for r in records}) == count
        for r in records:
            assert set(r) == CANONICAL_KEYS | EXTRA_KEYS and r["task"] == "tvg" and r["source"] == "demo_long"
            (start, end), duration = r["timestamps"][0], r["duration"]
            assert DURATIONS[0] <= duration <= DURATIONS[-1] and 0 <= start < end <= duration
            assert MIN_EVENT <= end - start <= MAX_EVENT and (2 * start).is_integer() and (2 * end).is_integer()
            assert (long_dir / r["video"]).is_file()


def shape_distance(frame: np.ndarray, query: str) -> float:
    """How far the patch inside the query's shape is from the query's colour (test_demo_data's patch)."""
    colour = np.array(COLOURS[named(query, COLOURS)], dtype=float)
    cx, cy = POSITIONS[named(query, POSITIONS)]
    patch = frame[int(cy * HEIGHT) : int(cy * HEIGHT) + 5, int(cx * WIDTH) - 2 : int(cx * WIDTH) + 3]
    return float(np.abs(patch.reshape(-1, 3).mean(0) - colour).max())


def test_event_is_visible_exactly_in_its_window(long_dir) -> None:
    """Frames half a second either side of each boundary, decoded as a zoom window decodes them."""
    budget = VideoBudget(fps=2.0, max_frames=64, min_frames=2, total_pixels=64 * 12544, max_pixels=12544)
    for r in read(long_dir / "train.jsonl") + read(long_dir / "val.jsonl"):
        (start, end), duration = r["timestamps"][0], r["duration"]
        window = plan_window(start - 1.0, end + 1.0, duration, HEIGHT, WIDTH, budget)
        decoded = decode_window(str(long_dir / r["video"]), window, decoder="pyav")
        assert decoded.frames[0].shape == (3, HEIGHT, WIDTH)
        for t, frame in zip(window.times, decoded.frames):
            distance = shape_distance(frame.permute(1, 2, 0).numpy(), r["query"])
            if start <= t < end:
                assert distance < 25, f"{r['video']}: shape missing at {t:.1f}s"
            elif t >= 0:
                assert distance > 80, f"{r['video']}: shape visible at {t:.1f}s outside [{start}, {end})"


def is_tinted(frame: np.ndarray) -> bool:
    """Whether a decoded HWC frame's corner shows the scene's tint (the corners never hold a shape)."""
    return float(np.abs(frame[:6, :6].reshape(-1, 3).mean(0) - np.array(SCENE_TINT)).max()) < 20


def test_every_overview_shows_the_scene_around_the_event(long_dir) -> None:
    """The scene holds the event and lasts 16-20 s, and the search loop's overview has a frame inside it."""
    budget = overview_budget(experiment(SEARCH))
    for r in read(long_dir / "train.jsonl") + read(long_dir / "val.jsonl"):
        (start, end), path = r["timestamps"][0], str(long_dir / r["video"])
        frames = decode.decode_video(path, budget, decoder="pyav")
        times = frames.plan.times
        tinted = [is_tinted(f.permute(1, 2, 0).numpy()) for f in frames.frames]
        assert any(tinted), f"{r['video']}: no overview frame in the scene around [{start}, {end})"
        for t, shown in zip(times, tinted):
            near = end - SCENE_LENGTHS.max() <= t < start + SCENE_LENGTHS.max()
            assert near or not shown, f"{r['video']}: tint at {t:.2f}s, far from [{start}, {end})"
            if start <= t < end:
                assert shown, f"{r['video']}: no tint at {t:.2f}s during the event [{start}, {end})"


def test_the_scene_does_not_say_where_the_event_is_inside_it() -> None:
    """Over many videos the event lies anywhere in its scene: the scene's centre misses the event's by seconds,
    so a look that finds the scene (the overview) must still look closer to place the event's ends."""
    offsets = []
    for i in range(400):
        event = sample_event(np.random.default_rng([0, STREAMS["train"], i]), DURATIONS)
        scene = sample_scene(event, np.random.default_rng([0, STREAMS["train"], i, 1]))
        assert scene[1] - scene[0] in SCENE_LENGTHS and 0 <= scene[0] <= event.start < event.end <= scene[1]
        assert scene[1] <= event.duration
        offsets.append((scene[0] + scene[1]) / 2 - (event.start + event.end) / 2)
        inside = scene[0] > 0 and scene[1] < event.duration
        assert not inside or min(event.start - scene[0], scene[1] - event.end) >= SCENE_EDGE
    offsets = np.abs(offsets)
    # In version 2 (the event 4-6 s from either end) the median was 0.5 s and the largest 2.75 s.
    assert np.median(offsets) >= 2.0 and offsets.max() >= 6.0, (np.median(offsets), offsets.max())


def test_generation_is_deterministic_and_reruns_are_skipped(long_dir, tmp_path, capsys) -> None:
    again = tmp_path / "again"
    args = SimpleNamespace(out=again, num_train=3, num_val=2, seed=0, force=False, workers=1, num_warm_start=0,
                           long=True)  # fmt: skip
    assert make_demo_data(args) == 0 and "wrote" in capsys.readouterr().out
    assert digest(again) == digest(long_dir)
    assert make_demo_data(args) == 0 and "already holds" in capsys.readouterr().out
    assert not generate_long(again, num_train=3, num_val=2, seed=0)
    with pytest.raises(FileExistsError):
        generate_long(again, num_train=3, num_val=2, seed=1)


def test_a_warm_start_split_has_videos_of_its_own(long_dir, tmp_path) -> None:
    out = tmp_path / "with_warm_start"
    assert generate_long(out, num_train=3, num_val=2, seed=0, num_warm_start=2)
    assert digest(out / "videos" / "train") == digest(long_dir / "videos" / "train")
    warm, others = read(out / "warm_start.jsonl"), read(out / "train.jsonl") + read(out / "val.jsonl")
    assert len(warm) == 2 and all((out / r["video"]).is_file() for r in warm)
    assert not {(r["query"], r["duration"], *r["timestamps"][0]) for r in warm} & {
        (r["query"], r["duration"], *r["timestamps"][0]) for r in others}
    assert "warm_start.jsonl" in (out / "warm_start.yaml").read_text()
    assert not generate_long(out, num_train=3, num_val=2, seed=0, num_warm_start=2)


def test_a_window_decodes_only_its_frames(long_dir) -> None:
    """An 8 s zoom in the middle decodes at most one keyframe interval more than it shows, never the minutes before."""
    r = max(read(long_dir / "train.jsonl"), key=lambda r: r["duration"])
    path, duration = str(long_dir / r["video"]), r["duration"]
    window = plan_window(duration / 2 + 0.7, duration / 2 + 8.7, duration, HEIGHT, WIDTH,
                         VideoBudget(fps=2.0, max_frames=16, min_frames=2))  # fmt: skip
    before = decode.pyav_decoded_frames[path]
    decode_window(path, window, decoder="pyav")
    cost = decode.pyav_decoded_frames[path] - before
    print(f"\nPyAV frames decoded for an 8 s window of a {duration:g} s video: {cost} of {duration * FPS:g}")
    assert cost <= (8 + KEYFRAME_SECONDS) * FPS + 1


def overview_budget(cfg) -> VideoBudget:
    """The budget the search loop shows its overview at: data.video's with search.overview's fields."""
    from verl_video.verl_adapter.search_prompt import SearchSettings

    return settings_from_config(cfg.data).budget.with_overrides(SearchSettings.from_config(cfg).overview)


def test_the_overview_is_too_coarse_and_the_single_pass_sees_as_much_as_a_search(processor, long_dir) -> None:
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset
    from verl_video.verl_adapter.search_prompt import SearchSettings

    search, single = experiment(SEARCH), experiment(SINGLE)
    assert search.data.agent_loop == "video_search" and single.data.agent_loop != "video_search"
    geometry, zoom = video_geometry(processor), SearchSettings.from_config(search).zoom
    window = plan_sampling(zoom.max_frames / zoom.fps, HEIGHT, WIDTH, zoom, geometry=geometry)
    for duration in DURATIONS:
        overview = plan_sampling(duration, HEIGHT, WIDTH, overview_budget(search), geometry=geometry)
        # A frame every 4-9 s: more than a short event lasts, so the overview cannot place its ends.
        assert 30 <= overview.num_frames <= 32 and 1 / overview.fps >= 4.0 > MIN_EVENT
        once = plan_sampling(duration, HEIGHT, WIDTH, settings_from_config(single.data).budget, geometry=geometry)
        searched = overview.num_video_tokens + search.search.max_zoom_calls * window.num_video_tokens
        assert once.num_video_tokens >= searched, f"{duration} s: one pass {once.num_video_tokens} < {searched}"
    # The single pass's longer prompts fit its max_prompt_length: none is dropped as overlong.
    assert len(VideoRLDataset(str(long_dir / "val.yaml"), processor.tokenizer, single.data, processor)) == 2


def search_trajectory(cfg, family: str, processor, row: dict, script: list[str]):
    """One trajectory of the search loop on a dataset row, the policy scripted to write `script`'s turns."""
    from test_search_agent_loop import ScriptedServer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap

    from verl_video.verl_adapter.rl_dataset import VideoRLDataset
    from verl_video.verl_adapter.search_agent_loop import VideoSearchAgentLoop

    server = ScriptedServer(processor, script)

    async def go():
        loop = VideoSearchAgentLoop(
            trainer_config=DictConfigWrap(cfg), server_manager=server, tokenizer=processor.tokenizer,
            processor=processor, dataset_cls=VideoRLDataset, data_config=DictConfigWrap(cfg.data),
            hf_model_type=family,
        )  # fmt: skip
        return await loop.run({"temperature": 1.0}, raw_prompt=row["raw_prompt"], index=0, global_steps=1,
                              session_id=0, reward_model=row["reward_model"])  # fmt: skip

    return asyncio.run(go())


def test_the_search_loop_shows_the_overview_and_both_zooms_then_the_answer(family, processor, long_dir) -> None:
    """A scripted policy zooms twice at the latest window of the longest video, then answers: both windows are
    served (max_response_length holds them and the answer), the overview has the configured frames."""
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset

    cfg = experiment(SEARCH)
    dataset = VideoRLDataset(str(long_dir / "val.yaml"), processor.tokenizer, cfg.data, processor)
    assert len(dataset) == 2  # no prompt dropped as overlong
    index = max(range(len(dataset)), key=lambda i: dataset.dataframe.items[i].record.duration)
    row = dataset[index]
    duration = dataset.dataframe.items[index].record.duration
    last = f"{duration - 8.5:.1f}, {duration - 0.5:.1f}"  # the most digits a call of an 8 s window can have
    answer = f"<answer>{duration - 9.5:.2f} to {duration - 3.5:.2f}</answer>"
    output = search_trajectory(cfg, family, processor, row, [f"<zoom>{last}</zoom>", f"<zoom>{last}</zoom>", answer])
    videos = output.multi_modal_data["videos"]
    expected = plan_sampling(duration, HEIGHT, WIDTH, overview_budget(cfg), geometry=video_geometry(processor))
    assert len(videos[0][0]) == expected.num_frames
    fields = output.extra_fields
    assert (fields["zoom_calls"], fields["zoom_refusals"]) == (2, {}) and len(videos) == 3  # both served
    assert len(output.response_ids) <= cfg.data.max_response_length
    assert processor.tokenizer.decode(output.response_ids).rstrip().endswith(answer + "<|im_end|>")
    answer_tokens = len(processor.tokenizer.encode(answer)) + 1
    per_zoom = (len(output.response_ids) - answer_tokens) / 2
    print(f"\n{family}: response {len(output.response_ids)} tokens, {per_zoom:g} per zoom")
    assert per_zoom * cfg.search.max_zoom_calls + cfg.search.answer_tokens <= cfg.data.max_response_length
