"""Find a vision language model's vision tower and projector, and freeze them as a run's settings say.

verl 0.9.1 declares `actor_rollout_ref.actor.freeze_vision_tower` but no code reads it, so the tower trains
unless something sets `requires_grad=False` before the optimizer is built. Our FSDP engine
(`verl_video.verl_adapter.fsdp_engine`) calls `apply_freeze` on the freshly loaded model for that.

One decider (docs/settings.md): `VisionSettings.from_config` over the composed config
(`actor_rollout_ref.actor.freeze_vision_tower`, `vision.*`), called once in the driver. Its result travels to
the trainer workers in one environment variable that the driver writes into Ray's runtime env, replacing any
value the shell held (verl converts the actor config to a strict dataclass and passes the engine only its FSDP
part, so the config itself cannot carry it there); the engines read it with `from_env` and decide nothing.
The SFT driver (`python -m verl_video.sft`) exports them too, from config/sft.yaml's `vision.*`. A trainer
process that neither started (verl's own `python -m verl.trainer.main_ppo` with our config) gets none and
stops with `MissingVisionSettings` rather than silently training the whole model.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

logger = logging.getLogger("verl_video")

ENV_VAR = "VERL_VIDEO_VISION"
# Qwen2-VL, Qwen2.5-VL and Qwen3-VL keep the encoder at `<model>.visual`; the projector's modules carry
# "merger" in their names there (Qwen3-VL's deepstack mergers included).
TOWER_ATTR = "visual"
PROJECTOR_MARK = "merger"


@dataclass(frozen=True)
class VisionSettings:
    """What of the vision side trains; resolved once from the run's config."""

    freeze_encoder: bool = False
    freeze_projector: bool = False
    # Reuse the frozen encoder's features within a step (models/vision_cache.py); only ever true with
    # freeze_encoder, since a trained encoder's features change with every update.
    reuse_features: bool = False
    feature_cache_mb: float = 4096.0

    @classmethod
    def from_config(cls, config: Mapping) -> VisionSettings:
        """From the composed trainer config (`actor_rollout_ref.actor.freeze_vision_tower` and `vision.*`)."""
        freeze_encoder = bool(config["actor_rollout_ref"]["actor"].get("freeze_vision_tower", False))
        return cls.resolve(freeze_encoder, config.get("vision") or {}, "actor_rollout_ref.actor.freeze_vision_tower")

    @classmethod
    def from_sft_config(cls, config: Mapping) -> VisionSettings:
        """From the SFT config (config/sft.yaml): `vision.freeze_vision_tower` must be stated, never assumed."""
        vision = config.get("vision") or {}
        if vision.get("freeze_vision_tower") is None:
            raise ValueError(
                "the SFT config has no vision.freeze_vision_tower; set it (true: train the language model only, "
                "false: train the whole model), as config/sft.yaml does"
            )
        return cls.resolve(bool(vision["freeze_vision_tower"]), vision, "vision.freeze_vision_tower")

    @classmethod
    def resolve(cls, freeze_encoder: bool, vision: Mapping, encoder_key: str) -> VisionSettings:
        """The settings from the encoder switch (named `encoder_key` in messages) and the `vision.*` block."""
        freeze_projector = vision.get("freeze_projector")
        if freeze_projector is None:
            freeze_projector = False
        if freeze_projector and not freeze_encoder:
            raise ValueError(
                f"vision.freeze_projector=true with {encoder_key}=false would train the encoder under a frozen "
                "projector; freeze the tower too, or leave the projector trainable"
            )
        reuse = vision.get("reuse_features")
        if reuse is None:
            reuse = freeze_encoder
        elif reuse and not freeze_encoder:
            logger.warning(
                "verl-video: vision.reuse_features=true ignored: the vision encoder trains (%s=false), so its "
                "features change with every update", encoder_key,
            )
            reuse = False
        return cls(
            freeze_encoder=freeze_encoder,
            freeze_projector=bool(freeze_projector),
            reuse_features=bool(reuse),
            feature_cache_mb=float(vision.get("feature_cache_mb", 4096.0)),
        )

    def to_env(self) -> str:
        """The value of `VERL_VIDEO_VISION` that carries these settings to the workers."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls) -> VisionSettings | None:
        """The settings the driver exported, or None when the process was not started by our entry point."""
        raw = os.environ.get(ENV_VAR)
        return cls(**json.loads(raw)) if raw else None

    @classmethod
    def require_from_env(cls) -> VisionSettings:
        """The settings the driver exported; a trainer process without them stops (`MissingVisionSettings`)."""
        settings = cls.from_env()
        if settings is None:
            raise MissingVisionSettings(
                f"verl-video: this trainer process has no vision settings ({ENV_VAR} is unset), so it cannot tell "
                "whether the vision tower is frozen: the run was not started by verl-video's entry point. Start "
                "GRPO with `python -m verl_video.main ...` (not `python -m verl.trainer.main_ppo`) and SFT with "
                "`python -m verl_video.sft ...`: they resolve actor_rollout_ref.actor.freeze_vision_tower and "
                f"vision.* from the config and hand them to every worker in {ENV_VAR}"
            )
        return settings


class MissingVisionSettings(RuntimeError):
    """A trainer process started without the driver's vision settings (not through our entry points)."""


def find_vision_tower(model: torch.nn.Module) -> torch.nn.Module | None:
    """The vision encoder module (`visual`) wherever the model nests it, or None for a text-only model."""
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == TOWER_ATTR:
            return module
    return None


def is_projector_param(name: str) -> bool:
    """Whether a parameter name (relative to the tower) belongs to the projector (merger) rather than the encoder."""
    return PROJECTOR_MARK in name


def apply_freeze(model: torch.nn.Module, settings: VisionSettings) -> dict[str, int]:
    """Set requires_grad=False on the frozen parts; returns parameter and frozen-tensor counts for the log."""
    tower = find_vision_tower(model)
    counts = {"encoder": 0, "projector": 0, "frozen": 0, "frozen_tensors": 0}
    if tower is None:
        if settings.freeze_encoder:
            logger.info("verl-video: freeze_vision_tower is set but the model has no vision tower; nothing frozen")
        return counts
    for name, param in tower.named_parameters():
        part = "projector" if is_projector_param(name) else "encoder"
        counts[part] += param.numel()
        frozen = settings.freeze_projector if part == "projector" else settings.freeze_encoder
        if frozen:
            param.requires_grad_(False)
            counts["frozen"] += param.numel()
            counts["frozen_tensors"] += 1
    return counts


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters the optimizer should hold: frozen ones get neither gradients nor optimizer state."""
    return [p for p in model.parameters() if p.requires_grad]


def _amount(n: int) -> str:
    """A parameter count for a log line: in billions (B) from 0.01 B, else millions (M) or thousands (K)."""
    if n >= 1e7:
        return f"{n / 1e9:.2f} B"
    if n >= 1e4:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.2f} K"


def freeze_report(model: torch.nn.Module, counts: dict[str, int], settings: VisionSettings, who: str) -> str:
    """One line saying what `apply_freeze` froze (its `counts`) and what still trains, for `who` (e.g. "rank 0")."""
    trainable = _amount(sum(p.numel() for p in trainable_parameters(model)))
    if not counts["encoder"] and not counts["projector"]:
        return f"verl-video: {who}: the model has no vision tower, nothing frozen; trainable: {trainable}"
    if not counts["frozen"]:
        return f"verl-video: {who} trains the vision tower (nothing frozen); trainable: {trainable}"
    projector = "frozen" if settings.freeze_projector else "trainable"
    return (
        f"verl-video: {who} froze the vision tower: {counts['frozen_tensors']} tensors, "
        f"{_amount(counts['frozen'])} parameters; trainable: {trainable} (projector {projector})"
    )
