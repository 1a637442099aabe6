"""A zoom window's frames reach the model at their time in the ORIGINAL video, per family, read off barcodes.

A 100-s video whose frames show their own time as a barcode is cut into windows (at 0, in the middle, near and
past the end, non-integer starts), each decoded through its plan and run through the tiny model's real
processor with `window_video_inputs`:
- Qwen3-VL: the `<t seconds>` the processor writes for each frame group equals the mean of that group's
  barcode times, to the processor's one decimal;
- Qwen2.5-VL: the window start said in the text plus the group's temporal M-RoPE position / tokens_per_second
  equals the barcode time of the group's first frame (positions restart at each video).
`pytest -s` prints the table (window, group, time given, time shown).
"""

from __future__ import annotations

import re

import pytest
import torch
from synthetic_video import time_of, write_video

from verl_video.models.family import video_geometry
from verl_video.models.rope_time import rope_index_kwargs
from verl_video.models.window_time import window_video_inputs
from verl_video.video.settings import VideoBudget
from verl_video.video.windows import Window, decode_window, plan_window

DURATION = 100.0
BUDGET = VideoBudget(fps=2.0, max_frames=16, min_frames=2)
WINDOWS = {
    # name: (start, end, budget overrides)
    "first": (0.0, 4.0, {}),
    "middle": (47.3, 51.3, {}),
    "non-integer": (12.34, 16.81, {}),
    "slow": (20.5, 36.5, {"fps": 1.0}),  # 2 s per frame group
    "near end": (95.6, 99.9, {}),
    "past end": (96.2, 103.0, {}),  # clamped to [96.2, 100.0]
}
STAMP = re.compile(r"<(\d+(?:\.\d+)?) seconds><\|vision_start\|>")
SAID_START = re.compile(r"Frames from (\d+(?:\.\d+)?) s to")


@pytest.fixture(scope="module")
def barcode_video(tmp_path_factory):
    """100 s at 10 fps, each frame showing its time as a barcode (0.1-s resolution)."""
    return write_video(tmp_path_factory.mktemp("windows") / "long.mp4", [(DURATION, 10)])


def decoded_window(name: str, path, processor) -> tuple[Window, torch.Tensor, list[float]]:
    """The window, its decoded frames and the time each frame's barcode shows."""
    start, end, overrides = WINDOWS[name]
    budget = BUDGET.with_overrides(overrides)
    window = plan_window(start, end, DURATION, 120, 160, budget, geometry=video_geometry(processor))
    assert isinstance(window, Window), window
    frames = decode_window(str(path), window).frames
    return window, frames, [time_of(f.permute(1, 2, 0).numpy()) for f in frames]


def processed(processor, name: str, path):
    """Processor outputs (ids, grids, ...) of a user turn `text + <video>` for the window, and the window facts."""
    window, frames, shown = decoded_window(name, path, processor)
    inputs = window_video_inputs(processor, window, frames)
    messages = [{"role": "user", "content": [{"type": "text", "text": inputs.text}, {"type": "video"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    video, metadata = inputs.video
    out = processor(
        text=[text], videos=[video], video_metadata=[metadata], do_sample_frames=False,
        return_mm_token_type_ids=True, return_tensors="pt",
    )  # fmt: skip
    return out, window, shown


def print_table(family: str, rows: list[tuple[str, int, float, float]]) -> None:
    print(f"\n{family}: window | group | time given | time shown (barcode)")
    for name, group, given, shown in rows:
        print(f"  {name:<12} | {group:>2} | {given:7.2f} | {shown:7.2f}")


def test_qwen3_timestamps_are_original_times(barcode_video, tiny_qwen3_processor):
    processor = tiny_qwen3_processor
    patch = video_geometry(processor).temporal_patch_size
    rows = []
    for name in WINDOWS:
        out, window, shown = processed(processor, name, barcode_video)
        written = [float(t) for t in STAMP.findall(processor.tokenizer.decode(out["input_ids"][0]))]
        assert len(written) == len(shown) // patch == int(out["video_grid_thw"][0][0])
        for g, given in enumerate(written):
            group = shown[g * patch : (g + 1) * patch]
            true_time = sum(group) / len(group)
            rows.append((name, g, given, true_time))
            assert abs(given - true_time) <= 0.05 + 1e-6, (name, g, given, group)
        assert written[0] >= window.start - 1e-6  # original time, not time from 0
    print_table("qwen3_vl", rows)


def test_qwen2_5_start_plus_positions_are_original_times(barcode_video, tiny_processor):
    processor = tiny_processor
    patch = video_geometry(processor).temporal_patch_size
    tokens_per_second = processor.config.vision_config.tokens_per_second
    video_token = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    rows = []
    for name in WINDOWS:
        out, window, shown = processed(processor, name, barcode_video)
        said = SAID_START.search(processor.tokenizer.decode(out["input_ids"][0]))
        start = float(said.group(1))
        positions, _ = processor.get_rope_index(
            out["input_ids"], out["mm_token_type_ids"], video_grid_thw=out["video_grid_thw"],
            attention_mask=out["attention_mask"], **rope_index_kwargs(dict(out)),
        )  # fmt: skip
        ids = out["input_ids"][0]
        temporal = positions[0, 0, ids == video_token]  # axis 0 of (3, batch, length) is time
        grid_t, grid_h, grid_w = out["video_grid_thw"][0].tolist()
        per_group = grid_h * grid_w // video_geometry(processor).merge_size ** 2
        group_positions = (temporal[::per_group] - temporal[0]).tolist()
        assert len(group_positions) == grid_t == len(shown) // patch
        for g, position in enumerate(group_positions):
            given = start + position / tokens_per_second
            first_frame = shown[g * patch]
            rows.append((name, g, given, first_frame))
            assert given == pytest.approx(first_frame, abs=1e-6), (name, g, given, first_frame)
    print_table("qwen2_5_vl", rows)


def test_qwen3_window_metadata_is_what_moves_the_timestamps(barcode_video, tiny_qwen3_processor):
    """The failure window_video_inputs prevents: the decoder's own metadata counts from 0, so a window at 47.3 s
    would be written as starting at 0.2 s."""
    processor = tiny_qwen3_processor
    window, frames, _ = decoded_window("middle", barcode_video, processor)
    plain = decode_window(str(barcode_video), window).metadata
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}]}], add_generation_prompt=True, tokenize=False
    )
    out = processor(text=[text], videos=[frames], video_metadata=[plain], do_sample_frames=False, return_tensors="pt")
    assert float(STAMP.findall(processor.tokenizer.decode(out["input_ids"][0]))[0]) < 1.0


def test_qwen2_vl_is_told_window_and_spacing(barcode_video):
    """Qwen2-VL's positions carry only the order: the text gives the start and the seconds per frame group."""
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    processor = build_processor(build_tokenizer(), "qwen2_vl")
    window, frames, _ = decoded_window("slow", barcode_video, processor)
    inputs = window_video_inputs(processor, window, frames)
    assert inputs.text == "Frames from 20.5 s to 36.5 s of the video, one frame group every 2 s."
    with pytest.raises(ValueError, match="frames given"):
        window_video_inputs(processor, window, frames[:2])
