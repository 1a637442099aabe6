"""Record to model input, one path for every command: training, evaluation, warm start and cache.

    data_config / annotation file -> records (strategy, task, checks) -> DatasetItem (video request under
    the dataset's budget, prompt template) -> verl row (messages with `<video>`, ground truth, extra_info)
    -> PreparedItem (decoded frames + metadata, prompt rendered by the processor's chat template)

The training dataset (`dataset.py`, verl's RLHFDataset) serves the rows and lets verl's agent loop decode
and render; evaluation and warm start call `prepare_item`; `verl-video cache` decodes the items' requests.
Nothing here imports verl (tests/test_layering.py checks it), so every command can use it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from verl_video.annotations.checks import training_ready
from verl_video.annotations.data_config import (
    DataConfig, DataConfigError, DatasetEntry, load_data_config, single_file_config,
)
from verl_video.annotations.formats import read_annotations
from verl_video.annotations.mixture import apply_sampling_strategy, dataset_rng, mix_datasets, sampling_seed
from verl_video.video.probe import VideoError, probe_video
from verl_video.tasks.prompts import get_template, render_prompt
from verl_video.annotations.records import Record
from verl_video.pipeline.run_settings import prompt_template_for
from verl_video.video.settings import VideoDataSettings
from verl_video.video.decode import clip_window
from verl_video.video.loader import VideoRequest, load_video
from verl_video.models.family import video_geometry
from verl_video.pipeline.issues import DropTally
from verl_video.pipeline.task_rows import (
    STYLE_TEMPLATES, drop_reason, record_frame_rate, task_problems, task_row, task_video, uses_templates,
)

logger = logging.getLogger("verl_video.data")


@dataclass(frozen=True)
class DatasetItem:
    """One sample: a record, its dataset and how its video is sampled and prompted."""

    dataset: str
    record: Record
    video: VideoRequest
    template: str
    reward_preset: str | None = None  # the entry's; None: the scorer decides (rewards/scorer.py composite_for)


def read_data_config(path: str, video_root: str | None = None) -> DataConfig:
    """A data_config YAML as is, or a one-dataset config around an annotation file (videos under `video_root`)."""
    if path.endswith((".yaml", ".yml")):
        if video_root:
            raise ValueError("--video-root applies to an annotation file; a data_config names data_folder per dataset")
        return load_data_config(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: annotation file not found")
    return single_file_config(path, video_root)


def load_items(
    data_files: list[str], settings: VideoDataSettings, training: bool = True, video_root: str | None = None,
    tally: DropTally | None = None,
) -> list[DatasetItem]:
    """The items of every data_config (or annotation file), each dataset's strategy applied.

    training: records training cannot use are dropped or repaired (annotations/checks.py) and datasets are
    mixed by weight, and data that leaves no item at all is an error (NoUsableData, every reason counted in
    `tally`); otherwise (evaluation) every record is kept once, in file order.
    """
    tally = tally if tally is not None else DropTally()
    items: list[DatasetItem] = []
    for path in data_files:
        config = read_data_config(str(path), video_root)
        seed = sampling_seed(config.seed, settings.seed)
        selected = []
        for entry in config.datasets:
            records = read_annotations(entry.json_path, entry.format, entry.read_options)
            tally.read(entry.name, entry.json_path, len(records))
            # One generator per dataset and purpose: `random:N` picks the same records for every command.
            records = apply_sampling_strategy(records, entry.sampling_strategy, dataset_rng(seed, entry.name, "strategy"))
            check_template(entry, records)
            selected.append((entry, _training_records(records, entry, tally) if training else records))
        pairs = mix_datasets(selected, seed) if training else [(e, r) for e, records in selected for r in records]
        items.extend(make_item(entry, record, settings) for entry, record in pairs)
    if training and not items:
        raise tally.error(list(data_files))
    return items


def check_template(entry: DatasetEntry, records: list[Record]) -> None:
    """Refuse an entry's `prompt_template` that a task of its records would not use (its own prompts ignore it)."""
    if not entry.prompt_template or entry.prompt_template in STYLE_TEMPLATES:
        return
    for task_name in sorted({entry.task or record.task for record in records}):
        if not uses_templates(task_name):
            raise DataConfigError(
                f"{entry.where('prompt_template')}: {entry.prompt_template!r} would be ignored by task "
                f"{task_name!r}, which writes its own prompt and takes only its style from the template: "
                f"use one of {', '.join(STYLE_TEMPLATES)}, or change the task's `prompts`"
            )


def _training_records(records: list[Record], entry: DatasetEntry, tally: DropTally) -> list[Record]:
    usable, dropped, fixed = [], 0, 0
    for record in records:
        ready, changes = training_ready(replace(record, task=entry.task or record.task))
        problems = task_problems(ready) if ready is not None else []
        if ready is None or problems:
            dropped += 1
            tally.drop(entry.name, drop_reason(changes, problems))
            continue
        fixed += bool(changes)
        usable.append(ready)
    if dropped or fixed:
        logger.warning(
            "verl-video data: %s: %d records dropped and %d clipped or swapped (run `verl-video validate` for details)",
            entry.name, dropped, fixed,
        )  # fmt: skip
    return usable


def make_item(entry: DatasetEntry, record: Record, settings: VideoDataSettings) -> DatasetItem:
    """The item of one record: the entry's task, preset, budget overrides and template over the run's settings."""
    record = replace(record, task=entry.task or record.task, source=record.source or entry.name)
    budget = settings.budget.with_overrides(entry.budget_overrides)
    request = VideoRequest(
        path=entry.resolve_video(record.video), budget=budget, video_start=record.video_start, video_end=record.video_end,
        frame_rate=record_frame_rate(record, entry.read_options.get("frame_rate")),
    )  # fmt: skip
    template = prompt_template_for(entry.prompt_template, record.extra.get("prompt_template"), settings.prompt_template)
    return DatasetItem(dataset=entry.name, record=record, video=request, template=template, reward_preset=entry.reward_preset)


def build_row(item: DatasetItem, index: int, duration: float) -> dict[str, Any]:
    """The verl row for `item`: prompt with `<video>`, the `videos` column, reward ground truth, extra_info.

    The record's task gives prompt, ground truth (with its `answer_kind`), video request (exact frames
    when it needs them) and default preset, so nothing here branches on a task. extra_info carries what
    the rewards need to know about the prompt (answer style, whether it asks for a <think> block), so
    that they never look up templates themselves.
    """
    record = item.record
    template = get_template(item.template)
    parts = task_row(record, template, duration, item.video, item.reward_preset)
    return {
        "data_source": item.dataset,
        "prompt": parts.messages,
        "videos": [parts.video.to_item()],
        "reward_model": {"style": "rule", "ground_truth": parts.ground_truth},
        "extra_info": {
            **({"reward_preset": parts.reward_preset} if parts.reward_preset else {}),
            "index": index,
            "id": record.id,
            "task": record.task,
            "duration": duration,
            "video": item.video.path,
            "video_start": record.video_start,
            "video_end": record.video_end,
            "query": record.query,
            "prompt_template": item.template if template.name == "custom" else template.name,
            "answer_style": template.answer_style,
            "think": template.think,
            "data_replaced": 0,
        },
    }


def item_video(item: DatasetItem) -> VideoRequest:
    """The video request training makes for `item` (its task's exact frames when it needs them), without a row."""
    return task_video(item.record, item.video)


def seen_duration(item: DatasetItem) -> float:
    """Seconds the model sees: the annotation's duration, else the clip or file length from the header.

    The header is read either way (once per file and process): a missing or unreadable video raises here.
    """
    probe = probe_video(item.video.path, item.video.frame_rate)
    window = clip_window(probe.duration, item.video.video_start, item.video.video_end, item.video.path)
    return float(item.record.duration) if item.record.duration else window[1]


def require_usable_video(items: list[DatasetItem], tally: DropTally, data_files: list[str]) -> None:
    """Probe the items' videos in order until one opens; NoUsableData (each failure counted) when none does."""
    for item in items:
        try:
            seen_duration(item)
            return
        except VideoError as exc:
            tally.drop(item.dataset, video_reason(item, exc))
    raise tally.error(data_files)


def video_reason(item: DatasetItem, exc: Exception) -> str:
    """A bad video's problem without its path, so that the same problem of many files counts as one reason."""
    return "video: " + str(exc).replace(item.video.path, "").lstrip(": ")


def for_model(items: list[DatasetItem], processor: Any) -> list[DatasetItem]:
    """Items whose videos are planned with the processor's geometry (refused for an unsupported model)."""
    if processor is None:
        return items
    geometry = video_geometry(processor)
    return [replace(item, video=replace(item.video, geometry=geometry)) for item in items]


@dataclass
class PreparedItem:
    """An item ready for a model: its row, the rendered prompt and the decoded video."""

    item: DatasetItem
    row: dict[str, Any]
    prompt: str
    frames: torch.Tensor  # uint8 (T, C, H, W)
    metadata: dict[str, Any]  # transformers VideoMetadata fields, `fps` being the true sampled rate

    @property
    def duration(self) -> float:
        """Seconds the model sees (the ground truth's time base; every task's row carries it in extra_info)."""
        return float(self.row["extra_info"]["duration"])


def prepare_item(
    item: DatasetItem, index: int, settings: VideoDataSettings, processor: Any, keep_in_memory: bool = True
) -> PreparedItem:
    """Decode `item`'s video (through the caches training uses) and render its prompt as training does."""
    [item] = for_model([item], processor)
    row = build_row(item, index, seen_duration(item))
    # The row's request, not the item's: a task may ask for exact frames (tracking), as training shows them.
    video = VideoRequest.from_item(row["videos"][0], item.video.budget)
    frames, metadata = load_video(video, settings, keep_in_memory).as_processor_input()
    return PreparedItem(item, row, render_prompt(processor, row["prompt"]), frames, metadata)
