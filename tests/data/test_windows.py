"""Zoom windows (verl_video/video/windows.py): a bad call becomes a message, never an exception; a good one is
planned like a whole video (whole frame groups, pixel budget) and decodes only its own frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_video import time_of, write_video

from verl_video.models.family import VideoGeometry
from verl_video.tools.demo_data import write_mp4
from verl_video.tools.long_demo_data import FPS, KEYFRAME_SECONDS
from verl_video.video import decode
from verl_video.video.settings import VideoBudget
from verl_video.video.windows import (
    EMPTY, INVALID, OUTSIDE, OVER_BUDGET, REVERSED, Window, WindowError, decode_window, plan_window,
)  # fmt: skip

BUDGET = VideoBudget(fps=2.0, max_frames=16, min_frames=2, total_pixels=16 * 160 * 120, min_pixels=3136)
DURATION = 100.0


def plan(start, end, budget: VideoBudget = BUDGET, **kwargs) -> Window | WindowError:
    return plan_window(start, end, DURATION, 120, 160, budget, **kwargs)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """100 s at 10 fps, each frame showing its time as a barcode."""
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", [(100, 10)])


@pytest.mark.parametrize(
    "start, end, reason",
    [
        (16.0, 12.0, REVERSED),
        (12.0, 12.0, EMPTY),
        (12.01, 12.04, EMPTY),  # both round to 12.0
        (100.0, 120.0, OUTSIDE),
        (-20.0, -1.0, OUTSIDE),
        (float("nan"), 3.0, INVALID),
        ("twelve", 3.0, INVALID),
        (0.0, 30.0, OVER_BUDGET),  # 30 s at 2 fps is 60 frames; a call shows 16
    ],
)
def test_bad_calls_are_messages(start, end, reason):
    result = plan(start, end)
    assert isinstance(result, WindowError)
    assert result.reason == reason
    assert result.message.startswith("zoom") and str(result) == result.message
    if reason == OUTSIDE:
        assert "lasts 100.0 s" in result.message  # the model learns where the video ends


def test_over_budget_names_the_longest_window_that_fits():
    error = plan(0.0, 30.0)
    assert "8 s" in error.message  # 16 frames at 2 fps
    assert isinstance(plan(0.0, 8.0), Window)
    lowered = plan(0.0, 30.0, lower_rate=True)
    assert isinstance(lowered, Window) and lowered.fps < 2.0
    assert len(lowered.times) <= BUDGET.max_frames


def test_partly_outside_is_clamped_and_said():
    window = plan(96.2, 103.0)
    assert (window.start, window.end, window.clamped) == (96.2, 100.0, True)
    assert "100.0" in window.note and "103" in window.note
    assert max(window.times) < 100.0
    early = plan(-2.0, 3.0)
    assert (early.start, early.times[0], early.clamped) == (0.0, 0.0, True)
    assert plan(12.0, 16.0).note == ""


def test_times_are_original_seconds_in_whole_groups():
    window = plan(12.34, 16.8)
    assert window.start == 12.3 and window.end == 16.8
    assert window.times == pytest.approx([12.3 + i / 2 for i in range(8)])
    geometry = VideoGeometry(16, 2, 4)  # a temporal patch of 4: groups stay whole
    wide = plan(12.0, 17.0, budget=BUDGET, geometry=geometry)
    assert len(wide.times) % 4 == 0


def test_pixel_budget_bounds_each_call():
    total = 8 * 28 * 28 * 4  # 8 frame groups of 4 tokens
    small = plan(0.0, 8.0, budget=VideoBudget(fps=2.0, max_frames=16, min_frames=2, total_pixels=total, min_pixels=784))
    assert small.plan.height * small.plan.width * len(small.times) // 2 <= total
    assert small.plan.height % 28 == 0 and small.plan.width % 28 == 0


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_window_decodes_its_frames(long_video, decoder):
    window = plan(47.3, 49.3)
    decoded = decode_window(str(long_video), window, decoder=decoder)
    shown = [time_of(f.permute(1, 2, 0).numpy()) for f in decoded.frames]
    assert shown == pytest.approx(window.times, abs=1e-6)


def test_window_decode_does_not_decode_the_whole_video(long_video):
    """PyAV counts what it decodes: a 2 s window of a 1000-frame video costs one GOP, not the file."""
    path = str(long_video)
    before = decode.pyav_decoded_frames[path]
    decode_window(path, plan(60.0, 62.0), decoder="pyav")
    window_cost = decode.pyav_decoded_frames[path] - before

    whole = plan_window(0.0, DURATION, DURATION, 120, 160, VideoBudget(fps=2.0, max_frames=400, min_frames=2))
    before = decode.pyav_decoded_frames[path]
    decode_window(path, whole, decoder="pyav")
    whole_cost = decode.pyav_decoded_frames[path] - before
    print(f"\nPyAV frames decoded: 2-s window at 60 s {window_cost}, whole video {whole_cost}")
    assert whole_cost >= 990
    assert 20 <= window_cost <= whole_cost // 3


# The search experiment's budgets (experiment/tiny_tvg_search_cpu.yaml): the overview and one zoom call.
OVERVIEW = VideoBudget(fps=2.0, max_frames=32, min_frames=2, total_pixels=401408, max_pixels=12544, min_pixels=3136)
ZOOM = VideoBudget(fps=2.0, max_frames=16, min_frames=2, total_pixels=200704, max_pixels=12544, min_pixels=3136)


@pytest.fixture(scope="module")
def five_minutes(tmp_path_factory):
    """The longest long-demo video: 300 s at 4 fps (1200 frames), a keyframe every 2 s, as `make-demo-data --long`
    encodes it; each frame's brightness follows its index."""
    frames = np.zeros((300 * FPS, 112, 112, 3), dtype=np.uint8)
    frames[..., 0] = (np.arange(len(frames)) % 256)[:, None, None]
    path = tmp_path_factory.mktemp("five_minutes") / "long.mp4"
    write_mp4(path, frames, FPS, keyframe_interval=KEYFRAME_SECONDS * FPS)
    return str(path)


def test_decord_is_asked_only_for_the_sampled_frames(five_minutes, monkeypatch):
    """decord decodes what `get_batch` asks for (from the keyframe before each asked frame, at most a GOP each):
    the overview asks for its 32 frames spread over the file, a window for its 16 frames inside the window."""
    import decord

    asked: list[list[int]] = []

    class RecordingReader(decord.VideoReader):
        def get_batch(self, indices):
            asked.append(list(indices))
            return super().get_batch(indices)

    monkeypatch.setattr(decord, "VideoReader", RecordingReader)
    overview = decode.decode_video(five_minutes, OVERVIEW, decoder="decord")
    window = plan_window(150.0, 158.0, 300.0, 112, 112, ZOOM)
    decode_window(five_minutes, window, decoder="decord")
    (overview_indices,), (window_indices,) = asked[:1], asked[1:]
    assert len(overview_indices) == overview.plan.num_frames == 32
    assert overview_indices[-1] - overview_indices[0] > 0.9 * 300 * FPS  # spread over the whole file
    assert len(window_indices) == window.plan.num_frames == 16
    assert all(150 * FPS <= i < 158 * FPS for i in window_indices)


def pyav_overview(path: str, monkeypatch, seek_gap_frames: float | None = None) -> tuple[torch.Tensor, int]:
    """The overview's frames through PyAV and how many frames PyAV decoded for it (`inf`: one pass, as before)."""
    if seek_gap_frames is not None:
        monkeypatch.setattr(decode, "PYAV_SEEK_GAP_FRAMES", seek_gap_frames)
    before = decode.pyav_decoded_frames[path]
    frames = decode.decode_video(path, OVERVIEW, decoder="pyav").frames
    return frames, decode.pyav_decoded_frames[path] - before


def test_pyav_overview_seeks_over_the_gaps(five_minutes, monkeypatch):
    """PyAV seeks to the keyframe before each of the overview's instants instead of decoding through the 9 s between
    them: about a GOP per instant instead of every frame up to the last instant, with the very same frames as the
    one pass and as decord; a window decodes its own frames and at most a GOP more."""
    seeking, seeking_cost = pyav_overview(five_minutes, monkeypatch)
    one_pass, one_pass_cost = pyav_overview(five_minutes, monkeypatch, float("inf"))
    before = decode.pyav_decoded_frames[five_minutes]
    decode_window(five_minutes, plan_window(150.0, 158.0, 300.0, 112, 112, ZOOM), decoder="pyav")
    window_cost = decode.pyav_decoded_frames[five_minutes] - before
    print(f"\nPyAV frames decoded of 1200: overview (32 frames) {seeking_cost} (one pass {one_pass_cost}), "
          f"8-s window (16) {window_cost}")  # fmt: skip
    assert one_pass_cost >= 1100
    assert len(seeking) == 32 and seeking_cost <= 32 * KEYFRAME_SECONDS * FPS
    assert torch.equal(seeking, one_pass)
    assert torch.equal(seeking, decode.decode_video(five_minutes, OVERVIEW, decoder="decord").frames)
    assert window_cost <= 8 * FPS + 2 * KEYFRAME_SECONDS * FPS


def test_pyav_long_gop_decodes_no_more_than_one_pass(tmp_path, monkeypatch):
    """With x264's default keyframes (one per 250 frames, about a minute at 4 fps) most instants share their GOP with
    the one before: PyAV decodes on through it (never re-decoding a GOP) and seeks only into a new one."""
    frames = np.zeros((300 * FPS, 112, 112, 3), dtype=np.uint8)
    frames[..., 1] = (np.arange(len(frames)) % 256)[:, None, None]
    path = tmp_path / "long_gop.mp4"
    write_mp4(path, frames, FPS)
    seeking, seeking_cost = pyav_overview(str(path), monkeypatch)
    one_pass, one_pass_cost = pyav_overview(str(path), monkeypatch, float("inf"))
    assert seeking_cost <= one_pass_cost
    assert torch.equal(seeking, one_pass)


def test_pyav_overview_shows_the_instants_decord_shows(long_video, monkeypatch):
    """An overview of the barcode video (a keyframe every 25 s, instants 3 s apart: some seeks, mostly decoding on)
    shows each instant's frame, the same as decord's."""
    seeking, _ = pyav_overview(str(long_video), monkeypatch, seek_gap_frames=8.0)
    shown = [time_of(f.permute(1, 2, 0).numpy()) for f in seeking]
    reference = decode.decode_video(str(long_video), OVERVIEW, decoder="decord").frames
    assert shown == [time_of(f.permute(1, 2, 0).numpy()) for f in reference]
    assert shown == pytest.approx([round(t * 10) / 10 for t in decode.plan_for_file(str(long_video), OVERVIEW).times])
