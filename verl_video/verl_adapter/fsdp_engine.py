"""verl's FSDP training engines with the vision-side settings applied: a frozen tower really stays frozen.

Registered in verl's engine registry for every device (see `register.py`) in place of verl's own classes,
which they subclass: the model is loaded by verl as usual, then the frozen parts get `requires_grad=False`
before FSDP wraps the model and before the optimizer is built from the trainable parameters only.

The vision tower also gets the feature-reuse forward (`models/vision_cache.py`). A step's passes run in one
order in each trainer process: old log-probs, reference log-probs, then the update's mini-batches; the last
mini-batch of the update (the one after which verl steps the lr scheduler) closes the step: its metrics
carry the step's `vision/*` counters, and the stored features are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from verl.utils import tensordict_utils as tu
from verl.utils.device import get_device_name
from verl.workers.engine.fsdp import transformer_impl
from verl.workers.config.optimizer import build_optimizer
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

from verl_video.models import vision_cache
from verl_video.models.vision_tower import VisionSettings, apply_freeze, freeze_report, trainable_parameters

logger = logging.getLogger("verl_video")


@contextmanager
def unpinned_cpu_offload() -> Iterator[None]:
    """While verl wraps a model on a CPU machine, its FSDP2 CPU-offload policy does not pin memory.

    verl offloads every forward-only model (the reference policy) with `CPUOffloadPolicy(pin_memory=True)`;
    pinning host memory needs a CUDA driver, so the reference model (use_kl_loss, the GPU recipe's KL term)
    could not start on CPU. The parameters live in host memory there anyway.
    """
    pinned = transformer_impl.CPUOffloadPolicy

    def unpinned(*args, **kwargs):
        # verl passes pin_memory=True explicitly, so this must override it, not merely default it.
        return pinned(*args, **{**kwargs, "pin_memory": False})

    transformer_impl.CPUOffloadPolicy = unpinned
    try:
        yield
    finally:
        transformer_impl.CPUOffloadPolicy = pinned


def vision_language_value_model(local_path: str, torch_dtype: torch.dtype, model_config: Any) -> torch.nn.Module:
    """A vision-language checkpoint as a critic: the whole model (video in), its LM head replaced by one output."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(local_path, dtype=torch_dtype, config=model_config)
    text = model_config.get_text_config()
    # What a ...ForTokenClassification head with num_labels=1 is: verl reads `logits[..., 0]` as the values.
    head = torch.nn.Linear(text.hidden_size, 1, bias=True, dtype=torch_dtype)
    torch.nn.init.normal_(head.weight, std=text.initializer_range)
    torch.nn.init.zeros_(head.bias)
    model.lm_head = head
    # The value head must not be re-tied to the input embedding (Qwen2.5-VL-3B ties them).
    model.config.tie_word_embeddings = False
    return model


@contextmanager
def vision_language_critics() -> Iterator[None]:
    """While verl builds a critic, vision-language checkpoints load through `vision_language_value_model`.

    verl 0.9.1 loads critics with AutoModelForTokenClassification, which has no Qwen-VL class, and falls back
    to trl's value-head wrapper with flash_attention_2 forced: without trl and flash-attn (CPU) a Qwen2.5-VL
    critic cannot start. Text-only checkpoints keep verl's loader.
    """
    from verl.utils import model as verl_model

    verl_loader = verl_model.load_valuehead_model

    def load(local_path, torch_dtype, model_config, trust_remote_code):
        if getattr(model_config, "vision_config", None) is None:
            return verl_loader(local_path, torch_dtype, model_config, trust_remote_code)
        return vision_language_value_model(local_path, torch_dtype, model_config)

    verl_model.load_valuehead_model = load
    try:
        yield
    finally:
        verl_model.load_valuehead_model = verl_loader


class VisionSettingsMixin:
    """Applies `VisionSettings` (exported by the driver; required) to the model verl loads; the optimizer matches."""

    # The actor's update ends a step; a critic colocated in the same process must not end it early.
    closes_vision_step = True
    vision_hook = None
    # Told apart in the freeze log line when a critic shares the actor's process.
    vision_role = ""

    def _build_module(self):
        # Before loading the model: without the driver's settings the whole model would train unnoticed.
        settings = VisionSettings.require_from_env()
        module = super()._build_module()
        counts = apply_freeze(module, settings)
        self.vision_settings = settings
        if not self.engine_config.forward_only:
            # Once per trainer process and engine: what this rank's optimizer will (not) hold. Warning level
            # because verl sets every process's root logger to WARNING, and a run's logs must show this.
            logger.warning(freeze_report(module, counts, settings, f"rank {getattr(self, 'rank', 0)}{self.vision_role}"))
        self.vision_hook = hook = vision_cache.install_feature_reuse(
            module,
            reuse=settings.reuse_features,
            projector_frozen=settings.freeze_projector,
            model_key=str(self.model_config.local_path),
            cap_mb=settings.feature_cache_mb,
        )
        if hook is not None and hook.reuse and not self.engine_config.forward_only:
            logger.info("verl-video: vision features computed once per video per step (vision.reuse_features)")
        return module

    def forward_backward_batch(self, data, loss_function, forward_only=False):
        output = super().forward_backward_batch(data, loss_function, forward_only=forward_only)
        last_of_update = tu.get_non_tensor_data(data=data, key="update_lr_scheduler", default=False)
        if self.vision_hook is not None and self.closes_vision_step and not forward_only and last_of_update:
            # Every rank reaches the update's last mini-batch together, so the collectives in step_metrics line up.
            # One-element lists: verl gathers metrics as per-micro-batch lists and flattens them.
            for key, value in vision_cache.step_metrics().items():
                output["metrics"][key] = [value]
            vision_cache.end_step()
        return output

    def _build_fsdp_module(self, module):
        if get_device_name() != "cpu":
            return super()._build_fsdp_module(module)
        with unpinned_cpu_offload():
            return super()._build_fsdp_module(module)

    def _build_optimizer(self, module):
        return build_optimizer(trainable_parameters(module), self.optimizer_config)


class VideoFSDPEngineWithLMHead(VisionSettingsMixin, FSDPEngineWithLMHead):
    """verl's actor/reference engine with vision settings applied."""


class VideoFSDPEngineWithValueHead(VisionSettingsMixin, FSDPEngineWithValueHead):
    """verl's critic engine with vision settings applied; a vision-language critic reads the video too."""

    closes_vision_step = False
    vision_role = " (critic)"

    def _build_module(self):
        with vision_language_critics():
            return super()._build_module()
