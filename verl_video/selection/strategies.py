"""Selection strategies: one decorated function per strategy, chosen by name (`--strategy NAME`).

    from verl_video.selection import Selection, register_strategy

    @register_strategy("hard_only")
    def hard_only(stats, max_iou: float = 0.3):
        keep = [s for s in stats if s.difficulty_iou <= max_iou]
        return Selection(keep, {"too_easy": [s for s in stats if s.difficulty_iou > max_iou]})

A strategy takes the list of `RecordStats` and keyword parameters (`--param name=value`) and returns
the records it keeps plus the dropped ones grouped by reason. User files are loaded with
`--modules path/to/my_strategies.py`, as reward files are.

Built in:
- `difficulty` (Time-R1): band low < IoU <= high on the IoU of the (greedy) prediction against the best
  ground-truth window, then keep all of the band (default), `count` evenly spaced by sorted IoU
  (`mode=linspace`), or `count` drawn with weight exp(-(IoU - mu)^2 / (2 sigma^2)) (`mode=gaussian`).
- `variance` (Temporal-R1): keep records whose k answers' rewards vary: variance > `threshold`
  (default 0: any disagreement), or the `top` N by variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from verl_video.selection.stats import RecordStats

StrategyFn = Callable[..., "Selection"]

# Reasons a record is dropped, shared by the built-ins so reports compare across strategies.
ALL_UNPARSED = "all_answers_unparsed"
ZERO_IOU = "iou_zero"
TOO_EASY = "too_easy"
NOT_SAMPLED = "not_sampled"
ZERO_VARIANCE = "reward_variance_at_or_below_threshold"
BELOW_TOP = "below_top_n"


@dataclass
class Selection:
    """The records a strategy keeps, and the dropped ones by reason."""

    kept: list[RecordStats]
    dropped: dict[str, list[RecordStats]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """`kept` and one count per drop reason."""
        return {"kept": len(self.kept), **{reason: len(items) for reason, items in self.dropped.items()}}


STRATEGIES: dict[str, StrategyFn] = {}


def register_strategy(name: str, *, override: bool = False) -> Callable[[StrategyFn], StrategyFn]:
    """Decorator: register `fn(stats, **params) -> Selection` under `name`."""

    def decorator(fn: StrategyFn) -> StrategyFn:
        existing = STRATEGIES.get(name)
        if existing is not None and not override and existing is not fn and (
            existing.__code__.co_filename, existing.__qualname__) != (fn.__code__.co_filename, fn.__qualname__):
            raise ValueError(f"selection strategy {name!r} is already registered by {existing.__module__}."
                             f"{existing.__qualname__}; rename one or pass override=True")
        STRATEGIES[name] = fn
        return fn

    return decorator


def get_strategy(name: str) -> StrategyFn:
    """The registered strategy `name`; ValueError listing the known names otherwise."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {name!r}; registered: {', '.join(sorted(STRATEGIES))} "
                         "(add your own with --modules FILE.py and @register_strategy)")
    return STRATEGIES[name]


def select(stats: list[RecordStats], name: str, **params) -> Selection:
    """Run strategy `name`; checks that every record lands in exactly one of kept / dropped."""
    selection = get_strategy(name)(stats, **params)
    placed = len(selection.kept) + sum(len(v) for v in selection.dropped.values())
    if placed != len(stats):
        raise ValueError(f"selection strategy {name!r} placed {placed} records, but was given {len(stats)}: "
                         "each record must be kept or dropped for exactly one reason")
    return selection


def gaussian_weight(iou: float, mu: float = 0.3, sigma: float = 0.2) -> float:
    """Time-R1's sampling weight: exp(-(IoU - mu)^2 / (2 sigma^2))."""
    return math.exp(-((iou - mu) ** 2) / (2 * sigma**2))


def _split_unparsed(stats: list[RecordStats]) -> tuple[list[RecordStats], list[RecordStats]]:
    return [s for s in stats if not s.all_unparsed], [s for s in stats if s.all_unparsed]


@register_strategy("difficulty")
def difficulty(stats: list[RecordStats], low: float = 0.0, high: float = 0.7, mode: str = "all",
               count: int | None = None, mu: float = 0.3, sigma: float = 0.2, seed: int = 0) -> Selection:
    """Time-R1: keep low < IoU <= high, then all, `count` evenly spaced by IoU, or `count` Gaussian-weighted."""
    if mode not in ("all", "linspace", "gaussian"):
        raise ValueError(f"difficulty: mode {mode!r} is not one of all, linspace, gaussian")
    if mode != "all" and (count is None or int(count) < 1):
        raise ValueError(f"difficulty: mode={mode} needs count=N (how many records to keep), N >= 1")
    usable, unparsed = _split_unparsed(stats)
    dropped = {ALL_UNPARSED: unparsed, ZERO_IOU: [], TOO_EASY: [], NOT_SAMPLED: []}
    band = []
    for s in usable:
        iou = s.difficulty_iou
        if iou <= low:
            dropped[ZERO_IOU].append(s)
        elif iou > high:
            dropped[TOO_EASY].append(s)
        else:
            band.append(s)
    kept = band
    if mode != "all" and int(count) < len(band):
        count = int(count)
        order = sorted(range(len(band)), key=lambda i: (band[i].difficulty_iou, i))
        if mode == "linspace":
            picks = sorted({order[int(p)] for p in np.linspace(0, len(band) - 1, count)})
        else:
            weights = np.array([gaussian_weight(band[i].difficulty_iou, mu, sigma) for i in range(len(band))])
            rng = np.random.default_rng(seed)
            picks = sorted(rng.choice(len(band), size=count, replace=False, p=weights / weights.sum()).tolist())
        chosen = set(picks)
        kept = [band[i] for i in picks]
        dropped[NOT_SAMPLED] = [s for i, s in enumerate(band) if i not in chosen]
    return Selection(kept, {k: v for k, v in dropped.items() if v or k in (ZERO_IOU, TOO_EASY)})


def require_k(stats: list[RecordStats], strategy: str) -> None:
    """Refuse statistics with fewer than two answers per record: a variance over one answer is always 0."""
    short = [s for s in stats if s.rewards is None or len(s.rewards) < 2]
    if short:
        s = short[0]
        k = 0 if s.rewards is None else len(s.rewards)
        raise ValueError(
            f"{strategy}: {s.where or s.id} has {k} reward(s); the variance of one answer is always 0, so every "
            f"record would be dropped ({len(short)} of {len(stats)} records have k < 2). Sample k >= 2 answers "
            "per record: verl-video select DATA_CONFIG --model M -k 8")


@register_strategy("variance")
def variance(stats: list[RecordStats], threshold: float = 0.0, top: int | None = None) -> Selection:
    """Temporal-R1: keep records whose k rewards vary (variance > threshold), or the `top` N by variance."""
    require_k(stats, "variance")
    usable, unparsed = _split_unparsed(stats)
    dropped = {ALL_UNPARSED: unparsed}
    varying = [s for s in usable if s.reward_var > threshold]
    dropped[ZERO_VARIANCE] = [s for s in usable if s.reward_var <= threshold]
    kept = varying
    if top is not None and int(top) < len(varying):
        order = sorted(range(len(varying)), key=lambda i: (-varying[i].reward_var, i))
        chosen = set(order[: int(top)])
        kept = [s for i, s in enumerate(varying) if i in chosen]
        dropped[BELOW_TOP] = [s for i, s in enumerate(varying) if i not in chosen]
    return Selection(kept, {k: v for k, v in dropped.items() if v or k == ZERO_VARIANCE})
