"""A PNG of one training run: greedy validation against the warm start and the video-blind baseline, and the
training reward and sampled IoU per step.

The numbers drawn travel inside the PNG as a text chunk (`SERIES_KEY`, JSON: `series` maps a metric name to its
[[step, value], ...] as plotted, `lines` the horizontal lines' values), so what the picture shows can be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

from verl_video.evaluation.plots import _pyplot
from verl_video.tools.summarize import RunMetrics, grounding_sources, warm_start

SERIES_KEY = "verl-video:series"
# Steps in the trailing mean drawn over each noisy training curve.
ROLLING = 5
WARM_START = "warm start (step-0 validation)"
BASELINE = "video-blind baseline"
COLORS = ("#4C72B0", "#C44E52", "#55A868", "#8172B2", "#CCB974", "#64B5CD")


class NothingToPlot(ValueError):
    """A run with neither greedy validation nor training reward in its metrics."""


def rolling_mean(values: list[float], size: int) -> list[float]:
    """Trailing mean of up to `size` values at each position."""
    means = []
    for end in range(1, len(values) + 1):
        window = values[max(0, end - size) : end]
        means.append(sum(window) / len(window))
    return means


def training_series(run: RunMetrics) -> dict[str, list[tuple[int, float]]]:
    """The training reward and each grounding source's sampled IoU per step, keyed by their metric names."""
    keys = ["critic/score/mean"] + [f"reward/{source}/iou" for source in grounding_sources(run, "reward/", "")]
    return {key: run.series(key) for key in keys if run.series(key)}


def _annotated(ax, points: list[tuple[int, float]], label: str, color: str, style: str) -> None:
    ax.plot([s for s, _ in points], [v for _, v in points], style, color=color, label=label)
    for step, value in points:
        ax.annotate(f"{value:.3f}", (step, value), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=7, color=color)


def _validation_panel(ax, run: RunMetrics, sources: list[str], baseline: float | None, drawn: dict, lines: dict) -> None:
    for k, source in enumerate(sources):
        color, name = COLORS[k % len(COLORS)], (f" {source}" if len(sources) > 1 else "")
        for metric, label, style in (("iou", "mIoU", "o-"), ("r1@0.5", "R1@0.5", "s-.")):
            key = f"val-aux/{source}/{metric}/mean@1"
            if run.series(key):
                drawn[key] = run.series(key)
                _annotated(ax, drawn[key], f"{label}{name}", color, style)
        start = warm_start(run, source)
        if start is not None:
            ax.axhline(start, color=color, linestyle="--", linewidth=1, label=f"{WARM_START}{name} {start:.3f}")
            lines[f"{WARM_START}{name}"] = start
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle=":", linewidth=1.2, label=f"{BASELINE} {baseline:.3f}")
        lines[BASELINE] = baseline
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy validation")


def _training_panel(ax, training: dict[str, list[tuple[int, float]]], drawn: dict) -> None:
    for k, (key, points) in enumerate(training.items()):
        color, name = COLORS[(k + 2) % len(COLORS)], "reward" if key == "critic/score/mean" else key
        steps = [s for s, _ in points]
        smooth = list(zip(steps, rolling_mean([v for _, v in points], ROLLING)))
        ax.plot(steps, [v for _, v in points], color=color, linewidth=0.7, alpha=0.45, label=f"{name} per step")
        ax.plot(steps, [v for _, v in smooth], color=color, linewidth=2, label=f"{name}, {ROLLING}-step mean")
        drawn[key], drawn[f"{key} ({ROLLING}-step mean)"] = points, smooth
    ax.set_ylabel("training rollouts (sampled)")


def plot_run(run: RunMetrics, out: Path, baseline: float | None, title: str) -> Path:
    """Draw the run's validation and training panels into the PNG `out` (raises NothingToPlot when both are empty)."""
    sources, training = grounding_sources(run, "val-aux/", "/mean@1"), training_series(run)
    if not sources and not training:
        raise NothingToPlot("no greedy validation (val-aux/<source>/iou/mean@1) and no training reward "
                            "(critic/score/mean) in the metrics")
    plt = _pyplot()
    panels = int(bool(sources)) + int(bool(training))
    fig, grid = plt.subplots(panels, 1, figsize=(10, 3.8 * panels), sharex=True, squeeze=False)
    axes = [row[0] for row in grid]
    drawn: dict[str, list[tuple[int, float]]] = {}
    lines: dict[str, float] = {}
    if sources:
        _validation_panel(axes[0], run, sources, baseline, drawn, lines)
    if training:
        _training_panel(axes[-1], training, drawn)
    for ax in axes:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    axes[0].set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"series": {k: [list(p) for p in v] for k, v in drawn.items()}, "lines": lines})
    fig.savefig(out, dpi=110, metadata={SERIES_KEY: payload})
    plt.close(fig)
    return out
