"""The SFT dataset for verl's SFT trainer: GRPO's prompt and video, the training-format target, verl's layout."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from omegaconf import OmegaConf

from verl_video.pipeline.run_settings import CONFIG_DIR, settings_from_defaults
from verl_video.pipeline.sft_dataset import VideoSFTDataset, answer_text
from verl_video.rewards.format import template_ok
from verl_video.rewards.parser import parse_interval
from verl_video.tools import warm_start as loop


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
    from verl_video.annotations.records import Record

    record = Record(id="a", video="v.mp4", query="q", timestamps=[[1.0, 2.5]], extra={"cot": "because"})
    expected = '<think>because</think><answer>{"start_time": 1.0, "end_time": 2.5}</answer>'
    assert answer_text(record, "think_json") == expected


def test_item_is_what_the_loop_trains_at_the_positions_generation_uses(processor, tiny_model_dir, demo_dir):
    # verl's trainer and the hand-written loop must train on the same thing: the same ids, the response and its
    # end-of-turn labelled (so that the model learns to stop after </answer>), and the M-RoPE positions the
    # model's own generate and the rollout use (Qwen's released rule), not transformers 5.9's.
    from transformers import AutoModelForImageTextToText

    from verl_video.models.mrope import TRANSFORMERS_RULES, released_rope_index

    settings = settings_from_defaults(["experiment=tiny_tvg_cpu"]).video
    dataset = _dataset(processor, [demo_dir / "train.yaml"], **settings.as_section())
    example = loop.load_examples(processor, demo_dir / "train.yaml", 1, settings=settings)[0]
    batch = loop.encode_batch(processor, [example], [loop.target_text(example)])
    item = dataset[0]
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    assert torch.equal(item["input_ids"], ids)
    supervised = item["input_ids"][item["loss_mask"].bool()]
    assert torch.equal(supervised, ids[labels != loop.IGNORE_INDEX])
    assert int(supervised[-1]) == processor.tokenizer.eos_token_id
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    grids = {k: batch[k] for k in ("mm_token_type_ids", "video_grid_thw", "second_per_grid_ts", "attention_mask")}
    released, _ = released_rope_index(model.model, batch["input_ids"], **grids)
    assert torch.equal(item["position_ids"][1:], released[:, 0])
    transformers_rule, _ = TRANSFORMERS_RULES["Qwen2_5_VLModel"](model.model, batch["input_ids"], **grids)
    assert not torch.equal(item["position_ids"][1:], transformers_rule[:, 0])


def test_warm_start_through_verl_reads_the_runs_video_settings(processor, demo_dir, tmp_path):
    # `warm-start --trainer verl --set ...` must decode and prompt as the run's settings say, as the loop does.
    from hydra import compose, initialize_config_dir

    from verl_video.tools.verl_sft import sft_overrides

    settings = settings_from_defaults(["experiment=tiny_tvg_cpu", "data.video.fps=1.0"]).video
    overrides = sft_overrides(tmp_path, demo_dir / "train.yaml", tmp_path, 1, 1, 1e-3, 0, "answer_only",
                              settings=settings)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        config = compose("sft", overrides)
    item = VideoSFTDataset([str(demo_dir / "train.yaml")], processor.tokenizer, config.data, processor)[0]
    settings = replace(settings, prompt_template="answer_only")
    example = loop.load_examples(processor, demo_dir / "train.yaml", 1, settings=settings)[0]
    expected = loop.encode_batch(processor, [example], [answer_text(example.item.record, "answer_only")])
    assert torch.equal(item["multi_modal_inputs"]["video_grid_thw"], expected["video_grid_thw"])
    assert torch.equal(item["input_ids"], expected["input_ids"][0])
    # 1 fps: fewer temporal grids than the 2 fps default (which the dataset would use without the settings).
    default = _dataset(processor, [demo_dir / "train.yaml"])[0]["multi_modal_inputs"]["video_grid_thw"]
    assert int(item["multi_modal_inputs"]["video_grid_thw"][0, 0]) < int(default[0, 0])


def test_other_tasks_get_their_tasks_answer_blocks():
    from verl_video.annotations.records import Record
    from verl_video.rewards import RewardScorer
    from verl_video.tasks import get_task

    boxes = [[0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4], [0.3, 0.3, 0.5, 0.5]]
    records = [
        Record(id="m", video="v.mp4", query="q", timestamps=[], task="mcq",
                        extra={"options": ["a", "b", "c"], "answer": "B", "cot": "because"}),
        Record(id="t", video="v", query="red square", timestamps=[], task="tracking",
                        extra={"boxes": boxes, "cot": "it moves"}),
    ]  # fmt: skip
    for record in records:
        think, bare = answer_text(record, "think"), answer_text(record, "answer_only")
        assert think.startswith(f"<think>{record.extra['cot']}</think>") and not bare.startswith("<think>")
        # The supervised target scores full marks under the task's own reward, format included.
        truth = get_task(record.task).ground_truth(record, 10.0)
        scored = RewardScorer()("d", think, truth, {"task": record.task, "think": True})
        assert scored["format"] == 1.0 and scored["parse_ok"] == 1.0, (record.task, think)
