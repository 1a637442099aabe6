"""Every reward component per trajectory in the rollout dump (`trainer.rollout_data_dir`).

verl 0.9.1's V1 dump (`PPOTrainer._log_rollout_data`) writes input, output, ground truth, score and uid per
trajectory, but leaves out the reward manager's `reward_extra_info` (IoU, parse status, each component):
`with_reward_extras` adds one column per extra to the rows verl is about to dump, read back from TransferQueue.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("verl_video")


def reward_extras(tq: Any, partition_id: str, keys: list) -> dict[str, list]:
    """Each reward_extra_info key as a list aligned with `keys` (the dump's row order)."""
    data = tq.kv_batch_get(keys=list(keys), partition_id=partition_id, select_fields=["extra_fields"])
    fields = list(data["extra_fields"])
    infos = [(f.get("reward_extra_info") if isinstance(f, dict) else None) or {} for f in fields]
    names = dict.fromkeys(name for info in infos for name in info)
    return {name: [info.get(name) for info in infos] for name in names}


def with_reward_extras(tq: Any, trained_batch: Any, columns: dict[str, list]) -> dict[str, list]:
    """`columns` of a dump plus the reward extras of its rows, when its rows (`uid`) are the trained batch's
    trajectories; other dumps (validation's, which carry their extras already) are returned unchanged."""
    uids = columns.get("uid")
    if trained_batch is None or not uids or not set(uids) <= set(trained_batch.keys):
        return columns
    try:
        columns.update(reward_extras(tq, trained_batch.partition_id, uids))
    except Exception as exc:  # the dump is a convenience; never fail a step on it
        logger.warning("verl-video: reward extras left out of the rollout dump: %s", exc)
    return columns
