"""verl plugin: imported by verl (entry point `verl.plugins`) in the driver and in every Ray worker.

It applies verl-video's patches to verl, transformers and vLLM (every one is listed in `patches/__init__.py`)
and registers everything verl-video adds through verl's public registries: the CPU platform, the `hf`
rollout's replica, the grounding reward managers, our agent loop and our trainer mode. verl swallows plugin
import errors at debug level, so each patch and registration logs a warning of its own when it fails instead
of disappearing silently. The driver (`python -m verl_video.main`) calls `register_all(strict=True)`: there a
failed patch or registration stops the run at start-up with the underlying error, before Ray starts anything.
"""

from __future__ import annotations

import importlib
import logging

from verl_video.verl_adapter.patches import apply_all

logger = logging.getLogger("verl_video")

CPU_PLATFORM = "verl_video.verl_adapter.cpu_platform"
_REGISTRATIONS = (
    "verl_video.verl_adapter.register",
    "verl_video.verl_adapter.reward_manager",
    "verl_video.tasks",
    "verl_video.verl_adapter.agent_loop",
    "verl_video.verl_adapter.search_agent_loop",
    "verl_video.verl_adapter.trainer",
)


class RegistrationError(RuntimeError):
    """A verl-video extension could not be registered with verl; the cause is chained."""


def _register(name: str, strict: bool) -> None:
    """Import one registering module; raise on failure when `strict`, else log a warning."""
    try:
        importlib.import_module(name)
    except Exception as exc:
        if strict:
            raise RegistrationError(f"verl-video: could not register {name}: {type(exc).__name__}: {exc}") from exc
        # verl imports plugins in every process; a worker must stay importable even if one extension breaks.
        logger.warning("verl-video: could not register %s: %s: %s", name, type(exc).__name__, exc)


def register_all(strict: bool = False) -> None:
    """Register the CPU platform, apply the patches, then import each registering module once."""
    # verl resolves its platform once per process, at the first device query, and importing verl's engine
    # modules (patches/verl_engine_registry.py) makes one: the CPU platform must be registered before that.
    _register(CPU_PLATFORM, strict)
    # Then the patches: some must be in place before verl binds the names they replace (patches/__init__.py).
    apply_all(strict=strict)
    for name in _REGISTRATIONS:
        _register(name, strict)


register_all()
