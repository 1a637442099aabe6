"""The record of a training run (`run.json` beside its checkpoints): seed, fingerprints, resolved config and settings.

Two runs with the same config fingerprint and data fingerprint are the same experiment; with the same seed
too they should give the same metrics (README: Reproducibility). Written by `python -m verl_video.main`
before training starts, read by `verl-video summarize` and by `verl-video eval` / `cache` / `warm-start`
(`verl_video.pipeline.run_settings`), which take a run's settings from it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from verl_video.pipeline.run_settings import RECORD_NAME, RunSettings, read_run_record

# Keys that say where outputs go, how often checkpoints are saved or how runs are logged, not what is trained: left out of the fingerprint
# so that the same experiment written to two folders has one fingerprint.
NOT_THE_EXPERIMENT = (
    "trainer.default_local_dir",
    "trainer.validation_data_dir",
    "trainer.rollout_data_dir",
    "trainer.save_freq",
    "trainer.logger",
    "trainer.project_name",
    "trainer.experiment_name",
    "ray_kwargs",
)


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key) if isinstance(tree, dict) else None
        if tree is None:
            return
    if isinstance(tree, dict):
        tree.pop(leaf, None)


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A short hash of the resolved config without the output and logging keys."""
    tree = json.loads(json.dumps(config, sort_keys=True, default=str))
    for key in NOT_THE_EXPERIMENT:
        _drop(tree, key)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def data_files(paths: Iterable[str]) -> list[str]:
    """The files a run's data is read from: each data_config and the annotation files it lists."""
    from verl_video.annotations.data_config import load_data_config

    files: list[str] = []
    for path in paths:
        files.append(os.path.abspath(path))
        if str(path).endswith((".yaml", ".yml")):
            files += [os.path.abspath(entry.json_path) for entry in load_data_config(path).datasets]
    return files


def data_fingerprint(paths: Iterable[str]) -> str:
    """A short hash of the annotation files' contents (videos are identified by the paths they name)."""
    digest = hashlib.sha256()
    for path in data_files(paths):
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def build_record(config: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a run about to start, from its resolved config (a plain dict)."""
    data = config["data"]
    record: dict[str, Any] = {
        "seed": config["trainer"].get("seed"),
        "config_fingerprint": config_fingerprint(config),
        "model": config["actor_rollout_ref"]["model"]["path"],
    }
    try:
        record["data_fingerprint"] = data_fingerprint(_as_list(data["train_files"]) + _as_list(data["val_files"]))
    except (OSError, ValueError) as exc:  # the dataset reports bad data with its own clear error later
        record["data_fingerprint"] = f"unavailable ({exc})"
    # What `verl-video eval` of a checkpoint reuses (it reads the config above; this is the resolved view).
    record["settings"] = RunSettings.from_config(config).to_json()
    record["config"] = config
    return record


def write_record(config: Mapping[str, Any], out_dir: str) -> Path:
    """Write `run.json` into `out_dir` (created if needed); returns its path."""
    path = Path(out_dir) / RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(build_record(config), indent=2, default=str))
    os.replace(tmp, path)
    return path


def find_record(run_dir: Path) -> dict[str, Any] | None:
    """The run record in a run folder (itself or its `checkpoints/`), or None."""
    try:
        return read_run_record(run_dir)
    except FileNotFoundError:
        return None
