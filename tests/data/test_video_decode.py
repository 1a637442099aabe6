"""Decoding by timestamp, the sampling budget, and the per-process decode cache."""

from __future__ import annotations

import os
import threading
import time

import av
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_video import erase_frames, time_of
from transformers.video_utils import VideoMetadata

from verl_video.video.decode_cache import DecodeCache
from verl_video.video.probe import VideoError, probe_video
from verl_video.video.sampling_plan import fit_frame_size, frame_count, plan_sampling, sampling_rate
from verl_video.video.settings import VideoBudget, VideoDataSettings
from verl_video.video.decode import decode_video
from verl_video.video.loader import VideoRequest, load_video


def frame_times(decoded) -> list[float]:
    return [time_of(frame.permute(1, 2, 0).numpy()) for frame in decoded.frames]


@given(duration=st.floats(0.5, 4000), fps=st.floats(0.05, 2.0), max_frames=st.integers(4, 1024))
@settings(max_examples=300, deadline=None)
def test_rate_is_2_over_k_and_frames_fit(duration, fps, max_frames):
    budget = VideoBudget(fps=fps, max_frames=max_frames)
    rate = sampling_rate(duration, budget)
    k = 2 / rate
    assert abs(k - round(k)) < 1e-9 and int(2 / rate) == round(k)  # transformers' int() keeps it
    assert rate <= fps + 1e-12
    n = frame_count(duration, rate, budget)
    assert n % 2 == 0 and 4 <= n <= max(max_frames, 4)


@given(h=st.integers(16, 4000), w=st.integers(16, 4000), lo=st.integers(4, 64), hi=st.integers(64, 2000))
@settings(max_examples=300, deadline=None)
def test_frame_size_multiple_of_28_within_budget(h, w, lo, hi):
    min_pixels, max_pixels = lo * 784, hi * 784
    fh, fw = fit_frame_size(h, w, min_pixels, max_pixels)
    assert fh % 28 == 0 and fw % 28 == 0
    assert fh * fw <= max_pixels or min(fh, fw) == 28


def test_total_pixels_bounds_video_tokens():
    budget = VideoBudget(total_pixels=1000 * 784, max_pixels=10**7)
    plan = plan_sampling(60.0, 720, 1280, budget)
    assert plan.fps == 2.0 and plan.num_frames == 120
    assert plan.num_video_tokens <= 1000


def test_long_video_lowers_rate_to_keep_max_frames():
    plan = plan_sampling(600.0, 360, 480, VideoBudget(max_frames=100))
    assert plan.num_frames <= 100 and plan.seconds_per_grid == 2 / plan.fps == 12


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
@pytest.mark.parametrize("name", ["short", "vfr", "webm"])
def test_frames_are_taken_at_their_timestamps(videos, name, decoder):
    decoded = decode_video(str(videos[name]), VideoBudget(), decoder=decoder)
    frames = decoded.frames
    assert frames.dtype == torch.uint8 and frames.shape[1] == 3 and frames.shape[0] % 2 == 0
    assert frames.shape[2] % 28 == 0 and frames.shape[3] % 28 == 0
    # The frame on screen at t started at most one source frame earlier (5 fps part: 0.2 s).
    for got, wanted in zip(frame_times(decoded), decoded.plan.times, strict=True):
        assert wanted - 0.21 <= got <= wanted + 0.05


def test_variable_frame_rate_is_right_where_index_sampling_is_wrong(videos):
    decoded = decode_video(str(videos["vfr"]), VideoBudget(fps=1.0))
    got = frame_times(decoded)
    assert abs(got[40] - 40.0) <= 0.21  # by index over 600 frames, frame 40 s would show 64 s


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_clip_is_relative_to_video_start(videos, decoder):
    decoded = decode_video(str(videos["vfr"]), VideoBudget(), video_start=20.0, video_end=30.0, decoder=decoder)
    assert decoded.plan.duration == 10.0 and decoded.frames.shape[0] == 20
    for i, got in enumerate(frame_times(decoded)):
        assert 20.0 + i / 2 - 0.21 <= got <= 20.0 + i / 2 + 0.05


def test_metadata_is_accepted_by_transformers(videos):
    decoded = decode_video(str(videos["short"]), VideoBudget(fps=0.5))
    meta = VideoMetadata(**decoded.metadata)
    assert meta.sampled_fps == 0.5 and meta.timestamps == [i * 2.0 for i in range(decoded.frames.shape[0])]


def test_short_video_is_padded_to_min_frames(videos):
    decoded = decode_video(str(videos["webm"]), VideoBudget(min_frames=16))
    assert decoded.frames.shape[0] == 16
    assert frame_times(decoded)[-1] == pytest.approx(3.9, abs=0.11)  # padding repeats the last frame


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_damaged_files_raise_video_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="bad.mp4"):
        decode_video(str(path), VideoBudget())


def test_missing_file_raises_video_error(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        probe_video(str(tmp_path / "nope.mp4"))


def test_concurrent_requests_share_one_decode():
    cache = DecodeCache(max_bytes=100, size_of=len)
    calls = []

    def slow() -> bytes:
        calls.append(1)
        time.sleep(0.2)
        return b"x" * 10

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8 and cache.misses == 1 and cache.hits == 7


def test_lru_is_bounded_by_bytes():
    cache = DecodeCache(max_bytes=25, size_of=len)
    for key in "abc":
        cache.get_or_compute(key, lambda: b"x" * 10)
    assert len(cache) == 2 and cache.nbytes == 20 and cache.misses == 3
    cache.get_or_compute("c", lambda: pytest.fail("a cached value was recomputed"))
    cache.get_or_compute("a", lambda: b"y" * 10)  # the oldest was evicted: computed again
    assert cache.misses == 4 and len(cache) == 2


def test_load_video_decodes_once_and_notices_edits(videos, tmp_path):
    path = tmp_path / "copy.mp4"
    path.write_bytes(videos["short"].read_bytes())
    settings = VideoDataSettings()
    request = VideoRequest(str(path), VideoBudget(fps=1.0))
    first = load_video(request, settings)
    assert load_video(request, settings) is first
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # same bytes, new mtime: a new identity
    assert load_video(request, settings) is not first


def test_a_header_without_duration_is_measured_and_the_video_decodes(videos):
    path = str(videos["no_duration"])  # 60 frames at 10 fps, streamed: no duration in the WebM header
    with av.open(path) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    probe = probe_video(path)
    assert probe.measured and probe.duration == pytest.approx(6.0, abs=0.11)
    decoded = decode_video(path, VideoBudget(fps=2.0))
    # The frames are the ones on screen at the planned instants, which span the measured length.
    assert decoded.plan.duration == probe.duration and decoded.frames.shape[0] == decoded.plan.num_frames >= 4
    shown = [time_of(frame.permute(1, 2, 0).numpy()) for frame in decoded.frames]
    assert shown == pytest.approx(decoded.plan.times, abs=0.11)


def test_a_video_that_fails_to_decode_is_tried_once_per_identity(videos, tmp_path, monkeypatch):
    from verl_video.video import loader as video_loader

    path = tmp_path / "erased.mp4"
    path.write_bytes(videos["short"].read_bytes())
    erase_frames(path)
    assert probe_video(str(path)).duration > 0  # the start-up header check passes
    attempts = []
    real = video_loader.decode_video
    monkeypatch.setattr(video_loader, "decode_video", lambda *a, **k: attempts.append(1) or real(*a, **k))
    request = VideoRequest(str(path), VideoBudget(fps=1.0))
    for _ in range(3):  # the n rollouts of one prompt
        with pytest.raises(VideoError, match="cannot decode"):
            load_video(request, VideoDataSettings())
    assert len(attempts) == 1


@pytest.mark.parametrize(
    "name, seconds",
    [("OHOFG.mp4", 35.1), ("big_buck_bunny_0_30.webm", 30.0), ("flipping_a_pancake.mkv", 10.4), ("office.mp4", 15.0)],
)
def test_real_videos_decode_alike_with_both_decoders(shared_data, name, seconds):
    path = str(shared_data / "videos" / name)
    assert probe_video(path).duration == pytest.approx(seconds, abs=0.2)
    budget = VideoBudget(fps=1.0, total_pixels=64 * 784 * 2)
    by_decord = decode_video(path, budget, decoder="decord")
    by_pyav = decode_video(path, budget, decoder="pyav")
    assert by_decord.frames.shape == by_pyav.frames.shape and by_decord.frames.shape[0] == 2 * int(seconds // 2)
    # Same instants, same size: the two decoders' frames differ only by scaler rounding.
    diff = (by_decord.frames.float() - by_pyav.frames.float()).abs().mean()
    assert diff < 8, diff
