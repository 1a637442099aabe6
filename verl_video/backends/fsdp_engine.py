"""verl's FSDP training engines with the vision-side settings applied: a frozen tower really stays frozen.

Registered in verl's engine registry for every device (see `register.py`) in place of verl's own classes,
which they subclass: the model is loaded by verl as usual, then the frozen parts get `requires_grad=False`
before FSDP wraps the model and before the optimizer is built from the trainable parameters only.
"""

from __future__ import annotations

import logging

from verl.workers.config.optimizer import build_optimizer
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

from verl_video.models.vision_tower import VisionSettings, apply_freeze, trainable_parameters

logger = logging.getLogger("verl_video")


class VisionSettingsMixin:
    """Applies `VisionSettings` (exported by the driver) to the model verl loads, and builds the optimizer to match."""

    def _build_module(self):
        module = super()._build_module()
        settings = VisionSettings.from_env()
        if settings is None:
            logger.warning(
                "verl-video: no vision settings from the driver (run through `python -m verl_video.main`); "
                "the whole model trains"
            )
            return module
        counts = apply_freeze(module, settings)
        self.vision_settings = settings
        if counts["encoder"] and not self.engine_config.forward_only:
            logger.info(
                "verl-video: vision encoder %s (%d params), projector %s (%d params)",
                "frozen" if settings.freeze_encoder else "trained", counts["encoder"],
                "frozen" if settings.freeze_projector else "trained", counts["projector"],
            )
        return module

    def _build_optimizer(self, module):
        return build_optimizer(trainable_parameters(module), self.optimizer_config)


class VideoFSDPEngineWithLMHead(VisionSettingsMixin, FSDPEngineWithLMHead):
    """verl's actor/reference engine with vision settings applied."""


class VideoFSDPEngineWithValueHead(VisionSettingsMixin, FSDPEngineWithValueHead):
    """verl's critic engine with vision settings applied."""
