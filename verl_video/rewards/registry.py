"""Reward registry: one decorated function per reward, selected by name in config.

    from verl_video.rewards import Sample, register_reward

    @register_reward("short_answer", low=0.0, high=1.0)
    def short_answer(sample: Sample, max_chars: int = 400) -> float:
        return float(len(sample.response) <= max_chars)

A reward takes a `Sample` plus keyword parameters (given per component in YAML) and returns a float
within [low, high]. Files outside the package are loaded with the `modules` option
(`+reward.reward_kwargs.modules=[path/to/my_rewards.py]`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

RewardFn = Callable[..., float]


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward function and its documented bounds."""

    name: str
    fn: RewardFn
    low: float = 0.0
    high: float = 1.0


REWARDS: dict[str, RewardSpec] = {}


def register_reward(name: str, low: float = 0.0, high: float = 1.0) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register `fn(sample, **params) -> float` under `name` with its bounds."""

    def decorator(fn: RewardFn) -> RewardFn:
        existing = REWARDS.get(name)
        # Re-importing the same file (e.g. in each Ray worker) re-registers the same function: allowed.
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"reward {name!r} is already registered by {existing.fn.__module__}.{existing.fn.__qualname__}")
        REWARDS[name] = RewardSpec(name, fn, float(low), float(high))
        return fn

    return decorator


def get_reward(name: str) -> RewardSpec:
    """The registered reward `name`; ValueError listing the known names otherwise."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; registered: {', '.join(sorted(REWARDS))}")
    return REWARDS[name]


def load_modules(modules: Iterable[str] | str | None) -> None:
    """Import reward files (`path/to/file.py`) or modules (`pkg.mod`) so their decorators run."""
    if isinstance(modules, str):
        modules = [modules]
    for module in modules or ():
        module = str(module)
        if not module.endswith(".py"):
            importlib.import_module(module)
            continue
        path = Path(module).expanduser().resolve()
        name = f"verl_video_user_rewards.{path.stem}_{abs(hash(str(path)))}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load reward file {path}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
