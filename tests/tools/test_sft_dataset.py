"""The SFT dataset for verl's SFT trainer: GRPO's prompt and video, the training-format target, verl's layout."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from verl_video.data.sft_dataset import VideoSFTDataset, answer_text
from verl_video.rewards.format import template_ok
from verl_video.rewards.parser import parse_interval


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from verl.utils import hf_processor

    # As verl's SFT trainer loads it: with the model's get_rope_index bound.
    return hf_processor(str(tiny_model_dir))


def _dataset(processor, files, **video) -> VideoSFTDataset:
    config = OmegaConf.create({"max_length": 4096, "video": video})
    return VideoSFTDataset([str(f) for f in files], processor.tokenizer, config, processor)


def test_item_is_the_grpo_prompt_and_video_plus_the_supervised_answer(processor, demo_dir):
    dataset = _dataset(processor, [demo_dir / "train.yaml"])
    records = [json.loads(line) for line in (demo_dir / "train.jsonl").read_text().splitlines()]
    assert len(dataset) == len(records)
    item = dataset[0]
    ids, mask = item["input_ids"], item["loss_mask"].bool()
    # Only the response and its end-of-turn token are supervised, and they come last.
    target = processor.tokenizer.decode(ids[mask])
    start, end = records[0]["timestamps"][0]
    assert target == f"<think>{records[0]['reasoning']}</think><answer>{start:.2f} to {end:.2f}</answer><|im_end|>"
    assert mask[-int(mask.sum()) :].all()
    response = target.removesuffix("<|im_end|>")
    assert template_ok(response) and parse_interval(response, records[0]["duration"]).interval == (start, end)
    prompt = processor.tokenizer.decode(ids[~mask])
    assert records[0]["query"] in prompt and prompt.endswith("<|im_start|>assistant\n")
    # The video is the GRPO path's 2 fps decode: one <|video_pad|> per merged patch of its grid.
    grid = item["multi_modal_inputs"]["video_grid_thw"]
    video_tokens = int((ids == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum())
    assert video_tokens == int(grid.prod()) // 4 and int(grid[0, 0]) == round(records[0]["duration"] * 2 / 2)
    # verl's Qwen-VL layout: a text position row, then the three M-RoPE rows (time differs along the video).
    positions = item["position_ids"]
    assert positions.shape == (4, ids.shape[0]) and torch.equal(positions[0], torch.arange(ids.shape[0]))
    assert len(set(positions[1][ids == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")].tolist())) > 1


def test_records_without_reasoning_are_left_out_for_think_and_kept_for_answer_only(processor, demo_dir, tmp_path):
    records = [json.loads(line) for line in (demo_dir / "train.jsonl").read_text().splitlines()]
    records[1].pop("reasoning")
    annotations = tmp_path / "train.jsonl"
    annotations.write_text("".join(json.dumps({**r, "video": str(demo_dir / r["video"])}) + "\n" for r in records))
    think = _dataset(processor, [annotations])
    assert len(think) == len(records) - 1 and think.without_reasoning == 1
    answer_only = _dataset(processor, [annotations], prompt_template="answer_only")
    assert len(answer_only) == len(records) and answer_only.without_reasoning == 0
    target = processor.tokenizer.decode(answer_only[1]["input_ids"][answer_only[1]["loss_mask"].bool()])
    assert target.startswith("<answer>") and "<think>" not in target


def test_json_answer_style(demo_dir):
    from verl_video.data.records import GroundingRecord

    record = GroundingRecord(id="a", video="v.mp4", query="q", timestamps=[[1.0, 2.5]], extra={"cot": "because"})
    expected = '<think>because</think><answer>{"start_time": 1.0, "end_time": 2.5}</answer>'
    assert answer_text(record, "think_json") == expected


def test_other_tasks_get_their_tasks_answer_blocks():
    from verl_video.data.records import GroundingRecord
    from verl_video.rewards import RewardScorer
    from verl_video.tasks import get_task

    boxes = [[0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4], [0.3, 0.3, 0.5, 0.5]]
    records = [
        GroundingRecord(id="m", video="v.mp4", query="q", timestamps=[], task="mcq",
                        extra={"options": ["a", "b", "c"], "answer": "B", "cot": "because"}),
        GroundingRecord(id="t", video="v", query="red square", timestamps=[], task="tracking",
                        extra={"boxes": boxes, "cot": "it moves"}),
    ]  # fmt: skip
    for record in records:
        think, bare = answer_text(record, "think"), answer_text(record, "answer_only")
        assert think.startswith(f"<think>{record.extra['cot']}</think>") and not bare.startswith("<think>")
        # The supervised target scores full marks under the task's own reward, format included.
        truth = get_task(record.task).ground_truth(record, 10.0)
        scored = RewardScorer()("d", think, truth, {"task": record.task, "think": True})
        assert scored["format"] == 1.0 and scored["parse_ok"] == 1.0, (record.task, think)
