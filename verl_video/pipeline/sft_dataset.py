"""Supervised (cold-start) examples on the GRPO data path, as a dataset class for verl's SFT trainer.

`VideoSFTDataset` is what `data.custom_cls` of verl's `sft_trainer` loads: it takes verl's SFT dataset
arguments, reads our data_configs (same records, video budget, decoder and prompt template as GRPO) and
yields what verl's `MultiTurnSFTDataset` yields (`input_ids`, `loss_mask`, `position_ids` with the
Qwen-VL M-RoPE rows, `multi_modal_inputs`), so verl's collator, engine and loss take it unchanged.

The target is the answer in the training format: `<think>REASONING</think><answer>a to b</answer>`,
REASONING being the record's `cot` or `reasoning` field. A think-template record without one is left out
and counted (a cold start on empty reasoning would teach the model to skip it); answer-only templates
need none.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import torch

from verl_video.pipeline.items import DatasetItem, load_items, prepare_item
from verl_video.pipeline.issues import issue_log
from verl_video.video.probe import VideoError
from verl_video.tasks.prompts import get_template
from verl_video.annotations.records import DEFAULT_TASK, Record
from verl_video.video.settings import VideoDataSettings, settings_from_config
from verl_video.tasks import get_task

logger = logging.getLogger("verl_video")

REASONING_FIELDS = ("cot", "reasoning")


def reasoning_of(record: Record) -> str | None:
    """The record's reasoning text (`cot`, else `reasoning`), or None."""
    for name in REASONING_FIELDS:
        text = record.extra.get(name)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def answer_text(
    record: Record,
    template_name: str | None,
    interval: tuple[float, float] | None = None,
    default_reasoning: str | None = None,
) -> str | None:
    """The supervised response in the training format, or None when a think template has no reasoning.

    `default_reasoning` stands in for a record without its own reasoning text."""
    template = get_template(template_name)
    if record.task != DEFAULT_TASK:  # the task's own answer blocks (letter, evidence, boxes)
        answer = get_task(record.task).reference_answer(record, record.duration)
    else:
        start, end = interval if interval is not None else record.timestamps[0]
        if template.answer_style == "json":
            answer = json.dumps({"start_time": round(start, 2), "end_time": round(end, 2)})
        else:
            answer = f"{start:.2f} to {end:.2f}"
        answer = f"<answer>{answer}</answer>"
    if not template.think:
        return answer
    reasoning = reasoning_of(record) or default_reasoning
    if reasoning is None:
        return None
    return f"<think>{reasoning}</think>{answer}"


@dataclass
class SFTExample:
    """One record through the GRPO data path: decoded video, rendered prompt, seconds seen."""

    item: DatasetItem
    frames: torch.Tensor
    metadata: dict
    prompt: str
    duration: float


def load_example(processor, item: DatasetItem, index: int, settings: VideoDataSettings) -> SFTExample:
    """Decode `item`'s video and render its prompt exactly as the GRPO dataset and agent loop do."""
    prepared = prepare_item(item, index, settings, processor)
    return SFTExample(prepared.item, prepared.frames, prepared.metadata, prepared.prompt, prepared.duration)


def processor_inputs(processor, texts: list[str], frames: list[torch.Tensor], metadata: list[dict]) -> dict:
    """Processor outputs for texts with their videos, already sampled (the rate is in the metadata), right padded."""
    return dict(processor(
        text=texts, videos=frames, video_metadata=metadata, do_sample_frames=False,
        padding=True, padding_side="right", return_tensors="pt",
    ))  # fmt: skip


def encode(processor, examples: list[SFTExample], responses: list[str]) -> dict:
    """Processor outputs for prompt + response + end-of-turn, `loss_mask` on the response and end-of-turn."""
    tokenizer = processor.tokenizer
    eos = tokenizer.eos_token
    texts = [ex.prompt + response + eos for ex, response in zip(examples, responses)]
    batch = processor_inputs(processor, texts, [ex.frames for ex in examples], [ex.metadata for ex in examples])
    loss_mask = torch.zeros_like(batch["input_ids"])
    for i, response in enumerate(responses):
        ids = torch.tensor(tokenizer(response + eos, add_special_tokens=False)["input_ids"])
        end = int(batch["attention_mask"][i].sum())
        if not torch.equal(batch["input_ids"][i, end - len(ids) : end], ids):
            origin = examples[i].item.record.origin
            raise ValueError(f"{origin}: the response does not tokenize the same after the prompt")
        loss_mask[i, end - len(ids) : end] = 1
    batch["loss_mask"] = loss_mask
    return batch


def rope_positions(processor, input_ids: torch.Tensor, attention_mask: torch.Tensor, inputs: dict) -> torch.Tensor:
    """The (3, L) M-RoPE positions exactly as GRPO's agent loop computes them (the model's get_rope_index that
    verl binds to the processor, video seconds per grid from our hook): what generation uses too. verl's
    `MultiTurnSFTDataset` uses another function, whose positions after a video differ from transformers'."""
    get_rope_index = getattr(processor, "get_rope_index", None)
    if get_rope_index is None:
        raise ValueError("the processor has no get_rope_index: load it with verl.utils.hf_processor")
    video_token_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    kwargs = {"video_grid_thw": inputs.get("video_grid_thw"),
              "mm_token_type_ids": ((input_ids == video_token_id).long() * 2).unsqueeze(0)}
    extra = getattr(processor, "get_rope_index_kwargs", None)
    if extra is not None:
        kwargs.update(extra(inputs))
    positions, _ = get_rope_index(
        input_ids=input_ids.unsqueeze(0), attention_mask=attention_mask.unsqueeze(0), **kwargs
    )
    return positions[:, 0]


class VideoSFTDataset(torch.utils.data.Dataset):
    """verl SFT dataset (`data.custom_cls`) over data_configs: GRPO's video path, training-format targets."""

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        if processor is None:
            raise ValueError("VideoSFTDataset needs the model's processor (a video model)")
        self.processor, self.tokenizer = processor, tokenizer
        self.settings = settings_from_config(config)
        self.max_length = int(config.get("max_length", 4096))
        files = [str(f) for f in parquet_files] if not isinstance(parquet_files, str) else [parquet_files]
        items = load_items(files, self.settings)
        if max_samples is not None and 0 < max_samples < len(items):
            items = items[:max_samples]
        self.items = [item for item in items if answer_text(item.record, item.template) is not None]
        self.without_reasoning = len(items) - len(self.items)
        if self.without_reasoning:
            logger.warning("verl-video sft: %d of %d records have no `cot`/`reasoning` for their think template: "
                           "left out", self.without_reasoning, len(items))
        if not self.items:
            raise ValueError(f"{', '.join(files)}: no record with a supervised target")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # A record whose video cannot be decoded is replaced by the next one (and reported), as in GRPO.
        for offset in range(len(self.items)):
            item = self.items[(index + offset) % len(self.items)]
            try:
                example = load_example(self.processor, item, index, self.settings)
                break
            except VideoError as exc:
                if not self.settings.skip_bad_samples:
                    raise
                issue_log.report("bad_video", item.video.path, str(exc))
        else:
            raise VideoError(f"no record of the SFT data has a decodable video (from index {index})")
        batch = encode(self.processor, [example], [answer_text(item.record, item.template)])
        return sft_sample(self.processor, batch, item.record.origin, self.max_length)


def sft_sample(processor, batch: dict, origin: str, max_length: int) -> dict[str, Any]:
    """verl's SFT sample (ids, text + M-RoPE positions, loss mask, vision inputs) from a one-row `encode` batch."""
    batch = dict(batch)
    input_ids, loss_mask = batch.pop("input_ids")[0], batch.pop("loss_mask")[0]
    attention_mask = batch.pop("attention_mask")[0]
    if input_ids.shape[0] > max_length:
        raise ValueError(f"{origin}: {input_ids.shape[0]} tokens, over data.max_length={max_length}")
    vision = rope_positions(processor, input_ids, attention_mask, batch)
    # verl's layout for Qwen-VL: the text position row, then the three M-RoPE rows.
    position_ids = torch.cat((torch.arange(input_ids.shape[0]).unsqueeze(0), vision), dim=0)
    # verl's SFT dataset drops the processor's token-type ids too: the model derives them from input_ids.
    multi_modal_inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "mm_token_type_ids"}
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "loss_mask": loss_mask,
        "multi_modal_inputs": multi_modal_inputs,
    }
