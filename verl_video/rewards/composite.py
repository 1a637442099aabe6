"""Composite reward: a weighted sum of registered rewards, defined in YAML (presets.yaml or yours)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import components  # noqa: F401  (registers the built-in rewards)
from .parser import DEFAULT_CONFIG, ParserConfig
from .registry import RewardSpec, get_reward
from .sample import Sample

logger = logging.getLogger("verl_video.rewards")

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
# How a component's value can fail; each is logged as `<component key>/<kind>` (0/1 per response).
FAILURE_KINDS = ("errors", "nan", "clamped")
# (reward name, kind) already logged in this process: the first of each kind is logged, not every one.
_LOGGED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Component:
    """One term of a composite: a registered reward, its weight, metric key and parameters."""

    name: str
    weight: float = 1.0
    key: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    # Resolved once (an unknown name fails at start-up, not at the first batch).
    spec: RewardSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", get_reward(self.name))

    @property
    def metric(self) -> str:
        """The name this component's value is logged under."""
        return self.key or self.name


@dataclass(frozen=True)
class Composite:
    """A named weighted sum of rewards plus the parser settings its answers need."""

    name: str
    components: tuple[Component, ...]
    parser: ParserConfig = DEFAULT_CONFIG

    @classmethod
    def from_config(cls, name: str, config: Mapping | list) -> Composite:
        """Build from `{components: [...] | {name: weight}, parser: {...}}` or a bare components list."""
        config = to_plain(config)
        if not isinstance(config, Mapping) or "components" not in config:
            config = {"components": config}
        raw = config["components"]
        items = [{"name": k, "weight": v} for k, v in raw.items()] if isinstance(raw, Mapping) else list(raw)
        parts = []
        for item in items:
            item = {"name": item} if isinstance(item, str) else dict(item)
            parts.append(Component(
                name=str(item.pop("name")), weight=float(item.pop("weight", 1.0)), key=str(item.pop("key", "") or ""),
                params=item,
            ))
        keys = [p.metric for p in parts]
        if len(set(keys)) != len(keys):
            raise ValueError(f"reward preset {name!r}: two components log under the same key {keys}; set `key:`")
        return cls(name, tuple(parts), ParserConfig(**dict(config.get("parser") or {})))

    @property
    def keys(self) -> tuple[str, ...]:
        """Metric keys of the components, in order."""
        return tuple(p.metric for p in self.components)

    @property
    def bounds(self) -> tuple[float, float]:
        """The lowest and highest total this composite can return."""
        # A zero weight removes its term even when a bound is infinite (0 * inf would be nan).
        terms = [(p.weight * p.spec.low, p.weight * p.spec.high) if p.weight else (0.0, 0.0) for p in self.components]
        return sum(min(t) for t in terms), sum(max(t) for t in terms)

    def override(self, strictness: str | None = None, parser: Mapping | None = None) -> Composite:
        """A copy with another format strictness and/or parser settings."""
        parts = self.components
        if strictness:
            parts = tuple(
                replace(p, params={**p.params, "strictness": strictness}) if p.name == "format" else p for p in parts
            )
        config = replace(self.parser, **dict(parser)) if parser else self.parser
        return replace(self, components=parts, parser=config)

    def __call__(self, sample: Sample) -> tuple[float, dict[str, float]]:
        """Total reward and each component's (unweighted) value."""
        total, values, _ = self.evaluate(sample)
        return total, values

    def evaluate(self, sample: Sample) -> tuple[float, dict[str, float], dict[str, str]]:
        """Total, each component's value, and `{component key: failure kind}` for the components that failed."""
        values, failures = {}, {}
        for part in self.components:
            values[part.metric], failure = _safe_call(part, sample)
            if failure:
                failures[part.metric] = failure
        total = sum(p.weight * values[p.metric] for p in self.components)
        return total, values, failures


def _safe_call(part: Component, sample: Sample) -> tuple[float, str | None]:
    # A bug in one (user) reward must not kill a training run: it scores within its declared bounds,
    # and the caller counts the failure so that it shows in the step metrics.
    spec = part.spec
    try:
        value = float(spec.fn(sample, **part.params))
    except Exception:
        if _first(spec.name, "errors"):
            logger.exception(
                "reward %r raised; it scores %s whenever it does, counted as %s/errors (first traceback only)",
                spec.name, spec.fallback, part.metric,
            )  # fmt: skip
        return spec.fallback, "errors"
    if not math.isfinite(value):
        if _first(spec.name, "nan"):
            logger.warning("reward %r returned %s; it scores %s instead, counted as %s/nan (logged once)",
                           spec.name, value, spec.fallback, part.metric)  # fmt: skip
        return spec.fallback, "nan"
    if value < spec.low or value > spec.high:
        if _first(spec.name, "clamped"):
            logger.warning(
                "reward %r returned %s outside its declared bounds [%s, %s]; clamped, counted as %s/clamped "
                "(logged once): fix the function or its register_reward bounds", spec.name, value, spec.low,
                spec.high, part.metric,
            )  # fmt: skip
        return min(max(value, spec.low), spec.high), "clamped"
    return value, None


def _first(name: str, kind: str) -> bool:
    if (name, kind) in _LOGGED:
        return False
    _LOGGED.add((name, kind))
    return True


def to_plain(value: Any) -> Any:
    """OmegaConf containers (from hydra) as plain dicts and lists; anything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:
        pass
    return value


# Presets registered from Python (e.g. by a task file named in `modules`): served with the built-in ones.
REGISTERED_PRESETS: dict[str, Any] = {}


def register_preset(name: str, config: Mapping | list, *, override: bool = False) -> None:
    """Add a preset (presets.yaml's schema: `{components: [...], parser: {...}}`) under `name`, for every scorer."""
    config = to_plain(config)
    Composite.from_config(name, config)  # an unknown reward or a bad parameter fails here, naming the preset
    builtin = name in _read_presets(PRESETS_FILE)
    earlier = REGISTERED_PRESETS.get(name)
    if not override and (builtin or (earlier is not None and earlier != config)):
        raise ValueError(f"reward preset {name!r} is already defined; rename it, or pass override=True to replace it")
    REGISTERED_PRESETS[name] = config


def _read_presets(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_presets(path: str | Path | None = None) -> dict[str, Composite]:
    """Composites from a presets YAML file (by default the built-in presets.yaml plus the registered presets)."""
    raw = _read_presets(path) if path else {**_read_presets(PRESETS_FILE), **REGISTERED_PRESETS}
    return {name: Composite.from_config(name, config) for name, config in raw.items()}
