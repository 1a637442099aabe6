"""The curriculum hook: `data.sampler.class_path/class_name` orders the training data, learning from each step.

verl 0.9.1 declares `data.sampler` but never builds it (its `create_rl_sampler` only shuffles or not) nor calls
the sampler's `update`. `curriculum_loader` builds the sampler from (dataset, data config) and the training
dataloader that draws through it; after each step the trainer hands it `index_scores` of the trained batch.
The sampler itself lives in verl_video/selection/curriculum.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.utils.import_utils import load_extern_object

from verl_video.verl_adapter.step_metrics import is_padding


def curriculum_loader(data_config: Any, dataset: Any, loader: StatefulDataLoader) -> tuple[Any, StatefulDataLoader]:
    """(sampler, dataloader drawing through it) for `data.sampler`, or (None, `loader`) when none is configured."""
    sampler_config = data_config.get("sampler", None)
    if not sampler_config or not sampler_config.get("class_path"):
        return None, loader
    if data_config.dataloader_num_workers != 0:
        raise ValueError("data.sampler: a curriculum sampler needs data.dataloader_num_workers=0 (its update() "
                         "runs in the trainer; dataloader workers would keep drawing from stale copies)")
    sampler_cls = load_extern_object(sampler_config.class_path, sampler_config.class_name)
    sampler = sampler_cls(data_source=dataset, data_config=data_config)
    return sampler, StatefulDataLoader(dataset=dataset, batch_size=loader.batch_size, num_workers=0, drop_last=True,
                                       collate_fn=loader.collate_fn, sampler=sampler)


def index_scores(tq: Any, batch: Any) -> dict[str, list]:
    """Dataset index and reward of each trajectory of a trained batch (padding rows left out)."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_info", "rm_scores"])
    keep = [not is_padding(tag) for tag in batch.tags]
    infos, scores = list(data["extra_info"]), list(data["rm_scores"])
    return {"index": [(info or {}).get("index") for info, k in zip(infos, keep) if k],
            "score": [float(torch.as_tensor(s).sum()) for s, k in zip(scores, keep) if k]}
