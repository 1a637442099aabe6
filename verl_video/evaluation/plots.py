"""PNG plots of a score report: the IoU histogram and R1@m / mIoU per bucket of each breakdown; each other task's
metrics per source."""

from __future__ import annotations

import os
from collections.abc import Sequence


def _pyplot():
    # Imported lazily and headless: scoring must work without matplotlib or a display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_iou_histogram(ious: Sequence[float], parsed: Sequence[bool], path: str, title: str = "") -> str:
    """Histogram of per-sample IoU; unparseable answers drawn as their own bar at 0."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    scored = [iou for iou, ok in zip(ious, parsed) if ok]
    failures = len(ious) - len(scored)
    ax.hist(scored, bins=[i / 20 for i in range(21)], color="#4C72B0", edgecolor="white", label="parsed")
    if failures:
        ax.bar([-0.05], [failures], width=0.04, color="#C44E52", label="unparseable")
    ax.set_xlim(-0.08, 1.0)
    ax.set_xlabel("IoU with the best-matching ground-truth window")
    ax.set_ylabel("samples")
    ax.set_title(title or f"IoU histogram ({len(ious)} samples)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_bars(counts: dict[str, int], series: dict[str, list[float]], path: str, title: str, ylabel: str,
               ylim: tuple[float, float] | None) -> str:
    """Side-by-side bars of each series per group label, with the sample count on each label."""
    plt = _pyplot()
    labels = list(counts)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) * max(1, len(series) / 2) + 2), 3.8))
    width = 0.8 / max(1, len(series))
    colors = ("#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD")
    for k, (name, values) in enumerate(series.items()):
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar([i + offset for i in range(len(labels))], values, width, label=name, color=colors[k % len(colors)])
    ax.set_xticks(list(range(len(labels))))
    ax.set_xticklabels([f"{k}\n(n={counts[k]})" for k in labels], rotation=30 if len(labels) > 6 else 0,
                       fontsize=8, ha="right" if len(labels) > 6 else "center")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_breakdown(groups: dict[str, dict], recall_key: str, path: str, title: str) -> str:
    """Side-by-side bars of R1@m and mIoU per group label, with the sample count on each label."""
    series = {recall_key.upper(): [g[recall_key] for g in groups.values()],
              "mIoU": [g["miou"] for g in groups.values()]}
    return _plot_bars({k: g["count"] for k, g in groups.items()}, series, path, title, "%", (0, 100))


def plot_task_metrics(groups: dict[str, tuple[int, dict[str, float]]], path: str, title: str) -> str:
    """Bars of each of a task's metric means per group label (`groups`: label -> (count, means))."""
    names = list(dict.fromkeys(name for _, means in groups.values() for name in means))
    series = {name: [means.get(name, 0.0) for _, means in groups.values()] for name in names}
    values = [v for vs in series.values() for v in vs]
    # Rates and IoUs live in [0, 1]: a fixed axis makes plots comparable; a user task's other scales keep theirs.
    ylim = (0.0, 1.0) if values and all(0.0 <= v <= 1.0 for v in values) else None
    return _plot_bars({label: count for label, (count, _) in groups.items()}, series, path, title, "mean", ylim)


def plot_all(ious: Sequence[float], parsed: Sequence[bool], breakdowns: dict[str, dict[str, dict]],
             recall_key: str, out_dir: str) -> list[str]:
    """Write the histogram and one bar chart per breakdown into `out_dir`; return the paths."""
    paths = [plot_iou_histogram(ious, parsed, os.path.join(out_dir, "iou_hist.png"))]
    for name, groups in breakdowns.items():
        if groups:
            paths.append(plot_breakdown(groups, recall_key, os.path.join(out_dir, f"by_{name}.png"),
                                        f"{recall_key.upper()} and mIoU by {name}"))
    return paths
