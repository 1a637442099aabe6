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


# ---- the engine's freeze step (verl_adapter/fsdp_engine.py): settings from the driver, or the run stops ------


def _engine(model_dir, forward_only: bool = False):
    """Our engine mixin over a stand-in for verl's engine up to loading the model (no FSDP, no process group)."""
    from types import SimpleNamespace

    from verl_video.verl_adapter.fsdp_engine import VisionSettingsMixin

    loads = []

    class Loaded:
        def _build_module(self):
            loads.append(model_dir)
            return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)

    class Engine(VisionSettingsMixin, Loaded):
        engine_config = SimpleNamespace(forward_only=forward_only)
        model_config = SimpleNamespace(local_path=str(model_dir))
        rank = 3

    return Engine(), loads


def test_an_engine_without_the_drivers_vision_settings_stops_the_run(tiny_model_dir, monkeypatch):
    from verl_video.models.vision_tower import ENV_VAR, MissingVisionSettings

    monkeypatch.delenv(ENV_VAR, raising=False)
    engine, loads = _engine(tiny_model_dir)
    with pytest.raises(MissingVisionSettings, match=r"python -m verl_video\.main") as error:
        engine._build_module()
    assert "python -m verl_video.sft" in str(error.value) and ENV_VAR in str(error.value)
    assert loads == []  # it stops before loading the model, not after training starts


def test_an_engine_with_the_settings_freezes_and_logs_it_once(tiny_model_dir, monkeypatch, caplog):
    from verl_video.models.vision_tower import ENV_VAR

    monkeypatch.setenv(ENV_VAR, VisionSettings(freeze_encoder=True).to_env())
    engine, _ = _engine(tiny_model_dir)
    with caplog.at_level("INFO", logger="verl_video"):
        module = engine._build_module()
    flags = {name: p.requires_grad for name, p in module.model.visual.named_parameters()}
    frozen = [name for name, trains in flags.items() if not trains]
    assert frozen and all(not is_projector_param(name) for name in frozen)
    assert all(trains for name, trains in flags.items() if is_projector_param(name))
    lines = [r.getMessage() for r in caplog.records if "froze the vision tower" in r.getMessage()]
    assert len(lines) == 1
    frozen_count = sum(p.numel() for p in module.model.visual.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert lines[0] == (
        f"verl-video: rank 3 froze the vision tower: {len(frozen)} tensors, {frozen_count / 1e6:.2f} M parameters; "
        f"trainable: {trainable / 1e6:.2f} M (projector trainable)"
    )


def test_a_forward_only_engine_freezes_without_a_line(tiny_model_dir, monkeypatch, caplog):
    # The reference policy shares the actor's process: the rank's one line is the actor's.
    from verl_video.models.vision_tower import ENV_VAR

    monkeypatch.setenv(ENV_VAR, VisionSettings(freeze_encoder=False).to_env())
    engine, _ = _engine(tiny_model_dir, forward_only=True)
    with caplog.at_level("INFO", logger="verl_video"):
        module = engine._build_module()
    assert all(p.requires_grad for p in module.parameters())
    assert not [r for r in caplog.records if "vision tower" in r.getMessage()]


def test_the_line_says_when_nothing_is_frozen(tiny_model_dir, monkeypatch, caplog):
    from verl_video.models.vision_tower import ENV_VAR

    monkeypatch.setenv(ENV_VAR, VisionSettings(freeze_encoder=False).to_env())
    engine, _ = _engine(tiny_model_dir)
    with caplog.at_level("INFO", logger="verl_video"):
        module = engine._build_module()
    trainable = sum(p.numel() for p in module.parameters())
    assert [r.getMessage() for r in caplog.records if "vision tower" in r.getMessage()] == [
        f"verl-video: rank 3 trains the vision tower (nothing frozen); trainable: {trainable / 1e6:.2f} M"
    ]
