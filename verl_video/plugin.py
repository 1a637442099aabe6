"""verl plugin: imported by verl (entry point `verl.plugins`) in the driver and in every Ray worker.

It registers everything verl-video adds to verl's registries: the CPU platform, the `hf` rollout
backend, the grounding reward managers and our trainer mode. verl swallows plugin import errors at debug level, so
each registration logs a warning of its own when it fails instead of disappearing silently.
"""

from __future__ import annotations

import importlib
import logging

logger = logging.getLogger("verl_video")

_REGISTRATIONS = (
    "verl_video.backends.register",
    "verl_video.rewards.reward_manager",
    "verl_video.trainer",
)


def register_all() -> None:
    """Import each registering module once; report failures loudly."""
    for name in _REGISTRATIONS:
        try:
            importlib.import_module(name)
        except Exception as exc:  # keep verl importable even if one extension breaks
            logger.warning("verl-video: could not register %s: %s: %s", name, type(exc).__name__, exc)


register_all()
