"""The freeze switches act on the model: which vision parameters get gradients, and the optimizer's view."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from verl_video.models.vision_tower import VisionSettings, apply_freeze, is_projector_param, trainable_parameters


@pytest.fixture()
def model(tiny_model_dir):
    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)


def _trainable_vision(model) -> dict[str, bool]:
    tower = model.model.visual
    return {name: param.requires_grad for name, param in tower.named_parameters()}


@pytest.mark.parametrize(
    ("settings", "encoder_trains", "projector_trains"),
    [
        (VisionSettings(freeze_encoder=True, freeze_projector=False), False, True),
        (VisionSettings(freeze_encoder=True, freeze_projector=True), False, False),
        (VisionSettings(freeze_encoder=False, freeze_projector=False), True, True),
    ],
)
def test_switches_decide_what_gets_gradients(model, settings, encoder_trains, projector_trains):
    counts = apply_freeze(model, settings)
    flags = _trainable_vision(model)
    assert {flag for name, flag in flags.items() if not is_projector_param(name)} == {encoder_trains}
    assert {flag for name, flag in flags.items() if is_projector_param(name)} == {projector_trains}
    # The optimizer is built from these: frozen tensors are simply not in it.
    in_optimizer = {id(p) for p in trainable_parameters(model)}
    frozen = [p for p in model.model.visual.parameters() if not p.requires_grad]
    assert not any(id(p) in in_optimizer for p in frozen)
    assert counts["frozen"] == sum(p.numel() for p in frozen)
    # A backward pass leaves frozen tensors without gradients.
    embeds = model.model.visual.patch_embed.proj.weight
    loss = sum(p.float().sum() for p in model.model.visual.parameters() if p.requires_grad) + 0 * embeds.sum()
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    assert all(p.grad is None for p in frozen)


def test_a_frozen_projector_over_a_trained_encoder_is_refused():
    config = {"actor_rollout_ref": {"actor": {"freeze_vision_tower": False}}, "vision": {"freeze_projector": True}}
    with pytest.raises(ValueError, match="freeze_projector"):
        VisionSettings.from_config(config)
