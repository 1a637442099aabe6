"""Grounding metrics from per-sample IoUs: R1@m, mIoU, parse-failure rate (the lowest layer: imports nothing of ours).

The one place these numbers are computed: `verl-video score`, `verl-video eval`, the lmms-eval
tasks and verl's validation during training (through `per_sample_metrics`) all call it.

Conventions differ between published systems, so they are parameters (`Convention`) and are
printed with every table (`Convention.describe`):
- threshold test: `>=` (default, most systems) or strict `>` (Time-R1's evaluation);
- denominator: every sample, unparseable answers counting IoU 0 (default), or only the parsed ones
  (what dropping failed samples amounts to).
IoUs are compared as computed, without a tolerance, as the seed systems do: an IoU that is 0.5 in
exact arithmetic may come out as 0.49999999999999994 in floating point and then misses R1@0.5.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)


@functools.lru_cache(maxsize=256)  # rewards ask for the same few keys for every row
def recall_key(threshold: float) -> str:
    """The metric name of R1 at one IoU threshold, e.g. `r1@0.5`."""
    return f"r1@{threshold:g}"


@dataclass(frozen=True)
class Convention:
    """How per-sample IoUs become R1@m and mIoU."""

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    strict: bool = False  # `iou > m` instead of `iou >= m`
    drop_unparsed: bool = False  # leave unparseable answers out of the denominator

    def __post_init__(self) -> None:
        if not self.thresholds or any(not 0.0 <= m <= 1.0 for m in self.thresholds):
            raise ValueError(f"IoU thresholds must be in [0, 1], got {self.thresholds!r}")

    def hit(self, iou: float, threshold: float) -> bool:
        """Whether one IoU counts as a hit at `threshold` under this convention."""
        return iou > threshold if self.strict else iou >= threshold

    def describe(self) -> str:
        """One line naming the convention, printed with every set of numbers."""
        test = ">" if self.strict else ">="
        denominator = "parsed answers only" if self.drop_unparsed else "all samples (unparseable = IoU 0)"
        ms = ", ".join(f"{m:g}" for m in self.thresholds)
        return f"R1@m: IoU {test} m for m in {{{ms}}}; denominator: {denominator}"

    def to_json(self) -> dict:
        """The convention as a JSON object, stored beside the numbers it produced."""
        return {"thresholds": list(self.thresholds), "iou_test": ">" if self.strict else ">=",
                "drop_unparsed": self.drop_unparsed}


DEFAULT_CONVENTION = Convention()


def summarize(ious: Sequence[float], parsed: Sequence[bool], convention: Convention = DEFAULT_CONVENTION) -> dict:
    """Count, R1@m and mIoU (percent), parse failures (count and percent of all samples)."""
    if len(ious) != len(parsed):
        raise ValueError(f"{len(ious)} IoUs but {len(parsed)} parse flags")
    failures = sum(1 for ok in parsed if not ok)
    scored = [iou if ok else 0.0 for iou, ok in zip(ious, parsed)
              if ok or not convention.drop_unparsed]
    n = len(scored)
    result: dict = {"count": len(ious), "scored": n}
    for m in convention.thresholds:
        result[recall_key(m)] = 100.0 * sum(convention.hit(iou, m) for iou in scored) / n if n else 0.0
    result["miou"] = 100.0 * sum(scored) / n if n else 0.0
    result["parse_failures"] = failures
    result["parse_failure_rate"] = 100.0 * failures / len(ious) if ious else 0.0
    return result


def per_sample_metrics(iou: float, parsed: bool, convention: Convention = DEFAULT_CONVENTION) -> dict[str, float]:
    """Per-sample values whose means are mIoU, parse rate and R1@m (fractions), for verl's validation.

    verl averages every numeric per-sample key of the reward's extra info per data source, so
    emitting these keys yields `val-aux/<source>/iou/mean@1` (mIoU), `.../parse_ok/mean@1` and
    `.../r1@0.5/mean@1` (R1@0.5) with the same convention as `verl-video score`.
    """
    parsed = bool(parsed)
    iou = float(iou) if parsed else 0.0
    values = {"iou": iou, "parse_ok": float(parsed)}
    strict = convention.strict
    for m in convention.thresholds:
        values[recall_key(m)] = float(parsed and (iou > m if strict else iou >= m))
    return values


def metric_names(convention: Convention = DEFAULT_CONVENTION) -> list[str]:
    """The headline metric names of `summarize`, in table order."""
    return [recall_key(m) for m in convention.thresholds] + ["miou", "parse_failure_rate", "count"]
