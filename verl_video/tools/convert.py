"""`verl-video convert`: rewrite an annotation file of any supported format as canonical JSONL."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from verl_video.annotations.formats import FORMAT_NAMES, ReadOptions, detect_format, read_annotations
from verl_video.annotations.records import RecordError, write_canonical


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video convert`."""
    parser.add_argument("input", help="annotation file (.json, .jsonl, or Charades-STA .txt)")
    parser.add_argument("-o", "--output", required=True, help="canonical JSONL to write")
    parser.add_argument("--format", choices=FORMAT_NAMES, help="input format (detected when absent)")
    parser.add_argument("--durations", help="Charades CSV with columns id,length (charades_sta text input)")
    parser.add_argument("--video-ext", default=".mp4", help="extension added to bare video ids (default .mp4)")
    parser.add_argument(
        "--files-are-clips",
        action="store_true",
        help="drop video_start/video_end: the video files are already cut to the clip (timestamps stay clip-relative)",
    )


def run(args: argparse.Namespace) -> int:
    """Convert; print what was read and written. Returns a process exit code."""
    options = ReadOptions(video_ext=args.video_ext)
    if args.durations:
        options["durations"] = args.durations
    try:
        fmt = args.format or detect_format(args.input)
        records = read_annotations(args.input, fmt, options)
    except (RecordError, OSError) as exc:
        print(f"verl-video convert: {exc}", file=sys.stderr)
        return 1
    if args.files_are_clips:
        records = [replace(r, video_start=None, video_end=None) for r in records]
    count = write_canonical(records, args.output)
    missing_duration = sum(r.duration is None for r in records)
    print(f"convert: read {count} records ({fmt}) from {args.input}, wrote {args.output}")
    if missing_duration:
        print(f"convert: {missing_duration} records have no duration (pass --durations, or `verl-video validate` probes the videos)")
    return 0
