"""VideoRLDataset as verl uses it: construction, rows, bad videos, decode once, length filter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from verl.utils.dataset.rl_dataset import get_dataset_class
from verl.utils.tokenizer import build_multimodal_processor_inputs

from verl_video.video import decode as video_module
from verl_video.pipeline.issues import NoUsableData
from verl_video.verl_adapter.rl_dataset import VideoRLDataset


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def data_config(tmp_path, videos) -> Path:
    records = [
        {"id": "a", "video": videos["short"].name, "query": "bars", "timestamps": [[1.0, 4.0]], "duration": 10.0},
        {"id": "gone", "video": "missing.mp4", "query": "nothing", "timestamps": [[1.0, 2.0]], "duration": 5.0},
        {"id": "clip", "video": videos["vfr"].name, "query": "slow", "timestamps": [[2.0, 6.0]],
         "duration": 10.0, "video_start": 20.0, "video_end": 30.0},
        {"id": "late", "video": videos["short"].name, "query": "past the end", "timestamps": [[8.0, 10.9]],
         "duration": 10.0},
    ]  # fmt: skip
    write_jsonl(tmp_path / "train.jsonl", records)
    config = {"datasets": [{"name": "gen", "json_path": "train.jsonl", "data_folder": str(videos["short"].parent), "fps": 1.0}]}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "train.yaml"


def make_dataset(data_files, processor, **data) -> VideoRLDataset:
    config = OmegaConf.create(
        {"custom_cls": {"path": "pkg://verl_video.verl_adapter.rl_dataset", "name": "VideoRLDataset"},
         "max_prompt_length": 4096, "filter_overlong_prompts": False, "video": {"max_frames": 32}, **data}
    )  # fmt: skip
    cls = get_dataset_class(config)
    assert cls is VideoRLDataset
    return cls(data_files=data_files, tokenizer=processor.tokenizer, processor=processor, config=config)


def test_construction_and_rows_do_not_decode(data_config, tiny_processor):
    before = sum(video_module.decode_counts.values())
    dataset = make_dataset(str(data_config), tiny_processor)
    rows = [dataset[i] for i in range(len(dataset))]
    assert sum(video_module.decode_counts.values()) == before
    assert len(dataset) == 4
    row = rows[2]
    assert row["data_source"] == "gen"
    assert row["reward_model"] == {"style": "rule", "ground_truth": {"timestamps": [[2.0, 6.0]], "duration": 10.0}}
    assert row["extra_info"]["video_start"] == 20.0 and row["extra_info"]["answer_style"] == "interval"
    assert {"task", "duration", "index", "video", "query", "prompt_template"} <= row["extra_info"].keys()
    (video_item,) = [part for part in row["raw_prompt"][-1]["content"] if part["type"] == "video"]
    assert video_item["fps"] == 1.0 and video_item["max_frames"] == 32 and video_item["video_start"] == 20.0
    # An end 0.9 s past the duration is clipped for training.
    assert rows[3]["reward_model"]["ground_truth"]["timestamps"] == [[8.0, 10.0]]


def test_missing_video_is_replaced_by_the_next_sample(data_config, tiny_processor):
    dataset = make_dataset(str(data_config), tiny_processor)
    row = dataset[1]
    assert row["extra_info"]["id"] == "clip" and row["extra_info"]["data_replaced"] == 1


def test_n_rollouts_decode_each_video_once(data_config, tiny_processor):
    dataset = make_dataset(str(data_config), tiny_processor, video={"max_frames": 30})
    messages = dataset[0]["raw_prompt"]
    path = dataset[0]["extra_info"]["video"]
    before = video_module.decode_counts[path]

    async def rollouts(n: int):
        calls = [VideoRLDataset.process_multi_modal_info(messages, 14, dataset.config) for _ in range(n)]
        return await asyncio.gather(*calls)

    results = asyncio.run(rollouts(8))
    results += asyncio.run(rollouts(8))  # a later step / epoch
    assert video_module.decode_counts[path] - before == 1
    assert all(r[1][0][0] is results[0][1][0][0] for r in results)


def test_undecodable_video_becomes_a_placeholder(tmp_path, tiny_processor):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    messages = [{"role": "user", "content": [{"type": "video", "video": str(bad)}]}]
    _, videos, _ = VideoRLDataset._process_multi_modal_info(messages, 14, {})
    frames, metadata = videos[0]
    assert frames.shape[0] == 4 and metadata["video_backend"] == "placeholder"


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_overlong_filter_counts_tokens_exactly_without_decoding(family, data_config, request):
    # Qwen3-VL's prompt also carries a `<t seconds>` and vision start/end tokens per frame group.
    tiny_processor = request.getfixturevalue({"qwen2_5_vl": "tiny_processor", "qwen3_vl": "tiny_qwen3_processor"}[family])
    dataset = make_dataset(str(data_config), tiny_processor, filter_overlong_prompts=True)
    assert len(dataset) == 3  # the missing video is dropped here
    for i, item in enumerate(dataset.dataframe.items):
        estimate = dataset.estimate_prompt_length(item)
        row = dataset[i]
        _, videos, _ = VideoRLDataset._process_multi_modal_info(row["raw_prompt"], 14, dataset.config)
        text = tiny_processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
        actual = build_multimodal_processor_inputs(tiny_processor, text=[text], videos=videos)["input_ids"].shape[1]
        assert estimate == actual
    # Nothing fits 150 tokens: start-up stops with every reason counted, not with an empty dataset for torchdata.
    with pytest.raises(NoUsableData, match=r"(?s)3 +prompt longer than data.max_prompt_length=150.*1 +video: video not found"):
        make_dataset(str(data_config), tiny_processor, filter_overlong_prompts=True, max_prompt_length=150)


def test_bare_annotation_file_and_max_samples(tmp_path, videos, tiny_processor):
    records = [
        {"id": str(i), "video": str(videos["short"]), "query": f"q{i}", "timestamps": [[0, 1]], "duration": 10}
        for i in range(10)
    ]
    path = write_jsonl(tmp_path / "plain.jsonl", records)
    config = OmegaConf.create({"max_prompt_length": 4096, "filter_overlong_prompts": False, "shuffle": True, "seed": 3})
    first = VideoRLDataset(str(path), tiny_processor.tokenizer, config, tiny_processor, max_samples=4)
    again = VideoRLDataset(str(path), tiny_processor.tokenizer, config, tiny_processor, max_samples=4)
    assert len(first) == 4
    assert [first[i]["extra_info"]["id"] for i in range(4)] == [again[i]["extra_info"]["id"] for i in range(4)]


def test_bad_video_is_counted_every_time_and_logged_once(data_config, tiny_processor, caplog):
    from verl_video.pipeline.issues import issue_log

    dataset = make_dataset(str(data_config), tiny_processor)
    before = issue_log.metrics().get("data/bad_video", 0)
    with caplog.at_level("WARNING", logger="verl_video.data"):
        for _ in range(3):
            dataset[1]
    assert issue_log.metrics()["data/bad_video"] - before == 3
    assert sum("missing.mp4" in r.getMessage() for r in caplog.records) <= 1
