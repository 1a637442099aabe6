"""The video-processor memo: the same processor outputs, computed once per distinct video and arguments."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoProcessor

from verl_video.video.processor_memo import VideoProcessorMemo, memoize_video_processor


@pytest.fixture(params=["qwen2_5_vl", "qwen3_vl"])
def processors(request):
    model_dir = request.getfixturevalue({"qwen2_5_vl": "tiny_model_dir", "qwen3_vl": "tiny_qwen3_model_dir"}[request.param])
    return AutoProcessor.from_pretrained(model_dir), memoize_video_processor(AutoProcessor.from_pretrained(model_dir))


def _video(seed: int, frames: int = 8, size: int = 56, fps: float = 2.0):
    pixels = torch.randint(0, 255, (frames, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return pixels, {"fps": fps, "total_num_frames": frames, "frames_indices": list(range(frames)), "duration": frames / fps}


def _call(processor, video):
    text = processor.video_token + " when?"
    return processor(text=[text], videos=[video[0].clone()], video_metadata=[dict(video[1])], do_sample_frames=False,
                     return_tensors="pt")


def test_memoised_processor_returns_what_the_plain_one_does_and_processes_once(processors):
    plain, memoised = processors
    memo = memoised.video_processor
    assert isinstance(memo, VideoProcessorMemo)
    video = _video(0)
    expected = _call(plain, video)
    first, second = _call(memoised, video), _call(memoised, video)
    for got in (first, second):
        assert set(got) == set(expected)
        for key in expected:
            assert torch.equal(got[key], expected[key]), key
    assert (memo.calls, memo.hits) == (2, 1)
    # The processor pops keys from the video processor's result (Qwen3-VL: the metadata): a third call still
    # gets the timestamps that come from it, i.e. the stored result was not emptied by the first two.
    assert torch.equal(_call(memoised, video)["input_ids"], expected["input_ids"])


def test_other_frames_or_other_metadata_are_processed_anew(processors):
    plain, memoised = processors
    memo = memoised.video_processor
    _call(memoised, _video(0))
    other_frames = _video(1)
    assert torch.equal(_call(memoised, other_frames)["pixel_values_videos"], _call(plain, other_frames)["pixel_values_videos"])
    slower = _video(0, fps=1.0)
    assert torch.equal(_call(memoised, slower)["input_ids"], _call(plain, slower)["input_ids"])
    assert memo.hits == 0


def test_memo_drops_the_oldest_results_beyond_its_cap(tiny_qwen3_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_qwen3_model_dir)
    one = _call(processor, _video(0))["pixel_values_videos"].nbytes
    memo = VideoProcessorMemo(processor.video_processor, cap_mb=2.5 * one / 2**20)
    processor.video_processor = memo
    for seed in (0, 1, 2):
        _call(processor, _video(seed))
    _call(processor, _video(2))
    assert memo.hits == 1
    _call(processor, _video(0))  # dropped when the third video came in
    assert memo.hits == 1
    assert memoize_video_processor(processor).video_processor is memo  # installed once


def test_memo_serves_threads_evicting_each_other():
    # verl's agent-loop worker calls the processor from a thread pool; a small cap makes every call evict.
    from concurrent.futures import ThreadPoolExecutor

    def inner(videos=None, **kwargs):
        return {"pixel_values_videos": videos[0].float() * 2, "video_grid_thw": torch.tensor([[1, 1, 1]])}

    videos = [torch.full((64,), float(i)) for i in range(5)]
    memo = VideoProcessorMemo(inner, cap_mb=2.5 * 256 / 2**20)

    def ask(i: int) -> bool:
        out = memo(videos=[videos[i % 5].clone()], return_tensors="pt")
        return torch.equal(out["pixel_values_videos"], videos[i % 5] * 2)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(ask, range(400)))
    assert memo.calls == 400
