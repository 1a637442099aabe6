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

import hashlib
import importlib
import importlib.util
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

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


def definition_site(fn: Callable) -> tuple[str, str]:
    """(real file, qualified name) of a function: a file imported again defines it at the same site."""
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
        if existing is not None and not override and definition_site(existing.fn) != definition_site(fn):
            raise ValueError(
                f"reward {name!r} is already registered by {describe(existing.fn)}; {describe(fn)} registers the "
                "same name: rename one, or pass override=True to replace it on purpose"
            )
        REWARDS[name] = RewardSpec(name, fn, *bounds)
        return fn

    return decorator


# `path/to/file.py:function` or `package.module:function`: a verl-style compute_score function, used as a reward.
FUNCTION_REFERENCE = re.compile(r"^(?P<module>.+\.py|[A-Za-z_][\w.]*):(?P<function>[A-Za-z_]\w*)$")


def get_reward(name: str) -> RewardSpec:
    """The registered reward `name` (a `file.py:function` reference registers on first use); ValueError otherwise."""
    match = FUNCTION_REFERENCE.match(name)
    if name not in REWARDS and match:
        _register_compute_score(name, match["module"], match["function"])
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; registered: {', '.join(sorted(REWARDS))}")
    return REWARDS[name]


def _register_compute_score(name: str, module: str, function: str) -> None:
    [loaded] = load_modules([module], named_in=f"reward {name!r}")
    fn = getattr(loaded, function, None)
    if not callable(fn):
        raise ValueError(f"reward {name!r}: {module} has no function {function!r}")

    def compute_score_reward(sample: Any) -> float:
        """verl's `compute_score(data_source, solution_str, ground_truth, extra_info)`: its number or its `score`."""
        result = fn(sample.data_source, sample.response, sample.ground_truth, dict(sample.extra_info))
        return float(result["score"] if isinstance(result, Mapping) else result)

    # A compute_score function declares no bounds: its value is taken as is (an error or nan still scores 0).
    REWARDS[name] = RewardSpec(name, compute_score_reward, -math.inf, math.inf)


class ModuleLoadError(ValueError):
    """A user file or module named in `modules` could not be imported; the message names where it was named."""


def load_modules(modules: Iterable[str] | str | None, named_in: str = "") -> list[ModuleType]:
    """Import user files (`path/to/file.py`) or modules (`pkg.mod`) so their registrations run; the modules.

    The one loader of every command (data_config `modules:`, `reward.reward_kwargs.modules`, `--modules`): a
    file is imported once per process under a name derived from its real path, so every process (Ray workers
    too) gives it the same name. `named_in` says where the list came from, for the error of a module that fails.
    """
    if isinstance(modules, str):
        modules = [modules]
    loaded = []
    for module in modules or ():
        module = str(module)
        try:
            loaded.append(_import_one(module))
        except Exception as exc:
            where = f"{named_in}: " if named_in else ""
            raise ModuleLoadError(f"{where}cannot import module {module}: {_explain(exc, module)}") from exc
    return loaded


def _import_one(module: str) -> ModuleType:
    if not module.endswith(".py"):
        return importlib.import_module(module)
    path = Path(module).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"verl_video_user_{stem}_{digest}"  # flat: pickle finds it in sys.modules by this name
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        del sys.modules[name]  # a later try must run the file again, not find half a module
        raise
    return loaded


def _explain(exc: BaseException, module: str) -> str:
    """`Type: message (at file:line)`, the line being the innermost one of the user's file that raised."""
    path = str(Path(module).expanduser().resolve()) if module.endswith(".py") else ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"
