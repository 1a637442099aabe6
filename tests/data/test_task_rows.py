"""The dataset builds each task's rows: its prompt, ground truth, reward preset and (tracking) exact frames."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from verl_video.verl_adapter.rl_dataset import VideoRLDataset
from verl_video.pipeline.items import build_row, for_model, item_video, load_items, prepare_item, seen_duration
from verl_video.video.settings import VideoDataSettings
from verl_video.video.loader import VideoRequest, load_video
from verl_video.rewards import RewardScorer
from verl_video.tools.demo_data import TRACK_BOXES, generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_tasks") / "data"
    generate(out, num_train=3, num_val=1, seed=0)
    return out


def rows_by_source(config) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for i, item in enumerate(load_items([str(config)], VideoDataSettings())):
        rows.setdefault(item.dataset, []).append(build_row(item, i, seen_duration(item)))
    return rows


def test_each_task_gets_its_prompt_truth_preset_and_frames(demo):
    rows = rows_by_source(demo / "train_mix.yaml")
    assert {k: len(v) for k, v in rows.items()} == {"demo": 3, "demo_mcq": 3, "demo_grounded_qa": 3, "demo_tracking": 3}
    grounding, mcq, gqa, track = (rows[k][0] for k in ("demo", "demo_mcq", "demo_grounded_qa", "demo_tracking"))
    assert "reward_preset" not in grounding["extra_info"]  # the run's `preset` option scores grounding, as before
    # The task's default preset is the scorer's to apply (after the run's task_presets), not the row's.
    assert "reward_preset" not in mcq["extra_info"] and "Options:\n(A) " in mcq["prompt"][-1]["content"]
    assert RewardScorer().composite_for(mcq["reward_model"]["ground_truth"], mcq["extra_info"]).name == "mcq"
    assert gqa["reward_model"]["ground_truth"]["evidence_tag"] == "glue"
    video = track["videos"][0]
    asked = TRACK_BOXES - 1  # box 0 is given in the prompt; one frame for each other box
    assert video["frame_rate"] == 10.0 and len(video["frame_indices"]) == asked and video["frame_indices"][0] == 0
    assert len(track["reward_model"]["ground_truth"]["boxes"]) == asked
    scorer = RewardScorer()
    truth = track["reward_model"]["ground_truth"]
    scored = scorer("demo_tracking", f"<think>x</think><answer>{truth['boxes']}</answer>", truth, track["extra_info"])
    assert scored["tracking/box_iou"] == 1.0 and scored["box_iou"] == 1.0


def test_entry_preset_overrides_and_bad_task_records_are_dropped_in_training(demo, tmp_path):
    records = [json.loads(line) for line in (demo / "train_mcq.jsonl").read_text().splitlines()]
    records[1]["answer"] = "F"  # not among the 4 options
    del records[2]["options"]
    (tmp_path / "mcq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    entry = {"name": "m", "json_path": "mcq.jsonl", "data_folder": str(demo), "format": "canonical", "task": "mcq",
             "reward_preset": "grounded_qa"}  # fmt: skip
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"datasets": [entry]}))
    rows = rows_by_source(tmp_path / "data.yaml")["m"]
    assert [r["extra_info"]["id"] for r in rows] == [records[0]["id"]]
    assert rows[0]["extra_info"]["reward_preset"] == "grounded_qa"


def test_the_agent_loop_decodes_exactly_the_tracking_frames(demo):
    from omegaconf import OmegaConf

    config = OmegaConf.create({"video": {"min_pixels": 784, "max_pixels": 112 * 112, "total_pixels": 8 * 112 * 112}})
    rows = rows_by_source(demo / "train_mix.yaml")["demo_tracking"]
    video = rows[0]["videos"][0]
    messages = [{"role": "user", "content": [{"type": "video", **video}]}]
    _, videos, _ = VideoRLDataset._process_multi_modal_info(messages, 14, config)
    frames, metadata = videos[0]
    # One frame per asked box, padded to whole frame pairs.
    assert frames.shape[0] == 2 * math.ceil((TRACK_BOXES - 1) / 2) and metadata["video_backend"] == "frames"


def test_rows_tell_rewards_the_prompts_think_block_and_the_tasks_answer_kind(demo):
    for template, think in (("think", True), ("answer_only", False)):
        settings = VideoDataSettings(prompt_template=template)
        items = load_items([str(demo / "train_mix.yaml")], settings)
        rows = {item.dataset: build_row(item, i, seen_duration(item)) for i, item in enumerate(items)}
        assert {name: row["extra_info"]["think"] for name, row in rows.items()} == dict.fromkeys(rows, think)
        kinds = {name: row["reward_model"]["ground_truth"].get("answer_kind") for name, row in rows.items()}
        assert kinds["demo_mcq"] == "choice" and kinds["demo_tracking"] == "boxes"
        # A no-think answer to an MCQ row scores full format only when the row says no <think> is asked for.
        mcq = rows["demo_mcq"]
        truth = mcq["reward_model"]["ground_truth"]
        scored = RewardScorer()("demo_mcq", f"<answer>{truth['answer']}</answer>", truth, mcq["extra_info"])
        assert (scored["format"] == 1.0) is not think


def test_eval_warm_start_and_cache_get_the_tracking_frames_training_shows(demo, tiny_processor):
    settings = VideoDataSettings()
    item = next(i for i in load_items([str(demo / "train_mix.yaml")], settings) if i.dataset == "demo_tracking")
    row = build_row(item, 0, seen_duration(item))
    assert item_video(item).frame_indices == tuple(row["videos"][0]["frame_indices"]) and item.video.frame_indices is None
    prepared = prepare_item(item, 0, settings, tiny_processor)
    [item] = for_model([item], tiny_processor)
    row = build_row(item, 0, seen_duration(item))
    shown = load_video(VideoRequest.from_item(row["videos"][0], item.video.budget), settings).frames
    whole = load_video(item.video, settings).frames
    assert torch.equal(prepared.frames, shown) and not torch.equal(shown, whole)  # 2 fps would show other frames
    assert prepared.duration == row["extra_info"]["duration"]
