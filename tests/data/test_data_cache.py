"""The persistent decode cache and `verl-video cache`."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import torch
import yaml

from verl_video.cli import main as cli_main
from verl_video.video import decode as video_module
from verl_video.video.persistent_cache import PersistentVideoCache, entry_key
from verl_video.video.settings import VideoBudget, VideoDataSettings
from verl_video.video.loader import VideoRequest, _load_uncached


def test_round_trip_without_pickle(tmp_path, videos):
    cache = PersistentVideoCache(str(tmp_path / "c"), 10**9)
    request = VideoRequest(str(videos["short"]), VideoBudget(fps=1.0))
    first = cache.get_or_decode(request, "auto")
    before = video_module.decode_counts[request.path]
    again = cache.get_or_decode(request, "auto")
    assert video_module.decode_counts[request.path] == before  # served from disk
    assert torch.equal(first.frames, again.frames) and again.metadata == first.metadata and again.plan == first.plan
    names = os.listdir(tmp_path / "c")
    assert len(names) == 2 and not any(n.startswith(".tmp-") for n in names)
    npy = next(n for n in names if n.endswith(".npy"))
    assert np.load(tmp_path / "c" / npy, allow_pickle=False).dtype == np.uint8


def test_key_follows_file_identity_and_budget(tmp_path, videos):
    path = tmp_path / "v.mp4"
    shutil.copy(videos["short"], path)
    request = VideoRequest(str(path), VideoBudget(fps=1.0))
    key = entry_key(request, "auto")
    assert entry_key(VideoRequest(str(path), VideoBudget(fps=0.5)), "auto") != key
    assert entry_key(VideoRequest(str(path), VideoBudget(fps=1.0), 1.0, 5.0), "auto") != key
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert entry_key(request, "auto") != key


def test_folder_stays_within_its_bound_evicting_least_recent(tmp_path, videos):
    cache = PersistentVideoCache(str(tmp_path / "c"), 10**9)
    requests = [VideoRequest(str(videos["short"]), VideoBudget(fps=2 / k, min_frames=4)) for k in (1, 2, 5)]
    sizes = []
    for request in requests:
        cache.get_or_decode(request, "auto")
        sizes.append(cache.size_bytes())
    cache.max_bytes = sizes[-1] - 1  # one entry too many
    time.sleep(0.01)
    assert cache.load(entry_key(requests[0], "auto")) is not None  # touch the oldest: now most recent
    assert cache.evict() == 1
    assert cache.load(entry_key(requests[1], "auto")) is None  # the least recently used went
    assert cache.load(entry_key(requests[0], "auto")) is not None and cache.size_bytes() <= cache.max_bytes


def test_cache_command_prefills_what_training_reads(tmp_path, videos, capsys):
    (tmp_path / "a.jsonl").write_text(
        f'{{"video": "{videos["short"]}", "query": "q", "timestamps": [[1, 2]], "duration": 10}}\n'
        f'{{"video": "{videos["vfr"]}", "query": "q", "timestamps": [[1, 2]], "duration": 10, "video_start": 20, "video_end": 30}}\n'
    )
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"datasets": [{"json_path": "a.jsonl", "data_folder": ".", "fps": 0.5}]}))
    cache_dir = tmp_path / "cache"
    # The overrides the training command would get (a data.video key may drop its prefix).
    code = cli_main(["cache", str(tmp_path / "d.yaml"), "--cache-dir", str(cache_dir), "--set", "max_frames=16",
                     "--set", "data.video.total_pixels=50000"])
    assert code == 0 and "2 videos (2 records)" in capsys.readouterr().out
    settings = VideoDataSettings(budget=VideoBudget(max_frames=16, total_pixels=50000), cache_dir=str(cache_dir))
    before = sum(video_module.decode_counts.values())
    for path, start, end in ((videos["short"], None, None), (videos["vfr"], 20, 30)):
        request = VideoRequest(str(path), settings.budget.with_overrides({"fps": 0.5}), start, end)
        assert _load_uncached(request, settings).plan.fps == 0.5
    assert sum(video_module.decode_counts.values()) == before
