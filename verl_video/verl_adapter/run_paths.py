"""Every relative path of the config made absolute on the node that launches the run.

verl's TaskRunner is a Ray actor that may land on any node of the cluster, where the working directory is
Ray's, not the launch directory: a relative data file, model folder or output folder would resolve there
(or nowhere). data_config YAMLs already resolve their own entries relative to the YAML file.
"""

from __future__ import annotations

import os
import re

from omegaconf import DictConfig, OmegaConf, open_dict

# Paths that must exist (data, model): made absolute when they exist here; a hub id such as
# `Qwen/Qwen2.5-VL-3B-Instruct` looks relative but is no folder here and stays as it is.
INPUT_PATHS = (
    "actor_rollout_ref.model.path",
    "actor_rollout_ref.model.tokenizer_path",
    "critic.model.path",
    "critic.model.tokenizer_path",
    "data.train_files",
    "data.val_files",
    "trainer.resume_from_path",
)
# Paths the run writes: always made absolute (they may not exist yet).
OUTPUT_PATHS = (
    "trainer.default_local_dir",
    "trainer.validation_data_dir",
    "trainer.rollout_data_dir",
    "data.video.cache_dir",
)


# `${other.key}` alone: the value follows another key, which this module handles (or leaves) itself.
PURE_REFERENCE = re.compile(r"^\$\{[^${}]*\}$")


def _absolute(value: str, must_exist: bool) -> str:
    if "://" in value or os.path.isabs(value) or (must_exist and not os.path.exists(value)):
        return value
    return os.path.abspath(os.path.expanduser(value))


def absolutize_paths(config: DictConfig) -> list[str]:
    """Make the config's relative paths absolute in place (interpolations left to follow); the keys changed."""
    changed = []
    for keys, must_exist in ((INPUT_PATHS, True), (OUTPUT_PATHS, False)):
        for key in keys:
            parent_key, _, leaf = key.rpartition(".")
            parent = OmegaConf.select(config, parent_key)
            if parent is None or leaf not in parent:
                continue
            raw = OmegaConf.to_container(parent, resolve=False)[leaf]
            if isinstance(raw, str) and PURE_REFERENCE.match(raw):
                continue
            value = parent[leaf]
            if isinstance(value, str):
                new = _absolute(value, must_exist)
            elif OmegaConf.is_list(value):
                new = [_absolute(str(item), must_exist) for item in value]
            else:
                continue
            if new != (value if isinstance(value, str) else list(value)):
                with open_dict(parent):
                    parent[leaf] = new
                changed.append(key)
    return changed
