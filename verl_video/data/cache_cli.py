"""`verl-video cache CONFIG`: decode every video of a data_config once into the persistent cache.

The entries are keyed exactly as training asks for them (file identity, each dataset's resolved
budget, the record's clip, the decoder), so use the same `data.video` settings as the run:
`--trainer-yaml` reads them from a trainer YAML's `data.video` block, `--set key=value` overrides one.
Training then reads frames with `data.video.cache_dir` pointing at the same folder.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

import yaml
from tqdm import tqdm

from verl_video.data.config import DataConfigError
from verl_video.data.dataset import load_items
from verl_video.data.persistent_cache import PersistentVideoCache
from verl_video.data.probe import VideoError
from verl_video.data.records import RecordError
from verl_video.data.settings import VideoDataSettings, settings_from_config


def run_settings(trainer_yaml: str | None, assignments: list[str], cache_dir: str | None) -> VideoDataSettings:
    """The run's `data.video` settings: trainer YAML block, then `key=value` overrides, then --cache-dir."""
    section: dict = {}
    if trainer_yaml:
        with open(trainer_yaml, encoding="utf-8") as f:
            section.update(((yaml.safe_load(f) or {}).get("data") or {}).get("video") or {})
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        section[key.strip()] = yaml.safe_load(value)
    if cache_dir:
        section["cache_dir"] = cache_dir
    return settings_from_config({"video": section})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video cache`."""
    parser.add_argument("config", nargs="+", help="data_config YAML(s) or annotation files")
    parser.add_argument("--cache-dir", help="cache folder (default: data.video.cache_dir of --trainer-yaml)")
    parser.add_argument("--max-gb", type=float, help="bound of the cache folder (default: data.video.cache_max_gb)")
    parser.add_argument("--trainer-yaml", help="trainer YAML whose data.video block the run uses")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a data.video key")
    parser.add_argument("--workers", type=int, default=2, help="videos decoded in parallel (threads)")


def run(args: argparse.Namespace) -> int:
    """Fill the cache; print counts. Exit 1 when some videos could not be decoded."""
    try:
        settings = run_settings(args.trainer_yaml, args.set, args.cache_dir)
        if not settings.cache_dir:
            raise ValueError("no cache folder: pass --cache-dir or set data.video.cache_dir")
        items = load_items(list(args.config), settings)
    except (ValueError, KeyError, DataConfigError, RecordError, OSError) as exc:
        print(f"verl-video cache: {exc}", file=sys.stderr)
        return 2
    cache = PersistentVideoCache(settings.cache_dir, int((args.max_gb or settings.cache_max_gb) * 1024**3))
    requests = list(dict.fromkeys(item.video for item in items))
    failed: list[str] = []

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
