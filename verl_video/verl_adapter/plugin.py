"""verl plugin: imported by verl (entry point `verl.plugins`) in the driver and in every Ray worker.

It registers everything verl-video adds to verl's registries: the CPU platform, the `hf` rollout
backend, the grounding reward managers, our agent loop and our trainer mode; and it gives transformers'
Qwen2-VL/Qwen2.5-VL the released checkpoints' M-RoPE rule (models/mrope.py). verl swallows plugin
import errors at debug level, so each registration logs a warning of its own when it fails instead of
disappearing silently. The driver (`python -m verl_video.main`) calls `register_all(strict=True)`: there a
failed registration stops the run at start-up with the underlying error, before Ray starts anything.
"""

from __future__ import annotations

import importlib
import logging

from verl_video.verl_adapter.cpu_platform import plain_gloo_process_groups
from verl_video.verl_adapter.log_probs import install_chunked_log_probs
from verl_video.verl_adapter.vllm_cpu import alias_vllm_distribution
from verl_video.models.mrope import install_released_mrope_rule

logger = logging.getLogger("verl_video")

_REGISTRATIONS = (
    "verl_video.verl_adapter.register",
    "verl_video.verl_adapter.reward_manager",
    "verl_video.tasks",
    "verl_video.verl_adapter.agent_loop",
    "verl_video.verl_adapter.trainer",
)


class RegistrationError(RuntimeError):
    """A verl-video extension could not be registered with verl; the cause is chained."""


def register_all(strict: bool = False) -> None:
    """Import each registering module once; raise on failure when `strict`, else log a warning."""
    for name in _REGISTRATIONS:
        try:
            importlib.import_module(name)
        except Exception as exc:
            if strict:
                raise RegistrationError(f"verl-video: could not register {name}: {type(exc).__name__}: {exc}") from exc
            # verl imports plugins in every process; a worker must stay importable even if one extension breaks.
            logger.warning("verl-video: could not register %s: %s: %s", name, type(exc).__name__, exc)


# Before verl imports its vLLM module, whose version check looks for a `vllm` distribution (see vllm_cpu.py).
alias_vllm_distribution()
# Before verl's agent loop binds Qwen-VL's get_rope_index to its processor (see models/mrope.py).
install_released_mrope_rule()
# Before verl's worker modules bind its process-group helper (see cpu_platform.py).
plain_gloo_process_groups()
# verl's log-prob fallback (no flash-attn: every CPU run) loops over tokens one by one (see log_probs.py).
install_chunked_log_probs()
register_all()
