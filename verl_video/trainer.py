"""The trainer verl-video runs: verl's synchronous V1 PPO trainer plus per-data-source reward metrics.

Registered in verl's trainer registry as `grounding_sync` and selected by our config
(`trainer.v1.trainer_mode`). verl logs reward components per data source only at validation; this
adds `reward/<data_source>/<component>` (IoU, format, parse-failure rates, ...) to every training step.
"""

from __future__ import annotations

import logging

from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from verl_video.rewards.metrics import transfer_queue_batch_metrics

logger = logging.getLogger("verl_video")

TRAINER_MODE = "grounding_sync"


@register_trainer(TRAINER_MODE)
class GroundingSyncTrainer(PPOTrainerSync):
    """verl's sync trainer; each step's metrics also carry the reward extras per data source."""

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        result = super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        try:
            metrics.update(transfer_queue_batch_metrics(trainer_base.tq, batch))
        except Exception as exc:  # a metric must never stop training
            logger.warning("verl-video: per-source reward metrics failed: %s: %s", type(exc).__name__, exc)
        return result
