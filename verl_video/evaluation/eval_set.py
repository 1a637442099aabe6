"""An evaluation set: the records of a data_config YAML or of one annotation file, with videos resolved.

Each dataset entry's `sampling_strategy` (e.g. `first:500`), `task`, `prompt_template` and video
budget overrides apply as in training; mixing `weight`s do not (evaluation scores every record once).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from verl_video.data.config import DataConfig, load_data_config, single_file_config
from verl_video.data.formats import read_annotations
from verl_video.data.mixture import apply_sampling_strategy, dataset_rng
from verl_video.data.records import GroundingRecord
from verl_video.data.settings import VideoDataSettings


@dataclass
class EvalSample:
    """One record to evaluate, its unique id in the run, and its dataset's settings."""

    id: str
    record: GroundingRecord
    video_path: str  # absolute
    dataset: str
    prompt_template: str | None = None
    budget_overrides: dict = field(default_factory=dict)


def load_config(path: str, video_root: str | None = None) -> DataConfig:
    """A data_config YAML as is, or a one-dataset config around an annotation file."""
    if path.endswith((".yaml", ".yml")):
        if video_root:
            raise ValueError("--video-root applies to an annotation file; a data_config names data_folder per dataset")
        return load_data_config(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: evaluation set not found")
    return single_file_config(path, video_root)


def load_eval_set(path: str, video_root: str | None = None) -> list[EvalSample]:
    """Every sample of the set, in file order; ids are made unique across datasets."""
    config = load_config(path, video_root)
    seed = config.seed if config.seed is not None else VideoDataSettings().seed
    samples: list[EvalSample] = []
    for entry in config.datasets:
        records = read_annotations(entry.json_path, entry.format, entry.read_options)
        # Same generator as training: `random:N` picks the same records in both.
        records = apply_sampling_strategy(records, entry.sampling_strategy, dataset_rng(seed, entry.name, "strategy"))
        for record in records:
            if entry.task:
                record.task = entry.task
            record.source = record.source or entry.name
            sample_id = record.id if len(config.datasets) == 1 else f"{entry.name}/{record.id}"
            samples.append(EvalSample(id=sample_id, record=record, video_path=entry.resolve_video(record.video),
                                      dataset=entry.name, prompt_template=entry.prompt_template,
                                      budget_overrides=dict(entry.budget_overrides)))
    _check_unique(samples)
    return samples


def _check_unique(samples: list[EvalSample]) -> None:
    # Resuming goes by id: two samples sharing one would make the second look finished.
    seen: dict[str, str] = {}
    for sample in samples:
        if sample.id in seen:
            raise ValueError(f"{sample.record.origin}: id {sample.id!r} already used by {seen[sample.id]}; "
                             "evaluation ids must be unique (fix the annotation or convert it again)")
        seen[sample.id] = sample.record.origin
