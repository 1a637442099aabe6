"""data_config YAML: the list of datasets a run trains or evaluates on.

    seed: 42                         # optional; fixes this file's random:N and weights (default: trainer.seed)
    modules: [my_tasks/counting.py]  # optional; user files (relative to this YAML) or module names, imported
                                     #   first by every command that reads this file (tasks, rewards, presets, ...)
    datasets:
      - name: charades_sta           # optional; defaults to the json file's stem
        json_path: annotations/charades_sta_train.jsonl    # .json / .jsonl / .txt
        data_folder: videos/charades  # videos are relative to it
        format: canonical            # optional; detected when absent
        sampling_strategy: all       # all | first:N | end:N | random:N | random:P%
        weight: 1.0                  # optional mixing ratio between datasets
        task: tvg                    # optional; overrides the records' task (tvg, mcq, grounded_qa, tracking, yours)
        reward_preset: mcq           # optional; the preset scoring this dataset's rows (default: the task's)
        prompt_template: think       # optional template name or text with {query}
        fps: 2.0                     # optional video budget overrides (see settings.VideoBudget)
        max_frames: 768
        total_pixels: 2809856
        durations: Charades_v1_train.csv   # charades_sta text only: the CSV with id,length
        video_ext: .mp4              # ids without extension (Charades-STA, dict of videos)
        frame_rate: 10               # videos that are folders of frame images play at this rate (fps)
        box_frames: videochat_r1     # tracking: which frame each annotated box belongs to (tasks/tracking.py)

Relative paths are resolved against the YAML file's folder, then against the working directory.
A Temporal-R1 `tvg.yaml` (`datasets: [{json_path, data_folder, sampling_strategy}]`) is accepted as is.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from verl_video.annotations.formats import ReadOptions, format_names
from verl_video.annotations.records import BOX_FRAMES, RecordError, read_text
from verl_video.rewards.registry import ModuleLoadError, load_modules
from verl_video.video.settings import BUDGET_FIELDS

_ENTRY_KEYS = {
    "name", "json_path", "data_folder", "format", "sampling_strategy", "weight", "task", "reward_preset",
    "prompt_template", "durations", "video_ext", "frame_rate", "box_frames", *BUDGET_FIELDS,
}  # fmt: skip
_STRATEGY = re.compile(r"^(all|first:(\d+)|end:(\d+)|random:(\d+)|random:(\d+(?:\.\d+)?)%)$")


class DataConfigError(ValueError):
    """An invalid data_config; the message names the file, the line and the key."""


@dataclass
class DatasetEntry:
    """One dataset of a data_config."""

    name: str
    json_path: str
    data_folder: str
    format: str | None = None
    sampling_strategy: str = "all"
    weight: float | None = None
    task: str | None = None
    reward_preset: str | None = None
    prompt_template: str | None = None
    budget_overrides: dict[str, Any] = field(default_factory=dict)
    read_options: ReadOptions = field(default_factory=ReadOptions)
    origin: str = ""
    # Where each key was written (line in the YAML file), for errors about one key.
    key_lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """`file:line: datasets[i].key` of one of this entry's keys (its entry's line when not written)."""
        location, _, entry = self.origin.partition(": ")
        file_name, _, line = location.rpartition(":")
        return f"{file_name}:{self.key_lines.get(key, line)}: {entry}.{key}"

    def resolve_video(self, video: str) -> str:
        """Absolute path of a record's video."""
        return os.path.abspath(video if os.path.isabs(video) else os.path.join(self.data_folder, video))


@dataclass
class DataConfig:
    """A parsed data_config file."""

    path: str
    datasets: list[DatasetEntry]
    seed: int | None = None
    # The `modules:` it imported, as absolute file paths or module names (what other processes must import too).
    modules: list[str] = field(default_factory=list)


def _resolve_path(value: str, base_dir: str) -> str:
    value = os.path.expanduser(str(value))
    if os.path.isabs(value):
        return value
    beside = os.path.join(base_dir, value)
    return os.path.abspath(beside if os.path.exists(beside) or not os.path.exists(value) else value)


def _line_of(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _mapping_lines(node: yaml.Node) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: _line_of(value) for key, value in node.value if isinstance(key, yaml.ScalarNode)}


def _duplicate_key(node: yaml.Node | None) -> tuple[str, int] | None:
    """The first key a mapping node repeats (YAML keeps the last silently) and the line it repeats on."""
    if not isinstance(node, yaml.MappingNode):
        return None
    seen = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            if key.value in seen:
                return key.value, _line_of(key)
            seen.add(key.value)
    return None


def _positive_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


def parse_sampling_strategy(text: str) -> tuple[str, float | None]:
    """Split 'random:10%' into ('random%', 10.0), 'first:5' into ('first', 5.0), 'all' into ('all', None)."""
    match = _STRATEGY.match(str(text).strip())
    if not match:
        raise ValueError(f"sampling_strategy {text!r} is not one of all, first:N, end:N, random:N, random:P%")
    if match[1] == "all":
        return "all", None
    kind = match[1].split(":")[0]
    if match[5] is not None:
        return "random%", float(match[5])
    return kind, float(match[2] or match[3] or match[4])


def _read_yaml(path: str) -> tuple[str, yaml.Node, Any]:
    """The file's name, root node and value; errors name the file and line."""
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise DataConfigError(f"{path}: data_config not found")
    try:
        text = read_text(path)
    except RecordError as exc:
        raise DataConfigError(str(exc)) from None
    try:
        # One parse gives both the values and the nodes (for line numbers), so the two always agree.
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        raise DataConfigError(f"{name}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise DataConfigError(f"{name}:1: invalid YAML: nested too deeply") from None
    repeated = _duplicate_key(root)
    if repeated:
        raise DataConfigError(f"{name}:{repeated[1]}: key {repeated[0]!r} is given twice")
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), list) or not data["datasets"]:
        raise DataConfigError(f"{name}:1: key 'datasets' must be a non-empty list of dataset entries")
    return name, root, data


def _config_modules(path: str, name: str, root: yaml.Node, data: dict) -> list[str]:
    """Import the file's `modules:` (paths relative to it, or module names); their resolved names."""
    modules_node = _value_node(root, "modules")
    item_lines = [_line_of(n) for n in modules_node.value] if isinstance(modules_node, yaml.SequenceNode) else []
    lines = item_lines or [_mapping_lines(root).get("modules", 1)]
    return _load_config_modules(data.get("modules"), name, lines, os.path.dirname(os.path.abspath(path)))


def load_data_config(path: str) -> DataConfig:
    """Parse and check a data_config YAML; errors name the file, line and key."""
    name, root, data = _read_yaml(path)
    top_lines = _mapping_lines(root)
    # Before the entries: a user file may register the format, task or template an entry names.
    base_dir = os.path.dirname(os.path.abspath(path))
    modules = _config_modules(path, name, root, data)
    items_node = _value_node(root, "datasets")
    nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
    if len(nodes) != len(data["datasets"]):  # e.g. datasets merged in with `<<:`: no node per entry
        nodes = [root] * len(data["datasets"])
    entries, problems = [], []
    for i, (raw, node) in enumerate(zip(data["datasets"], nodes, strict=True)):
        try:
            entries.append(_parse_entry(raw, node, name, i, base_dir))
        except DataConfigError as exc:
            problems.append(str(exc))
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        problems.append(f"{name}:{top_lines.get('seed', 0)}: key 'seed' must be an integer")
    if problems:
        raise DataConfigError("\n".join(problems))
    names = [e.name for e in entries]
    for i, entry in enumerate(entries):
        if names.index(entry.name) != i:
            entry.name = f"{entry.name}_{i}"  # two entries over the same file stay distinguishable
    return DataConfig(path=os.path.abspath(path), datasets=entries, seed=seed, modules=modules)


def _value_node(root: yaml.Node, key: str) -> yaml.Node | None:
    return next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _load_config_modules(raw: Any, file_name: str, lines: list[int], base_dir: str) -> list[str]:
    """Import a data_config's `modules:` (files relative to its folder, or module names); their resolved names."""
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(m, str) and m for m in items):
        raise DataConfigError(f"{file_name}:{lines[0]}: key 'modules' must be a list of .py files or module names")
    resolved = [_resolve_path(m, base_dir) if m.endswith(".py") else m for m in items]
    for i, module in enumerate(resolved):
        try:
            load_modules([module])
        except ModuleLoadError as exc:
            raise DataConfigError(f"{file_name}:{lines[min(i, len(lines) - 1)]}: modules[{i}]: {exc}") from exc
    return resolved


def data_config_modules(*file_lists: Any) -> list[str]:
    """The `modules:` of every data_config in `file_lists` (each a path, a list or None; annotation files have none),
    imported."""
    paths = [p for files in file_lists for p in ([files] if isinstance(files, str) else list(files or ()))]
    found: list[str] = []
    for path in paths:
        if str(path).endswith((".yaml", ".yml")) and os.path.isfile(str(path)):
            # Only the modules: a process that scores rows needs them, not the entries' files (checked elsewhere).
            name, root, data = _read_yaml(str(path))
            found += [m for m in _config_modules(str(path), name, root, data) if m not in found]
    return found


def _parse_entry(raw: Any, node: yaml.Node, file_name: str, index: int, base_dir: str) -> DatasetEntry:
    where = f"{file_name}:{_line_of(node)}: datasets[{index}]"
    if not isinstance(raw, dict):
        raise DataConfigError(f"{where}: each dataset entry must be a mapping")
    lines = _mapping_lines(node)
    # Every problem of the entry is collected, so that one `validate` run reports them all.
    problems: list[str] = []

    def fail(key: Any, message: str) -> None:
        problems.append(f"{file_name}:{lines.get(key, _line_of(node))}: datasets[{index}].{key}: {message}")

    repeated = _duplicate_key(node)
    if repeated:
        raise DataConfigError(f"{file_name}:{repeated[1]}: datasets[{index}].{repeated[0]}: key is given twice")
    for key in sorted(set(raw) - _ENTRY_KEYS, key=str):  # YAML keys need not be strings
        fail(key, f"unknown key; choose from {', '.join(sorted(_ENTRY_KEYS))}")
    for key in ("json_path", "data_folder"):
        if not raw.get(key):
            fail(key, "missing (required)")
        elif not isinstance(raw[key], str):
            fail(key, f"must be a path, got {raw[key]!r}")
    for key in (
        "name", "format", "task", "reward_preset", "prompt_template", "durations", "video_ext", "sampling_strategy",
        "box_frames",
    ):  # fmt: skip
        if raw.get(key) is not None and not isinstance(raw[key], str):
            fail(key, f"must be a string, got {raw[key]!r}")
    json_path = _resolve_path(raw["json_path"], base_dir) if isinstance(raw.get("json_path"), str) else ""
    if json_path and not os.path.exists(json_path):
        fail("json_path", f"file not found: {json_path}")
    fmt = raw.get("format")
    if isinstance(fmt, str) and fmt not in format_names():
        fail("format", f"{fmt!r} is not one of {', '.join(format_names())} (a user format: list its file in `modules:`)")
    strategy = str(raw.get("sampling_strategy") or "all")
    try:
        parse_sampling_strategy(strategy)
    except ValueError as exc:
        fail("sampling_strategy", str(exc))
    weight = raw.get("weight")
    if weight is not None and not _positive_number(weight):
        fail("weight", f"must be a positive number, got {weight!r}")
    budget = {}
    for key in BUDGET_FIELDS:
        if raw.get(key) is None:
            continue
        value = raw[key]
        if not _positive_number(value):
            fail(key, f"must be a positive number, got {value!r}")
        budget[key] = value
    if raw.get("frame_rate") is not None and not _positive_number(raw["frame_rate"]):
        fail("frame_rate", f"must be a positive number (frames per second), got {raw['frame_rate']!r}")
    if raw.get("box_frames") is not None and raw["box_frames"] not in BOX_FRAMES:
        fail("box_frames", f"{raw['box_frames']!r} is not one of {', '.join(BOX_FRAMES)}")
    options = ReadOptions(video_ext=raw.get("video_ext"), frame_rate=raw.get("frame_rate"), box_frames=raw.get("box_frames"))
    if isinstance(raw.get("durations"), str) and raw["durations"]:
        options["durations"] = _resolve_path(raw["durations"], base_dir)
        if not os.path.exists(options["durations"]):
            fail("durations", f"file not found: {options['durations']}")
    if problems:
        raise DataConfigError("\n".join(problems))
    return DatasetEntry(
        name=str(raw.get("name") or os.path.splitext(os.path.basename(json_path))[0]),
        json_path=json_path,
        data_folder=_resolve_path(raw["data_folder"], base_dir),
        format=fmt,
        sampling_strategy=strategy,
        weight=float(weight) if weight is not None else None,
        task=raw.get("task"),
        reward_preset=raw.get("reward_preset"),
        prompt_template=raw.get("prompt_template"),
        budget_overrides=budget,
        read_options=options,
        origin=where,
        key_lines=lines,
    )


def single_file_config(json_path: str, data_folder: str | None = None) -> DataConfig:
    """A one-dataset config for a bare annotation file (videos relative to its folder)."""
    path = os.path.abspath(json_path)
    entry = DatasetEntry(
        name=os.path.splitext(os.path.basename(path))[0],
        json_path=path,
        data_folder=os.path.abspath(data_folder or os.path.dirname(path)),
        origin=os.path.basename(path),
    )
    return DataConfig(path=path, datasets=[entry])
