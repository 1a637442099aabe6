"""A user's project outside the repository, built from the docs' own code blocks: a counting task file, a reward
file, records and a data_config naming the files under `modules:`. The tests run the real commands from it.

Every piece of user code is copied out of docs/tasks.md and docs/rewards.md when the tests run, so a change to
the docs that stops them working fails here. (A module of its own name: `conftest` is ambiguous across folders.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from verl_video.tools.demo_data import record as tvg_record
from verl_video.tools.demo_data import render_frames, sample_event, write_mp4

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
NUM_COUNTING = 40
NUM_VIDEOS = 8
NUM_GROUNDING = 8


def docs_block(page: str, after: str, lang: str) -> str:
    """The first ```lang fenced block of docs/`page` after the first line containing `after`."""
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.find(after)
    assert start >= 0, f"docs/{page} no longer contains {after!r}: update the test with the docs"
    match = re.compile(rf"^```{lang}\n(.*?)^```", re.S | re.M).search(text, start)
    assert match, f"docs/{page}: no ```{lang} block after {after!r}"
    return match.group(1)


def cli(cwd: Path, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """`verl-video ARGS...` run from `cwd` (the user's folder), this checkout's code first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "verl_video.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"verl-video {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def write_user_project(root: Path) -> Path:
    """The docs' counting task, reward file, records and data_config under `root` (outside the repository)."""
    (root / "my_tasks").mkdir(parents=True, exist_ok=True)
    (root / "my_tasks" / "counting.py").write_text(docs_block("tasks.md", "## Adding a task: one file", "python"))
    (root / "my_reward.py").write_text(docs_block("rewards.md", "### 1. One decorated function", "python"))
    example = json.loads(docs_block("tasks.md", "Records (`counting.jsonl`)", "json"))
    config = yaml.safe_load(docs_block("tasks.md", "and the data_config (`data.yaml`)", "yaml"))
    [entry] = config["datasets"]
    videos = root / entry["data_folder"]
    grounding = []
    for i in range(NUM_VIDEOS):
        event = sample_event(np.random.default_rng([7, i]))
        write_mp4(videos / f"clip{i}.mp4", render_frames(event))
        grounding.append(tvg_record(event, f"g{i}", f"clip{i}.mp4"))
    # The docs' record, 40 times over the videos, with counts that differ between records.
    counting = [{**example, "id": f"c{i}", "video": f"clip{i % NUM_VIDEOS}.mp4", "count": 1 + i % 4}
                for i in range(NUM_COUNTING)]
    _write_jsonl(root / entry["json_path"], counting)
    _write_jsonl(root / "grounding.jsonl", grounding[:NUM_GROUNDING])
    # The docs' data_config, plus a grounding dataset whose rows the docs' reward example scores in training.
    config["datasets"].append({"name": "grounding", "json_path": "grounding.jsonl", "data_folder": entry["data_folder"]})
    (root / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    val = {**config, "datasets": [{**d, "sampling_strategy": "first:4"} for d in config["datasets"]]}
    (root / "val.yaml").write_text(yaml.safe_dump(val, sort_keys=False))
    return root


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
