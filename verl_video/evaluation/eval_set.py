"""An evaluation set: the items of a data_config YAML or of one annotation file, through the training pipeline.

Each dataset entry's `sampling_strategy` (e.g. `first:500`), `task`, `prompt_template` and video
budget overrides apply as in training (`verl_video.pipeline.items`); mixing `weight`s and the training
record checks do not (evaluation scores every record once).
"""

from __future__ import annotations

from dataclasses import dataclass

from verl_video.pipeline.items import DatasetItem, load_items, read_data_config
from verl_video.annotations.records import Record
from verl_video.video.settings import VideoDataSettings


@dataclass
class EvalSample:
    """One item to evaluate and its unique id in the run."""

    id: str
    item: DatasetItem

    @property
    def record(self) -> Record:
        """The annotation record."""
        return self.item.record

    @property
    def video_path(self) -> str:
        """Absolute path of the video file."""
        return self.item.video.path

    @property
    def dataset(self) -> str:
        """Name of the data_config entry the sample comes from."""
        return self.item.dataset


def load_eval_set(path: str, video_root: str | None = None, settings: VideoDataSettings | None = None) -> list[EvalSample]:
    """Every sample of the set, in file order, under `settings` (default: the YAML's); ids unique across datasets."""
    items = load_items([path], settings or VideoDataSettings(), training=False, video_root=video_root)
    several = len(read_data_config(path, video_root).datasets) > 1
    samples = [EvalSample(f"{item.dataset}/{item.record.id}" if several else item.record.id, item) for item in items]
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
