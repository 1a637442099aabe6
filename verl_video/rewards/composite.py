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
_RAISED: set[str] = set()


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
        terms = [(p.weight * p.spec.low, p.weight * p.spec.high) for p in self.components]
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
        values = {p.metric: _safe_call(p, sample) for p in self.components}
        total = sum(p.weight * values[p.metric] for p in self.components)
        return total, values


def _safe_call(part: Component, sample: Sample) -> float:
    # A bug in one (user) reward must not kill a training run: log it, score the lower bound.
    spec = part.spec
    try:
        value = float(spec.fn(sample, **part.params))
    except Exception:
        if part.name not in _RAISED:  # once per reward, not once per response
            _RAISED.add(part.name)
            logger.exception("reward %r raised; it scores its lower bound %s whenever it does (logged once)", part.name, spec.low)
        return spec.low
    if not math.isfinite(value):
        return spec.low
    return min(max(value, spec.low), spec.high)


def to_plain(value: Any) -> Any:
    """OmegaConf containers (from hydra) as plain dicts and lists; anything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:
        pass
    return value


def load_presets(path: str | Path | None = None) -> dict[str, Composite]:
    """Composites from a presets YAML file (the built-in presets.yaml by default)."""
    with open(path or PRESETS_FILE, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    return {name: Composite.from_config(name, config) for name, config in raw.items()}
