"""Qwen3-VL's time encoding: the `<t seconds>` the processor writes before each frame group are the times of
the frames the model sees in that group.

Qwen3-VL has no time in its positions; its processor computes each group's time from the video metadata
(frame indices / fps, averaged over the temporal patch) and writes it into the prompt. Metadata that does
not describe the frames handed over (missing: the processor assumes 24 fps) gives wrong times with no
error. Runs our multimodal path as verl 0.9.1's agent loop does (dataset class -> processor with
video_metadata and do_sample_frames=False) on the tiny Qwen3-VL processor, reads the frames' barcodes,
for a short video at 2 fps, a long one whose rate drops (frame cap) and a clip [20 s, 30 s].
"""

from __future__ import annotations

import asyncio
import re

import pytest
from synthetic_video import time_of
from test_video_mrope import video_messages
from verl.utils.tokenizer import build_multimodal_processor_inputs

from verl_video.verl_adapter.rl_dataset import VideoRLDataset
from verl_video.video.settings import VideoBudget
from verl_video.video.loader import VideoRequest
from verl_video.models.family import video_geometry

CASES = {
    # name: (video, budget overrides, clip start, clip end, expected sampled fps)
    "short": ("short", {"fps": 2.0}, None, None, 2.0),
    "long": ("vfr", {"fps": 2.0, "max_frames": 32}, None, None, 0.4),  # 70 s, 32 frames: 2/5 fps
    "clipped": ("vfr", {"fps": 1.0}, 20.0, 30.0, 1.0),
}
STAMP = re.compile(r"<(\d+(?:\.\d+)?) seconds><\|vision_start\|>((?:<\|video_pad\|>)*)<\|vision_end\|>")


def written_times(processor, input_ids) -> list[tuple[float, int]]:
    """(seconds, video tokens) of each frame group as written into the prompt."""
    text = processor.tokenizer.decode(input_ids, skip_special_tokens=False)
    return [(float(t), pads.count("<|video_pad|>")) for t, pads in STAMP.findall(text)]


def decoded_request(case: str, videos, processor) -> tuple[VideoRequest, list, float | None]:
    name, overrides, start, end, _ = CASES[case]
    budget = VideoBudget().with_overrides(overrides)
    request = VideoRequest(str(videos[name]), budget, start, end, geometry=video_geometry(processor))
    messages = video_messages(request)
    _, videos_in, _ = asyncio.run(VideoRLDataset.process_multi_modal_info(messages, 16, {"video": {}}))
    return messages, videos_in, start


@pytest.mark.parametrize("case", sorted(CASES))
def test_prompt_timestamps_are_frame_times(case, videos, tiny_qwen3_processor):
    processor = tiny_qwen3_processor
    messages, videos_in, start = decoded_request(case, videos, processor)
    frames, metadata = videos_in[0]
    assert metadata["fps"] == pytest.approx(CASES[case][4])

    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(processor, text=[text], videos=videos_in)
    grid_t, grid_h, grid_w = inputs["video_grid_thw"][0].tolist()
    stamps = written_times(processor, inputs["input_ids"][0].tolist())
    geometry = video_geometry(processor)
    patch = geometry.temporal_patch_size
    assert grid_t == frames.shape[0] // patch == len(stamps)
    assert all(tokens == grid_h * grid_w // geometry.merge_size**2 for _, tokens in stamps)

    # What the frames really show (their barcodes), relative to the clip start; a group's time is the mean of
    # its frames' times, written with one decimal.
    shown = [time_of(f.permute(1, 2, 0).numpy()) - (start or 0.0) for f in frames]
    for g, (written, _) in enumerate(stamps):
        group = shown[g * patch : (g + 1) * patch]
        true_time = sum(group) / len(group)
        # Source frames are 0.2 s apart at worst (the frame on screen is at most that early), plus rounding.
        assert true_time - 0.05 <= written <= true_time + 0.26, (g, written, group)
    print(f"\nqwen3_vl {case}: fps {metadata['fps']:.3g}, {grid_t} groups, written/shown "
          + ", ".join(f"{w:.1f}/{sum(shown[g * patch:(g + 1) * patch]) / patch:.2f}" for g, (w, _) in enumerate(stamps[:6])))


def test_timestamps_without_metadata_are_wrong(videos, tiny_qwen3_processor):
    """The failure the metadata prevents: frames alone make the processor assume 24 fps (times 12x too small)."""
    processor = tiny_qwen3_processor
    messages, videos_in, _ = decoded_request("short", videos, processor)
    frames, _ = videos_in[0]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=[frames], do_sample_frames=False, return_tensors="pt")
    stamps = [t for t, _ in written_times(processor, inputs["input_ids"][0].tolist())]
    assert stamps[1] - stamps[0] == pytest.approx(2 / 24, abs=0.051)  # 1 s apart at 2 fps

