"""Reward registry: one decorated function per reward, selected by name in config.

    from verl_video.rewards import Sample, register_reward

    @register_reward("short_answer", low=0.0, high=1.0)
    def short_answer(sample: Sample, max_chars: int = 400) -> float:
        return float(len(sample.response) <= max_chars)

A reward takes a `Sample` plus keyword parameters (given per component in YAML) and returns a float
within [low, high]. The author declares the bounds (use -math.inf / math.inf for an open side): a
value outside them is clamped and counted, so bounds guessed for the author would hide bugs or cut
penalties. A name is registered once; replacing one (a built-in included) needs `override=True`.
Files outside the package are loaded with the `modules` option
(`+reward.reward_kwargs.modules=[path/to/my_rewards.py]`).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

RewardFn = Callable[..., float]


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward function and the bounds its author declared."""

    name: str
    fn: RewardFn
    low: float
    high: float

    @property
    def fallback(self) -> float:
        """What a call that raised or returned nan scores: `low`, or 0 within the bounds when `low` is open."""
        return self.low if math.isfinite(self.low) else min(max(0.0, self.low), self.high)


REWARDS: dict[str, RewardSpec] = {}


def describe(fn: RewardFn) -> str:
    """`module.qualname (file:line)` of a function, for messages about where a reward comes from."""
    code = getattr(fn, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}{where}"


def _origin(fn: RewardFn) -> tuple[str, str]:
    # A file imported again (each Ray worker loads user reward files itself, possibly under another
    # module name) defines the same function at the same place: that is the same reward, not a clash.
    code = getattr(fn, "__code__", None)
    path = os.path.realpath(code.co_filename) if code is not None else getattr(fn, "__module__", "")
    return path, getattr(fn, "__qualname__", repr(fn))


def register_reward(
    name: str, low: float | None = None, high: float | None = None, *, override: bool = False
) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register `fn(sample, **params) -> float` under `name` with its declared [low, high]."""

    def decorator(fn: RewardFn) -> RewardFn:
        if low is None or high is None:
            raise ValueError(
                f"reward {name!r} ({describe(fn)}): declare its bounds, e.g. @register_reward({name!r}, low=0.0, "
                "high=1.0); use -math.inf or math.inf for an open side"
            )
        bounds = float(low), float(high)
        if math.isnan(bounds[0]) or math.isnan(bounds[1]) or bounds[0] > bounds[1]:
            raise ValueError(f"reward {name!r} ({describe(fn)}): bounds low={low}, high={high} are not an interval")
        existing = REWARDS.get(name)
        if existing is not None and not override and _origin(existing.fn) != _origin(fn):
            raise ValueError(
                f"reward {name!r} is already registered by {describe(existing.fn)}; {describe(fn)} registers the "
                "same name: rename one, or pass override=True to replace it on purpose"
            )
        REWARDS[name] = RewardSpec(name, fn, *bounds)
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
