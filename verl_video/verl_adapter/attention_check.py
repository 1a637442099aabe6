"""Start-up check that the attention kernels the config asks for exist in this environment.

verl 0.9.1 loads the model with `override_config.attn_implementation`, default flash_attention_2
(verl/workers/config/model.py line 185, verl/workers/config/engine.py `attn_implementation`), and with
use_remove_padding its patched Qwen-VL attention calls flash_attn's varlen kernel whatever that setting says
(verl/models/transformers/qwen2_vl.py lines 45-46 and 233; patched in monkey_patch.py lines 407-411). Without
the flash_attn package both fail inside every trainer worker after Ray, vLLM and the model have started.
"""

from __future__ import annotations

from omegaconf import DictConfig

VERL_DEFAULT_ATTENTION = "flash_attention_2"
WAYS_OUT = (
    "install flash-attn built for this torch (`make install-gpu`), or train with PyTorch attention: "
    "`+actor_rollout_ref.model.override_config.attn_implementation=sdpa actor_rollout_ref.model.use_remove_padding=false`"
)


def flash_attn_importable() -> bool:
    """Whether flash_attn's varlen kernel imports (a build for another torch fails here, not only a missing one)."""
    try:
        from flash_attn import flash_attn_varlen_func  # noqa: F401
    except Exception:  # ImportError, or an undefined symbol of a wheel built against another torch
        return False
    return True


def flash_attn_needs(config: DictConfig) -> list[str]:
    """The settings of the policy model that need the flash_attn package."""
    model = config.actor_rollout_ref.model
    needs = []
    attention = (model.get("override_config") or {}).get("attn_implementation", VERL_DEFAULT_ATTENTION)
    if attention == VERL_DEFAULT_ATTENTION:
        needs.append(f"actor_rollout_ref.model.override_config.attn_implementation={attention}")
    if model.get("use_remove_padding"):
        needs.append("actor_rollout_ref.model.use_remove_padding=true")
    return needs


def check_attention(config: DictConfig) -> None:
    """Refuse settings that need flash_attn when it does not import, naming both ways out."""
    needs = flash_attn_needs(config)
    if needs and not flash_attn_importable():
        from verl_video.verl_adapter.driver import ConfigError

        raise ConfigError(f"{' and '.join(needs)} need(s) the flash_attn package, which does not import here: {WAYS_OUT}")
