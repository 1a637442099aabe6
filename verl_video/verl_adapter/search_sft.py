"""Supervised search traces: a warm start that teaches the `video_search` loop's protocol before GRPO.

A random model never writes a valid `<zoom>` call, so GRPO on the search loop needs a start that has learned
the protocol. For each grounding record a trace is the conversation the loop would build for one scripted zoom:
- turn 1: the record's prompt with its video at the OVERVIEW budget and the zoom instructions
  (`search_prompt.py`: `overview_item`, `zoom_instructions`, `append_instructions`, as the loop and the
  prompt-length filter take them);
- the assistant's `<zoom>a, b</zoom>` (`search_agent_loop.zoom_call`), by `search.trace_window`:
  `random`: a window of the zoom budget's length (max_frames / fps seconds, cut to the video) that holds the
  event, at a seeded random offset (numbers the overview does not determine);
  `overview`: from the last overview time stamp at least `search.trace_margin` s before the event to the first
  at least that long after it (the video's ends where there is none): numbers the model reads in the overview,
  copied, where the random window asks it to invent an offset. Such windows are often longer than one call's
  frames at the zoom rate, so they go with `search.long_windows: lower_rate`;
- the zoom answer exactly as the loop builds it (`plan_zoom`, `zoom_answer`, `answer_message`): the window's
  text, then its frames as a second video, at their original times;
- the assistant's answer in the training format (`sft_dataset.answer_text`).
The loss covers the two assistant turns (their text and end-of-turn token), as the loop's response mask does;
the two videos reach the processor in order, so grids, Qwen3-VL timestamps and Qwen2.5-VL seconds per grid
follow each video, and the M-RoPE positions are the model's own rule over both (`rope_positions`).

Records that are not grounding records (no interval), clips, or whose window cannot be served are left out.

Two trainers take the traces (`verl-video warm-start` of a run whose agent loop is `video_search`):
- verl's SFT trainer (`--trainer verl`, tools/verl_sft.py): `VideoSearchSFTDataset` is its `data.custom_cls`,
  reading the run's `search:` block from `data.search` and the scripted zooms' seed from `data.seed`; each sample
  is `sft_sample` of `encode_traces` (ids, loss mask, both videos' processor outputs, M-RoPE positions), which
  verl's collator and engine take as they take a single-video sample (its vision inputs concatenated in order);
- the hand-written loop (`--trainer loop`, tools/warm_start.py `search_examples`): `load_traces` + `encode_traces`.
Both give the same tokens, mask, videos and positions for a record, and the same first-step loss
(tests/tools/test_search_warm_start.py). verl's dataset leaves out think-template records without reasoning, as
`VideoSFTDataset` does, where the loop writes the demo's explanation of the query. Both leave out records that are
not grounding records with a time interval (verl's dataset counts them in a warning); a record whose window cannot be served (found only
when its trace is built) is replaced in verl's dataset by the next one's, dropped by the loop.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
# verl's agent loop first: importing it registers our plugin, whose trainer imports the search loop's fields.
import verl.experimental.agent_loop.agent_loop  # noqa: F401

from verl_video.annotations.records import DEFAULT_TASK
from verl_video.pipeline.items import DatasetItem, build_row, for_model, load_items, seen_duration
from verl_video.pipeline.sft_dataset import VideoSFTDataset, answer_text, processor_inputs, sft_sample
from verl_video.tasks.prompts import chat_content
from verl_video.verl_adapter.search_agent_loop import answer_message, plan_zoom, zoom_answer, zoom_call
from verl_video.models.family import video_geometry
from verl_video.verl_adapter.search_prompt import OVERVIEW, SearchSettings, append_instructions
from verl_video.video.loader import VideoRequest, load_video
from verl_video.video.settings import VideoDataSettings
from verl_video.video.windows import WINDOW_RESOLUTION, WindowError

logger = logging.getLogger("verl_video")

# The Qwen-VL chat templates' end of a turn: the loop's model turns end with it (mask 1).
END_OF_TURN = "<|im_end|>"


@dataclass
class SearchTrace:
    """One record's supervised search conversation: chat messages (videos as placeholders) and its two videos."""

    item: DatasetItem
    messages: list[dict]  # system?, user (overview + instructions), assistant zoom, user window, assistant answer
    videos: list[tuple[torch.Tensor, dict]]  # (frames, metadata): the overview, then the window
    zoom: tuple[float, float]


def scripted_window(interval: tuple[float, float], duration: float, seconds: float, rng: random.Random) -> tuple[float, float]:
    """A window of `seconds` (cut to the video) that holds `interval`, at a random offset on the 0.1 s grid."""
    step = WINDOW_RESOLUTION
    length = min(seconds, duration)
    start, end = interval
    # Start on the grid, late enough to reach the event's end and early enough to hold its start and stay in.
    low = max(0.0, math.ceil(round((end - length) / step, 6)) * step)
    high = min(math.floor(round(start / step, 6)) * step, math.floor(round((duration - length) / step, 6)) * step)
    if high < low:  # the event is longer than a window: centre on it
        low = high = max(0.0, min(round((start + end - length) / 2 / step) * step, duration - length))
    first = low + step * rng.randint(0, round((high - low) / step))
    return round(first, 1), round(min(first + length, duration), 1)


def overview_stamps(video: tuple[torch.Tensor, dict], temporal_patch: int) -> list[float]:
    """The time of each frame group of a (frames, metadata) video as Qwen3-VL's processor writes it (0.1 s)."""
    metadata = video[1]
    times = [index / metadata["fps"] for index in metadata["frames_indices"]]
    times += times[-1:] * (-len(times) % temporal_patch)  # the processor repeats the last frame to fill a group
    return [float(f"{(times[i] + times[i + temporal_patch - 1]) / 2:.1f}") for i in range(0, len(times), temporal_patch)]


def stamped_window(
    interval: tuple[float, float], stamps: list[float], duration: float, margin: float
) -> tuple[float, float]:
    """From the last of `stamps` at least `margin` s before `interval` to the first at least that long after it."""
    start, end = interval
    first = max((t for t in stamps if t <= start - margin), default=0.0)
    last = min((t for t in stamps if t >= end + margin), default=duration)
    return round(first, 1), round(min(last, duration), 1)


def can_trace(item: DatasetItem) -> bool:
    """Whether `item` is a grounding record with a time interval: the records a scripted zoom can be built for."""
    return item.record.task == DEFAULT_TASK and bool(item.record.timestamps)


def build_trace(
    processor: Any, item: DatasetItem, index: int, settings: VideoDataSettings, search: SearchSettings, seed: int = 0,
    target: Callable[[DatasetItem], str | None] | None = None,
) -> SearchTrace | None:
    """The search conversation of a grounding `item` with a seeded scripted zoom; None when it has none.

    `target` gives the final answer (default: `answer_text` of the record, None for a think template without
    reasoning)."""
    record = item.record
    if not can_trace(item):
        return None
    [item] = for_model([item], processor)
    row = build_row(item, index, seen_duration(item))
    part = search.overview_item(row["videos"][0])
    overview = load_video(VideoRequest.from_item(part, item.video.budget), settings).as_processor_input()
    messages = chat_content(row["prompt"])
    append_instructions(messages, search.zoom_instructions(overview[1].get("duration") or 0.0, len(overview[0])))
    rng = random.Random(f"{seed}:{record.origin}")
    zoom = search.zoom
    interval = tuple(record.timestamps[0])
    if search.trace_window == OVERVIEW:
        stamps = overview_stamps(overview, video_geometry(processor).temporal_patch_size)
        call = stamped_window(interval, stamps, seen_duration(item), search.trace_margin)
    else:
        call = scripted_window(interval, seen_duration(item), zoom.max_frames / zoom.fps, rng)
    window = plan_zoom(part, call, settings, search, processor)
    if isinstance(window, WindowError):
        logger.warning("verl-video search warm start: %s: no window for %s (%s)", record.origin, call, window)
        return None
    inputs = zoom_answer(part, window, settings, processor)
    target = target(item) if target is not None else answer_text(record, item.template)
    if target is None:
        return None
    messages += [
        {"role": "assistant", "content": zoom_call(*call)},
        answer_message(inputs.text, inputs.video),
        {"role": "assistant", "content": target},
    ]
    return SearchTrace(item, messages, [overview, inputs.video], call)


def _placeholders(messages: list[dict]) -> list[dict]:
    """The messages with each video item reduced to its placeholder (what the chat template renders)."""
    return [
        {**m, "content": [{"type": "video"} if p.get("type") == "video" else p for p in m["content"]]}
        if isinstance(m["content"], list) else m
        for m in messages
    ]  # fmt: skip


def assistant_mask(tokenizer: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """1 on what each assistant turn holds after its header, through its end-of-turn token, as the loop masks it."""
    header = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ids = input_ids.tolist()
    mask = torch.zeros_like(input_ids)
    i = 0
    while i + len(header) <= len(ids):
        if ids[i : i + len(header)] != header:
            i += 1
            continue
        start = i + len(header)
        stop = ids.index(end, start) if end in ids[start:] else len(ids) - 1
        mask[start : stop + 1] = 1
        i = stop + 1
    return mask


def encode_traces(processor: Any, traces: list[SearchTrace]) -> dict:
    """Processor outputs for whole traces (both videos of each, in order), right padded, with `loss_mask`."""
    end = END_OF_TURN
    texts = [
        processor.apply_chat_template(_placeholders(t.messages), add_generation_prompt=False, tokenize=False)
        for t in traces
    ]  # fmt: skip
    # The loop's sequence ends with the model's end-of-turn token; the template adds a newline after it.
    texts = [text[: text.rindex(end) + len(end)] for text in texts]
    videos = [video for t in traces for video in t.videos]
    batch = processor_inputs(processor, texts, [v[0] for v in videos], [v[1] for v in videos])
    masks = [assistant_mask(processor.tokenizer, ids) for ids in batch["input_ids"]]
    batch["loss_mask"] = torch.stack(masks) * batch["attention_mask"]
    return batch


def answer_prompt(processor: Any, trace: SearchTrace) -> dict:
    """Processor inputs of `trace` up to its final answer, with the assistant header that asks for it: what the
    model sees once the scripted window is shown (benchmarks/bench_search_oracle_window.py)."""
    text = processor.apply_chat_template(_placeholders(trace.messages[:-1]), add_generation_prompt=True, tokenize=False)
    return processor_inputs(processor, [text], [v[0] for v in trace.videos], [v[1] for v in trace.videos])


def load_traces(
    processor: Any, data: str, settings: VideoDataSettings, search: SearchSettings, max_samples: int | None = None,
    seed: int = 0, target: Callable[[DatasetItem], str | None] | None = None,
) -> list[SearchTrace]:
    """Search traces of DATA's grounding records (decoded once), under the run's video and search settings."""
    from tqdm import tqdm

    items = load_items([str(data)], settings)[:max_samples]
    traces = [build_trace(processor, item, i, settings, search, seed, target)
              for i, item in enumerate(tqdm(items, desc="search traces", unit="video", leave=False))]  # fmt: skip
    traces = [t for t in traces if t is not None]
    if not traces:
        raise ValueError(f"{data}: no grounding record gives a search trace")
    return traces


class VideoSearchSFTDataset(VideoSFTDataset):
    """verl SFT dataset (`data.custom_cls`) of search traces; `data.search` holds the run's `search:` block."""

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)
        self.search = SearchSettings.from_config(config)
        self.seed = int(config.get("seed", 0) or 0)
        # Left out here, counted and said, as the hand-written loop drops them: replacing each by its neighbour
        # (below, for a window that cannot be served) would train twice on some records.
        traceable = [item for item in self.items if can_trace(item)]
        self.not_traceable = len(self.items) - len(traceable)
        if self.not_traceable:
            logger.warning("verl-video search warm start: %d of %d records are not grounding records with a time "
                           "interval (a scripted zoom needs the event): left out", self.not_traceable, len(self.items))
        if not traceable:
            files = [parquet_files] if isinstance(parquet_files, str) else [str(f) for f in parquet_files]
            raise ValueError(f"{', '.join(files)}: no grounding record with a time interval to build a search trace "
                             f"from ({self.not_traceable} records of other tasks or without `timestamps`)")
        self.items = traceable

    def __getitem__(self, index: int) -> dict[str, Any]:
        for offset in range(len(self.items)):
            position = (index + offset) % len(self.items)
            trace = build_trace(self.processor, self.items[position], position, self.settings, self.search, self.seed)
            if trace is not None:
                break
        else:
            raise ValueError(f"no record of the SFT data gives a search trace (from index {index})")
        return sft_sample(self.processor, encode_traces(self.processor, [trace]), trace.item.record.origin,
                          self.max_length)
