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


METRICS_NAME = "metrics.jsonl"
# Ways to start a run in a folder that holds another one, as the refusal lists them.
RESUME_MODES = ("auto", "disable", "resume_path")


class RunFolderError(ValueError):
    """The run folder holds a run of another config; the message names the keys that differ and the ways out."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`key: old -> new` for every experiment key (outputs and logging left out) whose value differs."""
    trees = []
    for config in (old, new):
        tree = json.loads(json.dumps(config, sort_keys=True, default=str))
        for key in NOT_THE_EXPERIMENT:
            _drop(tree, key)
        trees.append(_flatten(tree))
    missing = object()
    return [
        f"{key}: {trees[0].get(key, '(absent)')} -> {trees[1].get(key, '(absent)')}"
        for key in sorted(set(trees[0]) | set(trees[1]))
        if trees[0].get(key, missing) != trees[1].get(key, missing)
    ]


def _has_checkpoints(run_dir: Path) -> bool:
    return any(p.is_dir() and p.name.startswith("global_step_") for p in run_dir.iterdir()) if run_dir.is_dir() else False


def claim_run_folder(config: Mapping[str, Any], run_dir: str, metrics_path: str | None) -> str:
    """Check that `run_dir` is this run's folder before anything is written; returns "new", "same" or "archived".

    A folder holding a run of another config fingerprint (or other data) is refused under the default
    `trainer.resume_mode=auto`: resuming would continue those weights under other settings. An explicit
    `resume_mode` (disable in a folder without checkpoints, or resume_path) is the user's choice: the previous
    record and metrics are then kept beside the new ones, renamed with their fingerprint, never overwritten.
    """
    folder = Path(run_dir)
    old_path = folder / RECORD_NAME
    if not old_path.is_file():
        return "new"
    old = json.loads(old_path.read_text())
    new = build_record(config)
    if old.get("config_fingerprint") == new["config_fingerprint"] and old.get("data_fingerprint") == new["data_fingerprint"]:
        return "same"
    differences = config_differences(old.get("config") or {}, config)
    if old.get("data_fingerprint") != new["data_fingerprint"]:
        differences.append(f"data files: fingerprint {old.get('data_fingerprint')} -> {new['data_fingerprint']}")
    mode = config["trainer"].get("resume_mode", "auto")
    checkpoints = _has_checkpoints(folder)
    if mode == "auto" or (mode == "disable" and checkpoints):
        shown = "\n  ".join(differences[:12]) + (f"\n  ... and {len(differences) - 12} more" if len(differences) > 12 else "")
        raise RunFolderError(
            f"{folder} holds another run ({old_path}, config {old.get('config_fingerprint')}); this config "
            f"({new['config_fingerprint']}) differs in:\n  {shown}\n"
            "Ways out: another trainer.default_local_dir (a folder per run); "
            "or trainer.resume_mode=resume_path trainer.resume_from_path=<a global_step_N of that folder> to continue "
            "those weights under this config on purpose"
            + ("" if checkpoints else "; or trainer.resume_mode=disable to start over here (its record is kept)")
        )
    stamp = old.get("config_fingerprint") or "previous"
    os.replace(old_path, folder / f"run.{stamp}.json")
    if metrics_path and os.path.isfile(metrics_path) and Path(metrics_path).resolve().parent == folder.resolve():
        os.replace(metrics_path, folder / f"metrics.{stamp}.jsonl")
    return "archived"


def find_record(run_dir: Path) -> dict[str, Any] | None:
    """The run record in a run folder (itself or its `checkpoints/`), or None."""
    try:
        return read_run_record(run_dir)
    except FileNotFoundError:
        return None
