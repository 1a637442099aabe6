"""The `verl-video` command: one subcommand per module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module defines `add_arguments(parser)` and `run(args) -> int | None`.
COMMANDS: dict[str, tuple[str, str]] = {
    "make-tiny-model": ("verl_video.tools.tiny_model", "build a tiny random-weight Qwen3-VL, Qwen2.5-VL or Qwen2-VL offline"),
    "make-demo-data": ("verl_video.tools.demo_data", "generate short videos with events at known times"),
    "warm-start": ("verl_video.tools.warm_start", "supervised warm start of a tiny model on the answer format"),
    "convert": ("verl_video.tools.convert", "convert annotations to the canonical JSONL schema"),
    "validate": ("verl_video.tools.validate", "check every record and video of a data_config"),
    "cache": ("verl_video.tools.cache", "decode a data_config's videos into the persistent cache"),
    "summarize": ("verl_video.tools.summarize", "summarise a training run: reward and IoU, step time, memory"),
    "export": ("verl_video.tools.export", "a verl checkpoint as a Hugging Face model folder (merged once)"),
    "weight-diff": ("verl_video.tools.weight_diff", "what changed between two checkpoints: vision encoder, projector, LM"),
    "monitor-memory": ("verl_video.tools.memory_monitor", "run a command and record the machine's peak memory"),
    "eval": ("verl_video.evaluation.run_eval", "run a model over an evaluation set"),
    "score": ("verl_video.evaluation.score", "compute grounding metrics from a per-sample JSONL"),
    "select": ("verl_video.selection.cli", "choose training records by difficulty or reward variance"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; subcommand modules add their own arguments lazily."""
    parser = argparse.ArgumentParser(prog="verl-video", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `verl-video` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"verl-video: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"verl-video {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
