"""The warm start feeds the training prompt and video path, supervises only the response, and lowers the loss."""

from __future__ import annotations

import json

import pytest
import torch

from verl_video.rewards.format import template_ok
from verl_video.rewards.parser import parse_interval
from verl_video.tools.warm_start import (
    IGNORE_INDEX,
    encode_batch,
    evaluate,
    load_examples,
    response_loss,
    target_text,
    train,
    warm_start,
)


@pytest.fixture(scope="module")
def setup(tiny_model_dir, demo_dir):
    """(model, processor, training examples) from the session's tiny model and demo data."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    return model, processor, load_examples(processor, demo_dir / "train.yaml")


def test_yaml_and_jsonl_give_the_same_examples(setup, demo_dir) -> None:
    _, processor, from_yaml = setup
    from_jsonl = load_examples(processor, demo_dir / "train.jsonl", max_samples=2)
    assert [e.prompt for e in from_jsonl] == [e.prompt for e in from_yaml[:2]]
    assert all(torch.equal(a.frames, b.frames) for a, b in zip(from_jsonl, from_yaml))


def test_examples_use_the_training_prompt_and_2fps_video(setup) -> None:
    _, processor, examples = setup
    ex = examples[0]
    assert "<|vision_start|><|video_pad|><|vision_end|>" in ex.prompt and ex.item.record.query in ex.prompt
    assert ex.prompt.endswith("<|im_start|>assistant\n")
    assert ex.metadata["fps"] == 2.0 and ex.frames.shape[0] == 2 * ex.duration


def test_targets_have_the_rewarded_format() -> None:
    from verl_video.annotations.records import Record

    from verl_video.verl_adapter.rl_dataset import DatasetItem
    from verl_video.pipeline.sft_dataset import SFTExample

    record = Record(id="a", video="v.mp4", query="a red square appears in the centre", timestamps=[[2.0, 5.5]])
    example = SFTExample(DatasetItem("demo", record, None, "think"), torch.zeros(0), {}, "", duration=10.0)
    exact = target_text(example)
    assert template_ok(exact) and parse_interval(exact, 10.0).interval == (2.0, 5.5)
    assert exact.startswith("<think>the red square is visible.</think>")
    noisy = [target_text(example, torch.Generator().manual_seed(s), noise=2.0) for s in range(20)]
    assert all(template_ok(t) and parse_interval(t, 10.0).status == "ok" for t in noisy)
    assert len(set(noisy)) > 1


def test_an_answer_only_template_gets_an_answer_only_target() -> None:
    from verl_video.verl_adapter.rl_dataset import DatasetItem
    from verl_video.annotations.records import Record
    from verl_video.pipeline.sft_dataset import SFTExample

    record = Record(id="a", video="v.mp4", query="a red square appears in the centre", timestamps=[[2.0, 5.5]])
    example = SFTExample(DatasetItem("demo", record, None, "answer_only"), torch.zeros(0), {}, "", duration=10.0)
    target = target_text(example)
    # The reward for this template would score a <think> block as a format failure.
    assert target == "<answer>2.00 to 5.50</answer>"
    assert template_ok(target, think=False) and not template_ok(target, think=True)


def test_labels_cover_the_response_only(setup) -> None:
    _, processor, examples = setup
    responses = [target_text(ex) for ex in examples[:2]]
    batch = encode_batch(processor, examples[:2], responses)
    for i, response in enumerate(responses):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX]
        assert processor.tokenizer.decode(labelled) == response + "<|im_end|>"
    assert "mm_token_type_ids" in batch and batch["second_per_grid_ts"].tolist() == [1.0, 1.0]


def test_a_few_steps_lower_the_loss(setup) -> None:
    model, processor, examples = setup
    batch = encode_batch(processor, examples, [target_text(ex) for ex in examples])
    with torch.no_grad():
        before = response_loss(model, batch).item()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        losses = train(model, processor, examples, steps=6, batch_size=4, lr=3e-3, seed=0)
        with torch.no_grad():
            after = response_loss(model, batch).item()
    finally:
        model.load_state_dict(state)
    assert len(losses) == 6 and after < before - 0.5


def test_warm_start_trains_at_the_rollouts_positions(setup) -> None:
    # The positions the language model gets in a warm-start step are Qwen's released rule (the GRPO actor's and
    # vLLM's), not transformers 5.9's, which puts the text after a long video elsewhere.
    from verl_video.models.mrope import TRANSFORMERS_RULES, released_rope_index

    model, processor, examples = setup
    batch = encode_batch(processor, examples[:1], [target_text(examples[0])])
    seen = {}

    def grab(module, args, kwargs):
        seen["positions"] = kwargs["position_ids"]

    handle = model.model.language_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            response_loss(model, batch)
    finally:
        handle.remove()
    grids = {k: batch[k] for k in ("mm_token_type_ids", "video_grid_thw", "second_per_grid_ts", "attention_mask")}
    released, _ = released_rope_index(model.model, batch["input_ids"], **grids)
    transformers_rule, _ = TRANSFORMERS_RULES["Qwen2_5_VLModel"](model.model, batch["input_ids"], **grids)
    positions = seen["positions"][-3:]  # the last three rows are (t, h, w) when a text row is prepended
    assert torch.equal(positions, released)
    assert not torch.equal(positions, transformers_rule)


def test_evaluate_reports_rates(setup) -> None:
    model, processor, examples = setup
    report = evaluate(model, processor, examples[:2], temperature=1.0, max_new_tokens=4)
    assert set(report) >= {"format_rate", "parse_rate", "mean_iou"} and 0 <= report["mean_iou"] <= 1


@pytest.mark.parametrize("trainer", ["verl", "loop"])
def test_warm_start_saves_a_trained_loadable_model(tmp_path, tiny_model_dir, demo_dir, trainer) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from verl_video.tools.weight_diff import load_weights

    out = tmp_path / "warm"
    summary = warm_start(tiny_model_dir, demo_dir / "train.jsonl", out, steps=2, batch_size=2, max_samples=2,
                         trainer=trainer)
    assert summary["steps"] == 2 and json.loads((out / "warm_start.json").read_text())["samples"] == 2
    assert summary["trainer"] == trainer and summary["first_loss"] > 0 and summary["last_loss"] > 0
    AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.dtype == torch.float32
    before, after = load_weights(str(tiny_model_dir)), load_weights(str(out))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)


def test_verl_warm_start_console_shows_progress_and_keeps_the_full_log(tmp_path, tiny_model_dir, demo_dir,
                                                                       capfd) -> None:
    from verl_video.tools.verl_sft import LOG_NAME

    out = tmp_path / "warm"
    summary = warm_start(tiny_model_dir, demo_dir / "train.jsonl", out, steps=3, batch_size=2, max_samples=2)
    console = capfd.readouterr()
    shown = console.out + console.err
    log = (out / LOG_NAME).read_text()
    # verl's console logger writes one "step:N - train/loss:..." line per step: in the log, not on the console.
    assert [f"step:{n} -" in log for n in (1, 2, 3)] == [True] * 3 and log.count("train/loss:") >= 3
    assert "train/loss" not in shown and "step:1 -" not in shown
    assert f"step 1/3  loss {summary['first_loss']:.4f}" in shown and "step 3/3  loss" in shown
    assert "3/3" in console.err  # the progress bar's last state
    assert str(out / LOG_NAME) in shown


def test_the_cpu_profiles_data_worker_changes_no_loss(tmp_path, tiny_model_dir, demo_dir) -> None:
    # sft_profile=cpu prepares batches in a DataLoader worker; training must see exactly what it would see
    # if the training process prepared them itself, over an epoch boundary (the worker starts again there).
    import os
    import subprocess
    import sys

    from verl_video.tools.verl_sft import sft_overrides

    losses = {}
    for workers in (0, 1):
        workdir = tmp_path / f"workers{workers}"
        workdir.mkdir()
        overrides = sft_overrides(tiny_model_dir, demo_dir / "train.jsonl", workdir, steps=3, batch_size=2, lr=3e-3,
                                  seed=0, max_samples=4)
        metrics = workdir / "metrics.jsonl"
        env = dict(os.environ, VERL_FILE_LOGGER_PATH=str(metrics), OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "verl_video.sft", *overrides, f"data.num_workers={workers}",
                        "checkpoint.save_contents=[]"], env=env, check=True, capture_output=True, timeout=600)
        rows = [json.loads(line)["data"] for line in metrics.read_text().splitlines()]
        losses[workers] = [row["train/loss"] for row in rows if "train/loss" in row]
    assert len(losses[0]) == 3
    assert losses[1] == losses[0]
