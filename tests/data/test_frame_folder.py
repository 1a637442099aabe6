"""A folder of frame images at a declared rate is a video: probed, sampled by time or by exact frame, cached."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from synthetic_video import frame_at, time_of

from verl_video.video.persistent_cache import PersistentVideoCache
from verl_video.video.probe import VideoError, probe_video
from verl_video.video.settings import VideoBudget
from verl_video.video.decode import decode_video
from verl_video.video.loader import VideoRequest

RATE = 10.0
FRAMES = 45  # 4.5 s at 10 fps
BUDGET = VideoBudget(fps=2.0, max_frames=64, min_frames=4, total_pixels=64 * 784 * 4, min_pixels=784, max_pixels=784 * 16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """GOT-10k's layout: 00000001.jpg ... (lossless png here, so the barcodes read exactly) plus label files."""
    path = tmp_path_factory.mktemp("GOT-10k_Val_000001")
    for i in range(FRAMES):
        Image.fromarray(frame_at(i / RATE, 96, 160)).save(path / f"{i + 1:08d}.png")
    (path / "groundtruth.txt").write_text("1,2,3,4\n")
    (path / "meta_info.ini").write_text("[METAINFO]\n")
    return path


def shown_times(video) -> list[float]:
    return [time_of(frame.permute(1, 2, 0).numpy()) for frame in video.frames]


def test_probe_counts_frames_and_needs_a_rate(folder):
    probe = probe_video(str(folder), RATE)
    assert (probe.num_frames, probe.duration, probe.width, probe.height) == (FRAMES, FRAMES / RATE, 160, 96)
    with pytest.raises(VideoError, match="frame_rate"):
        probe_video(str(folder))


def test_sampling_by_time_shows_the_frame_on_screen(folder):
    video = decode_video(str(folder), BUDGET, frame_rate=RATE)
    assert video.backend == "frames" and video.plan.num_frames == 8  # 2 fps over 4.5 s: 4 pairs
    assert shown_times(video) == pytest.approx([i * 0.5 for i in range(8)])


def test_exact_frames_are_the_asked_ones_padded_to_an_even_count(folder):
    indices = (0, 7, 14, 22, 29, 36, 44)
    video = decode_video(str(folder), BUDGET, frame_rate=RATE, frame_indices=indices)
    assert video.plan.num_frames == 8
    assert shown_times(video) == pytest.approx([i / RATE for i in (*indices, indices[-1])])
    with pytest.raises(VideoError, match="frame 45 asked for"):
        decode_video(str(folder), BUDGET, frame_rate=RATE, frame_indices=(0, 45))


def test_requests_travel_as_items_and_are_cached_by_their_frames(folder, tmp_path):
    request = VideoRequest(str(folder), BUDGET, frame_rate=RATE, frame_indices=(3, 9))
    again = VideoRequest.from_item(request.to_item(), VideoBudget())
    assert again == request
    other = VideoRequest(str(folder), BUDGET, frame_rate=RATE, frame_indices=(3, 10))
    assert request.cache_key("auto") != other.cache_key("auto")
    cache = PersistentVideoCache(str(tmp_path / "cache"), 10**8)
    first = cache.get_or_decode(request, "auto")
    hit = cache.get_or_decode(request, "auto")
    assert hit.plan == first.plan and np.array_equal(hit.frames.numpy(), first.frames.numpy())
    assert shown_times(hit) == pytest.approx([0.3, 0.9])


def test_a_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        probe_video(str(tmp_path / "empty"), RATE)
