"""Which records of each dataset a run uses: sampling strategies and mixing weights, seeded.

`sampling_strategy` picks a subset of one dataset (all, first:N, end:N, random:N, random:P%).
`weight` sets the datasets' shares of the mixture: when any entry has a weight (missing ones count 1),
dataset i contributes round(total * w_i / sum(w)) records, total being the sum of the selected sizes;
a dataset whose share exceeds its size is repeated, then topped up with a random subset.
Every random choice uses a generator seeded by (seed, dataset name): reproducible run to run. The seed is
the run's (`trainer.seed`, reaching here as `data.video.seed`) unless the data_config file sets its own
`seed:`, which then fixes that file's picks whatever the run's seed (`sampling_seed`, docs/settings.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from verl_video.annotations.data_config import DatasetEntry, parse_sampling_strategy

Item = TypeVar("Item")


def sampling_seed(file_seed: int | None, run_seed: int) -> int:
    """The seed of a data_config file's strategies and weights: its own `seed:` when set, else the run's."""
    return run_seed if file_seed is None else file_seed


def dataset_rng(seed: int, name: str, purpose: str) -> np.random.Generator:
    """A generator that depends only on the seed, the dataset name and what it is used for."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(purpose.encode())])


def apply_sampling_strategy(items: Sequence[Item], strategy: str, rng: np.random.Generator) -> list[Item]:
    """The subset of `items` that `strategy` selects (random picks keep file order)."""
    kind, amount = parse_sampling_strategy(strategy)
    n = len(items)
    if kind == "all":
        return list(items)
    count = min(n, round(n * amount / 100) if kind == "random%" else int(amount))
    if kind == "first":
        return list(items[:count])
    if kind == "end":
        return list(items[n - count :])
    chosen = np.sort(rng.choice(n, size=count, replace=False))
    return [items[i] for i in chosen]


def _take(items: list[Item], count: int, rng: np.random.Generator) -> list[Item]:
    repeats, remainder = divmod(count, len(items)) if items else (0, 0)
    extra = np.sort(rng.choice(len(items), size=remainder, replace=False)) if remainder else []
    return items * repeats + [items[i] for i in extra]


def mix_datasets(
    selected: list[tuple[DatasetEntry, list[Item]]], seed: int
) -> list[tuple[DatasetEntry, Item]]:
    """Concatenate the datasets, resized to their weights when any entry has a weight."""
    if not any(entry.weight is not None for entry, _ in selected):
        return [(entry, item) for entry, items in selected for item in items]
    total = sum(len(items) for _, items in selected)
    weights = [entry.weight if entry.weight is not None else 1.0 for entry, _ in selected]
    mixed = []
    for (entry, items), weight in zip(selected, weights, strict=True):
        count = round(total * weight / sum(weights))
        taken = _take(items, count, dataset_rng(seed, entry.name, "weight"))
        mixed.extend((entry, item) for item in taken)
    return mixed
