"""Per-data-source reward metrics for TRAINING steps.

verl 0.9.1 logs every reward_extra_info key per data source at validation
(`val-aux/<data_source>/<key>/mean@N`), but not during training. These functions compute
`reward/<data_source>/<key>` (the batch mean of every numeric reward_extra_info key: components,
`parse_ok`, `parse_<status>`, ...); `verl_video.verl_adapter.step_metrics` adds them to each training step.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .composite import FAILURE_KINDS


def reward_metrics(data_sources: Sequence[Any], infos: Mapping[str, Sequence[Any]], prefix: str = "reward") -> dict[str, float]:
    """`{prefix}/<data_source>/<key>`: the mean of each numeric key per data source; failure flags are summed."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for key, values in infos.items():
        for source, value in zip(data_sources, values):
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                name = f"{prefix}/{source}/{key}"
                sums[name] += value
                counts[name] += 1
    # `<component>/errors|nan|clamped` are counts of failed calls (a mean would read 0.0 for a rare bug).
    counted = tuple(f"/{kind}" for kind in FAILURE_KINDS)
    return {name: sums[name] if name.endswith(counted) else sums[name] / counts[name] for name in sums}


def rows_reward_metrics(data_sources: Sequence[Any], extra_fields: Sequence[Any]) -> dict[str, float]:
    """Per-data-source means from V1 rows, whose reward extras sit in `extra_fields["reward_extra_info"]`."""
    infos: dict[str, list] = defaultdict(lambda: [None] * len(extra_fields))
    for row, fields in enumerate(extra_fields):
        extra = fields.get("reward_extra_info") if isinstance(fields, Mapping) else None
        for key, value in (extra or {}).items():
            infos[key][row] = value
    return reward_metrics(data_sources, infos)


def transfer_queue_batch_metrics(tq: Any, batch: Any) -> dict[str, float]:
    """Per-data-source means for a V1 trainer batch, read back from TransferQueue (padding rows skipped)."""
    data = tq.kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=["data_source", "extra_fields"]
    )
    keep = [not (tag or {}).get("is_padding", False) for tag in batch.tags]
    sources = [s for s, k in zip(_as_list(data["data_source"]), keep) if k]
    fields = [f for f, k in zip(_as_list(data["extra_fields"]), keep) if k]
    return rows_reward_metrics(sources, fields)


def _as_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)
