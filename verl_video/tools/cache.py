"""`verl-video cache [CONFIG ...]`: decode every video of a data_config once into the persistent cache.

The entries are keyed exactly as training asks for them (file identity, each dataset's resolved
budget, the record's clip, the decoder), so the command takes the run's settings the way every command
does (`verl_video.pipeline.run_settings`): video_grpo.yaml composed with `--set` overrides (the ones the
training command will get, e.g. `--set experiment=tiny_tvg_cpu`), or `--run` for a run that exists.
Without CONFIG it caches the settings' data.train_files and data.val_files. Training then reads frames
with `data.video.cache_dir` pointing at the same folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from tqdm import tqdm

from verl_video.annotations.data_config import DataConfigError
from verl_video.video.persistent_cache import PersistentVideoCache
from verl_video.pipeline.items import item_video, load_items
from verl_video.video.probe import VideoError
from verl_video.annotations.records import RecordError
from verl_video.pipeline.run_settings import add_settings_arguments, settings_from_args
from verl_video.video.loader import VideoRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video cache`."""
    parser.add_argument("config", nargs="*", help="data_config YAML(s) or annotation files "
                                                  "(default: the settings' data.train_files and data.val_files)")
    parser.add_argument("--cache-dir", help="cache folder (default: data.video.cache_dir of the settings)")
    parser.add_argument("--max-gb", type=float, help="bound of the cache folder (default: data.video.cache_max_gb)")
    parser.add_argument("--workers", type=int, default=2, help="videos decoded in parallel (threads)")
    add_settings_arguments(parser)


def _requests(items: list, failed: list[str]) -> Iterator[VideoRequest]:
    """Each item's request keyed as training asks for it (a tracking record's exact frames); unreadable ones to `failed`."""
    for item in items:
        try:
            yield item_video(item)
        except VideoError as exc:
            failed.append(str(exc))


def run(args: argparse.Namespace) -> int:
    """Fill the cache; print counts. Exit 1 when some videos could not be decoded."""
    try:
        run_settings = settings_from_args(args)
        settings = run_settings.video
        if args.cache_dir:
            settings = replace(settings, cache_dir=args.cache_dir)
        if not settings.cache_dir:
            raise ValueError("no cache folder: pass --cache-dir or set data.video.cache_dir")
        files = list(args.config) or [*run_settings.train_files, *run_settings.val_files]
        items = load_items(files, settings)
    except (ValueError, KeyError, DataConfigError, RecordError, OSError) as exc:
        print(f"verl-video cache: {exc}", file=sys.stderr)
        return 2
    cache = PersistentVideoCache(settings.cache_dir, int((args.max_gb or settings.cache_max_gb) * 1024**3))
    failed: list[str] = []
    requests = list(dict.fromkeys(_requests(items, failed)))

    def fill(request) -> None:
        try:
            cache.get_or_decode(request, settings.decoder)
        except VideoError as exc:
            failed.append(str(exc))

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        list(tqdm(pool.map(fill, requests), total=len(requests), desc="Caching videos", unit="video"))
    print(
        f"cache: {len(requests)} videos ({len(items)} records) in {cache.root}: "
        f"{cache.size_bytes() / 1024**2:.1f} MiB, {len(failed)} failed"
    )
    for message in failed:
        print(f"  {message}")
    return 1 if failed else 0
