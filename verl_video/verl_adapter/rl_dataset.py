"""VideoRLDataset: verl's RLHFDataset for temporal grounding, fed by data_config YAML files.

Select it with `data.custom_cls.path=pkg://verl_video.verl_adapter.rl_dataset data.custom_cls.name=VideoRLDataset`.
Its `data_files` (data.train_files / data.val_files) are data_config YAMLs, or bare annotation files.

- Construction reads annotations only; no video is decoded, and the overlong-prompt filter counts video
  tokens from each file's header (duration, size) and the sampling budget.
- `__getitem__` builds a verl row (prompt messages, one `videos` item, reward ground truth) without
  decoding, through the pipeline every command shares (`verl_video.pipeline.items`); a record whose video
  is missing or unreadable is replaced by the next good one.
- The agent loop calls `process_multi_modal_info`, which decodes through our decoder (by timestamp,
  2/k fps, resized in the decoder) and caches per process, and hands verl exact `video_metadata`.
  A video that fails to decode there becomes placeholder frames so the rollout can run; our agent loop
  (`verl_video.verl_adapter.agent_loop`) then masks that trajectory out of training and flags it for counting.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import types
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from verl.utils.dataset.rl_dataset import RLHFDataset
from verl_video.verl_adapter.agent_loop import PLACEHOLDER_BACKEND
from verl_video.pipeline.issues import DropTally, issue_log
from verl_video.pipeline.items import (
    DatasetItem, build_row, for_model, load_items, require_usable_video, seen_duration, video_reason,
)
from verl_video.pipeline.length_report import PromptLengthReport
from verl_video.verl_adapter.search_prompt import append_instructions, search_settings_for
from verl_video.video.probe import VideoError
from verl_video.video.sampling_plan import fit_frame_size, plan_sampling
from verl_video.video.settings import VideoBudget, settings_from_config
from verl_video.video.decode import DecodedVideo, plan_for_file, video_metadata
from verl_video.video.loader import VideoRequest, load_video
from verl_video.models.family import VideoGeometry, default_geometry, prompt_tokens_besides_video, video_geometry

logger = logging.getLogger("verl_video.data")

# How many following records to try when a record's video is bad, before giving up on the batch slot.
MAX_REPLACEMENT_TRIES = 64


def placeholder_video(budget: VideoBudget, geometry: VideoGeometry | None = None) -> DecodedVideo:
    """Black frames standing in for a video that failed to decode, so the rollout can still run (then masked)."""
    geometry = geometry or default_geometry()
    side = int(budget.min_pixels**0.5)
    height, width = fit_frame_size(side, side, budget.min_pixels, budget.max_pixels, geometry)
    plan = plan_sampling(budget.min_frames / 2.0, height, width, budget, geometry=geometry)
    frames = torch.zeros((plan.num_frames, 3, plan.height, plan.width), dtype=torch.uint8)
    return DecodedVideo(frames=frames, metadata=video_metadata(plan, PLACEHOLDER_BACKEND), plan=plan, backend=PLACEHOLDER_BACKEND)


def warn_if_processor_resizes(processor: Any, budgets: set[VideoBudget]) -> None:
    """Warn when a budget's per-frame pixel range leaves the video processor's: it would resize again."""
    size = getattr(getattr(processor, "video_processor", None), "size", None)
    if size is None:
        return
    lowest, highest = (size.get(k) if isinstance(size, dict) else getattr(size, k, None) for k in ("shortest_edge", "longest_edge"))
    for budget in budgets:
        if (lowest and budget.min_pixels < lowest) or (highest and budget.max_pixels > highest):
            logger.warning(
                "verl-video data: video budget pixels [%d, %d] per frame exceed the processor's [%s, %s]; "
                "frames outside it are resized again by the processor (token counts then differ from the "
                "overlong-prompt filter's); set data.video.min_pixels / max_pixels inside it",
                budget.min_pixels, budget.max_pixels, lowest, highest,
            )  # fmt: skip
            return


def video_items(messages: list[dict]) -> list[dict]:
    """The video content items of chat messages, in order."""
    return [
        part
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "video"
    ]


def loop_inputs(row: dict, processor: Any, data_config: Any = None) -> dict:
    """What verl's RLHFDataset.__getitem__ hands the agent loop for `row`: the row with its `raw_prompt` (built by
    RLHFDataset's own `_build_messages`) and without its media columns."""
    config = data_config if data_config is not None else {}
    keys = {name: config.get(name, default) for name, default in
            (("image_key", "images"), ("video_key", "videos"), ("audio_key", "audios"))}  # fmt: skip
    dataset = types.SimpleNamespace(processor=processor, **keys)
    row = copy.deepcopy(row)
    row["raw_prompt"] = RLHFDataset._build_messages(dataset, row, key=config.get("prompt_key", "prompt"))
    for key in keys.values():
        row.pop(key, None)
    return row


class VideoRLDataset(RLHFDataset):
    """RLHFDataset over data_config YAMLs with our video decoder in the agent loop."""

    def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1):
        self.settings = settings_from_config(config)
        self.search = search_settings_for(config)
        super().__init__(data_files, tokenizer, config, processor=processor, max_samples=max_samples)

    # ---- construction -------------------------------------------------------------------------
    def _download(self, use_origin_parquet: bool = False) -> None:
        files = self.original_data_files if use_origin_parquet else self.data_files
        self.data_files = [os.path.abspath(os.path.expanduser(str(f))) for f in files]

    def _read_files_and_tokenize(self) -> None:
        # Every reason a record got no row, per dataset: if none is left, start-up stops with all of them.
        self.tally = DropTally()
        items = for_model(load_items(self.data_files, self.settings, tally=self.tally), self.processor)
        total = len(items)
        if 0 < self.max_samples < total:
            rng = np.random.default_rng(self.seed if self.seed is not None else self.settings.seed)
            keep = rng.choice(total, size=self.max_samples, replace=False) if self.shuffle else range(self.max_samples)
            items = [items[i] for i in sorted(keep)]
        logger.info("verl-video data: %d samples from %s", len(items), ", ".join(self.data_files))
        warn_if_processor_resizes(self.processor, {item.video.budget for item in items})
        items = self.maybe_filter_out_long_prompts(items)
        if not self.filter_overlong_prompts or self.processor is None:
            require_usable_video(items, self.tally, self.data_files)  # the filter probed every video already
        # RLHFDataset.__getitem__ reads self.dataframe[i]; rows are built there, never stored.
        self.dataframe = RowSource(items, skip_bad_samples=self.settings.skip_bad_samples)

    def maybe_filter_out_long_prompts(self, dataframe: list[DatasetItem] = None) -> list[DatasetItem]:
        """Drop items whose prompt (text + video tokens counted from headers) exceeds max_prompt_length."""
        if not self.filter_overlong_prompts or self.processor is None:
            return dataframe
        kept, unreadable = [], 0
        report = PromptLengthReport(dataframe, self.max_prompt_length)
        for item in tqdm(dataframe, desc=f"Counting prompt tokens (limit {self.max_prompt_length})", mininterval=2):
            try:
                length = self.estimate_prompt_length(item)
            except VideoError as exc:
                unreadable += 1
                issue_log.report("unreadable_video", item.video.path, str(exc))
                self.tally.drop(item.dataset, video_reason(item, exc))
                continue
            if report.keeps(item, length):
                kept.append(item)
            else:
                self.tally.drop(item.dataset, f"prompt longer than data.max_prompt_length={self.max_prompt_length}")
        self.unreadable_videos = unreadable
        report.log()
        log = logger.warning if unreadable else logger.info
        log(
            "verl-video data: kept %d of %d samples (%d over %d tokens, %d unreadable videos)",
            len(kept), len(dataframe), len(dataframe) - len(kept) - unreadable, self.max_prompt_length, unreadable,
        )  # fmt: skip
        if not kept:
            raise self.tally.error(self.data_files)
        return kept

    def estimate_prompt_length(self, item: DatasetItem) -> int:
        """Prompt tokens of `item`: the rendered chat text plus the video tokens its sampling plan yields (with the
        `video_search` loop: of the overview, and the zoom instructions it appends)."""
        row = build_row(item, 0, seen_duration(item))
        messages = self._build_messages(row, key=self.prompt_key)
        # The row's request, not the item's: a task may ask for exact frames (tracking).
        part = self.search.overview_item(row["videos"][0]) if self.search else row["videos"][0]
        video = VideoRequest.from_item(part, item.video.budget)
        plan = plan_for_file(
            video.path, video.budget, video.video_start, video.video_end, video.geometry, video.frame_rate,
            video.frame_indices,
        )  # fmt: skip
        if self.search:
            append_instructions(messages, self.search.zoom_instructions(plan.duration, plan.num_frames))
        text = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **self.apply_chat_template_kwargs
        )
        text_tokens = len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        # The one video placeholder becomes the video tokens (and, for Qwen3-VL, a timestamp per frame group).
        return text_tokens - 1 + plan.num_video_tokens + prompt_tokens_besides_video(self.processor, plan.group_seconds)

    # ---- rows ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataframe)

    def on_batch_end(self, batch) -> None:
        """Driver-side hook of verl's trainer: log how many rows of the batch replaced a bad sample."""
        infos = batch.non_tensor_batch.get("extra_info") if batch is not None else None
        replaced = sum(int(bool(info.get("data_replaced"))) for info in infos) if infos is not None else 0
        if replaced:
            logger.warning("verl-video data: %d rows of this batch replaced samples with bad videos", replaced)

    # ---- multimodal (called by verl's agent loop, in its worker processes) --------------------
    @classmethod
    def _process_multi_modal_info(cls, messages: list[dict], image_patch_size, config) -> tuple:
        """(images, videos, audios) for the processor: videos are (uint8 frames, metadata) pairs."""
        items = video_items(messages)
        if not items:
            return None, None, None
        settings = settings_from_config(config)
        videos = []
        for part in items:
            request = VideoRequest.from_item(part, settings.budget)
            try:
                decoded = load_video(request, settings)
            except VideoError as exc:
                if not settings.skip_bad_samples:
                    raise
                issue_log.report(
                    "undecodable_video", request.path, str(exc),
                    "placeholder frames stand in and its trajectories are masked out of training",
                )  # fmt: skip
                decoded = placeholder_video(request.budget, request.geometry)
            videos.append(decoded.as_processor_input())
        return None, videos, None

    @classmethod
    async def process_multi_modal_info(cls, messages: list[dict], image_patch_size, config) -> tuple:
        """Async wrapper verl's agent loop awaits; decoding runs in the default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, cls._process_multi_modal_info, messages, image_patch_size, config)


class RowSource:
    """The dataset's rows, built on access; a sample whose video is missing or unreadable (by its
    header) is replaced by the next good one, and the row records how far it moved (`data_replaced`)."""

    def __init__(self, items: list[DatasetItem], skip_bad_samples: bool = True):
        self.items = items
        self.skip_bad_samples = skip_bad_samples

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        for offset in range(min(MAX_REPLACEMENT_TRIES, len(self.items))):
            position = (int(index) + offset) % len(self.items)
            item = self.items[position]
            try:
                duration = seen_duration(item)
            except VideoError as exc:
                if not self.skip_bad_samples:
                    raise
                issue_log.report("bad_video", item.video.path, str(exc))
                continue
            row = build_row(item, position, duration)
            row["extra_info"]["data_replaced"] = offset
            return row
        raise VideoError(f"{MAX_REPLACEMENT_TRIES} consecutive samples from index {index} have unusable videos")
