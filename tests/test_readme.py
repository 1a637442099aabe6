"""The README and docs/ stay true to the code: the two first commands, paths, subcommands, no issue numbers."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from verl_video.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Dated measurements and experiment history may name the issue an experiment answered; user docs do not.
USER_DOCS = [README] + [path for path in DOCS if path.name != "experiments.md"]

# A repository path as the docs write it: `verl_video/video/decode.py`, `docs/data.md`, `examples/x.sh`.
PATH = re.compile(r"(?<![\w./-])((?:verl_video|docs|examples|benchmarks)/[\w./-]*\w)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
SUBCOMMAND = re.compile(r"\bverl-video ([a-z][a-z0-9-]*)")
ISSUE = re.compile(r"\bissues?\s*#?\d+", re.I)


def _code(text: str) -> str:
    """The text's code: fenced blocks and inline spans (prose says "verl-video is ...", code names commands)."""
    return "\n".join(FENCE.findall(text) + INLINE.findall(FENCE.sub("", text)))


def test_readme_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert lines[:6] == [
        "# verl-video",
        "",
        "```bash",
        "make demo   # install into .venv, build a tiny Qwen3-VL + generated videos, train it with GRPO on CPU",
        "make test   # install into .venv (with test extras) and run the test suite",
        "```",
    ]


def test_readme_is_a_manual_not_a_notebook():
    assert len(README.read_text().splitlines()) < 400


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_path_mentioned_exists(doc):
    missing = sorted({path for path in PATH.findall(doc.read_text()) if not (ROOT / path).exists()})
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_subcommand_mentioned_exists(doc):
    unknown = sorted(set(SUBCOMMAND.findall(_code(doc.read_text()))) - set(COMMANDS))
    assert not unknown, f"{doc.name} names verl-video subcommands that cli.py does not have: {unknown}"


def test_readme_lists_every_subcommand():
    named = set(SUBCOMMAND.findall(_code(README.read_text())))
    assert set(COMMANDS) <= named, f"README does not mention: {sorted(set(COMMANDS) - named)}"


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_user_docs_name_no_issue_numbers(doc):
    found = [f"{doc.name}:{n}: {line.strip()}" for n, line in enumerate(doc.read_text().splitlines(), 1)
             if ISSUE.search(line)]
    assert not found, "\n".join(found)


def test_the_checks_catch_what_they_look_for():
    # A stale path, a made-up subcommand and an issue number are each found.
    text = "See `verl_video/data/loader.py` and run `verl-video frobnicate`; this fixes issue 9.\nverl-video is a tool."
    assert PATH.findall(text) == ["verl_video/data/loader.py"] and not (ROOT / "verl_video/data/loader.py").exists()
    assert SUBCOMMAND.findall(_code(text)) == ["frobnicate"]
    assert ISSUE.search(text)


def _command_lines(text: str, prefix: str) -> list[list[str]]:
    """The README's code lines that start with `prefix` (continuations joined, comments dropped), as argv."""
    lines = []
    for block in FENCE.findall(text):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith(prefix + " "):
                lines.append(shlex.split(line)[len(prefix.split()):])
    return lines


def test_readme_verl_video_lines_parse():
    # Placeholders (M, DATA, ...) stand for a value: each line's flags and arguments must be the command's.
    lines = _command_lines(README.read_text(), "verl-video")
    assert len(lines) >= 10
    for argv in lines:
        name, args = argv[0], ["x" if arg.isupper() else arg for arg in argv[1:]]
        parser = argparse.ArgumentParser(prog=f"verl-video {name}", exit_on_error=False)
        importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
        parser.parse_args(args)


def test_readme_training_lines_compose_and_its_keys_exist():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from verl_video.verl_adapter.driver import CONFIG_DIR

    text = README.read_text()
    lines = _command_lines(text, "python -m verl_video.main")
    assert len(lines) >= 4
    # The settings table's first column: the keys users change, each in video_grpo.yaml.
    keys = {key for row in re.findall(r"^\| `([a-z_.]+)`", text, re.M) for key in [row] if "." in key}
    assert len(keys) >= 10
    with initialize_config_dir(config_dir=str(Path(CONFIG_DIR).resolve()), version_base=None):
        for argv in lines:
            compose(config_name="video_grpo", overrides=[a for a in argv if "..." not in a and not a.startswith("[")])
        config = compose(config_name="video_grpo")
    missing = sorted(key for key in keys if OmegaConf.select(config, key, default="<missing>") == "<missing>")
    assert not missing, f"README's settings table names keys video_grpo.yaml does not have: {missing}"
