"""A difficulty curriculum for the training dataloader: easy records first (or hard first), resumable.

    data.sampler.class_path=pkg://verl_video.selection.curriculum   # or the file's path
    data.sampler.class_name=DifficultyCurriculumSampler
    data.sampler.stats=OUT/stats.jsonl      # optional: `verl-video select` statistics (else running rewards)
    data.sampler.order=easy_first           # or hard_first
    data.dataloader_num_workers=0           # update() runs in the trainer; workers would hold stale copies

Each epoch visits every record once. The next record is drawn lazily, so rewards reported by `update`
during an epoch reorder the records not yet drawn. How easy a record is: the IoU its statistics give
(greedy answer, else the mean of the k answers) when `stats` is set; otherwise the running mean of the
rewards its groups received (records not seen yet count as the mean of those seen; before any reward,
all tie). Ties are broken by a permutation drawn from `data.seed` per epoch.

The state (epoch, records drawn this epoch, running rewards) is saved with the dataloader state in
every checkpoint (`data.pt`), so a resumed run draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from verl_video.selection.stats import read_stats

class AbstractCurriculumSampler(Sampler[int]):
    """verl's curriculum interface (built from (data_source, data_config); `update(batch)` after every step).

    verl 0.9.1 declares `data.sampler` but ships neither this class nor the call to `update`; our trainer makes
    the call (verl_adapter/curriculum_hook.py), so the interface is restated here instead of imported.
    """

    def __init__(self, data_source: Sized, data_config: Any) -> None:
        raise NotImplementedError

    def update(self, batch: Any) -> None:
        """Learn from one training step's batch."""
        raise NotImplementedError


ORDERS = ("easy_first", "hard_first")


def record_keys(data_source: Any) -> list[tuple[str, str]]:
    """(dataset, record id) of every index of a verl-video training dataset."""
    items = getattr(getattr(data_source, "dataframe", None), "items", None)
    if items is None:
        return [("", str(i)) for i in range(len(data_source))]
    return [(item.dataset, str(item.record.id)) for item in items]


def stats_easiness(path: str, keys: Sequence[tuple[str, str]]) -> dict[int, float]:
    """Easiness (IoU) per dataset index from a `verl-video select` stats file; unmatched records are left out."""
    index = {key: i for i, key in enumerate(keys)}
    by_id = {rid: i for i, (_, rid) in enumerate(keys)}
    out = {}
    for s in read_stats(path):
        rid = str(s.record.get("id", s.id))
        i = index.get((s.dataset or "", rid), by_id.get(rid, by_id.get(s.id)))
        if i is not None:
            out[i] = s.difficulty_iou
    if not out:
        raise ValueError(f"data.sampler.stats={path}: none of its ids are in the training data")
    return out


def _get(config: Any, key: str, default: Any = None) -> Any:
    if config is None:
        return default
    value = config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)
    return default if value is None else value


class DifficultyCurriculumSampler(AbstractCurriculumSampler):
    """Orders each epoch by how easy each record is (statistics, else running rewards); resumable."""

    def __init__(self, data_source: Sized, data_config: Any) -> None:
        sampler_config = _get(data_config, "sampler", {})
        self.size = len(data_source)
        self.seed = int(_get(data_config, "seed", 0))
        self.order = str(_get(sampler_config, "order", "easy_first"))
        if self.order not in ORDERS:
            raise ValueError(f"data.sampler.order={self.order!r}: choose from {', '.join(ORDERS)}")
        stats = _get(sampler_config, "stats")
        self.fixed: dict[int, float] = stats_easiness(str(stats), record_keys(data_source)) if stats else {}
        self.reward_sum = np.zeros(self.size)
        self.reward_count = np.zeros(self.size)
        self.epoch = 0
        self.drawn: list[int] = []

    def __len__(self) -> int:
        return self.size

    def easiness(self) -> np.ndarray:
        """Current easiness of every index (higher = easier)."""
        if self.fixed:
            known = np.array(list(self.fixed.values()))
            values = np.full(self.size, float(known.mean()))
            for i, v in self.fixed.items():
                values[i] = v
            return values
        seen = self.reward_count > 0
        mean = float(self.reward_sum[seen].sum() / self.reward_count[seen].sum()) if seen.any() else 0.0
        return np.where(seen, self.reward_sum / np.maximum(self.reward_count, 1), mean)

    def _next_index(self) -> int:
        remaining = np.setdiff1d(np.arange(self.size), np.array(self.drawn, dtype=int), assume_unique=False)
        ties = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        values = self.easiness()[remaining]
        sign = -1.0 if self.order == "easy_first" else 1.0
        # Sort by easiness, then by this epoch's random rank (lexsort: last key is the primary one).
        best = np.lexsort((ties[remaining], sign * values))[0]
        return int(remaining[best])

    def __iter__(self) -> Iterator[int]:
        if len(self.drawn) >= self.size:
            self.epoch += 1
            self.drawn = []
        while len(self.drawn) < self.size:
            index = self._next_index()
            self.drawn.append(index)
            yield index
        # The epoch is complete; the next iter() starts the next one.

    def update(self, batch: Mapping[str, Sequence[Any]]) -> None:
        """Add one step's rewards: `{"index": [dataset index per trajectory], "score": [reward per trajectory]}`."""
        for index, score in zip(batch["index"], batch["score"]):
            if index is None or score is None or not np.isfinite(float(score)):
                continue
            i = int(index)
            if 0 <= i < self.size:
                self.reward_sum[i] += float(score)
                self.reward_count[i] += 1

    def state_dict(self) -> dict[str, Any]:
        """Epoch, records drawn this epoch and running rewards (saved in the dataloader's checkpoint)."""
        return {"epoch": self.epoch, "drawn": list(self.drawn), "reward_sum": self.reward_sum.tolist(),
                "reward_count": self.reward_count.tolist(), "size": self.size}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the curriculum a checkpoint saved; refuses a state saved for another data size."""
        if int(state["size"]) != self.size:
            raise ValueError(f"curriculum state is for {state['size']} records, the training data has {self.size}: "
                             "resume with the same data")
        self.epoch, self.drawn = int(state["epoch"]), [int(i) for i in state["drawn"]]
        self.reward_sum = np.array(state["reward_sum"], dtype=float)
        self.reward_count = np.array(state["reward_count"], dtype=float)
