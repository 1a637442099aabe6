"""PNG plots of a score report: the IoU histogram and R1@m / mIoU per bucket of each breakdown."""

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


def plot_breakdown(groups: dict[str, dict], recall_key: str, path: str, title: str) -> str:
    """Side-by-side bars of R1@m and mIoU per group label, with the sample count on each label."""
    plt = _pyplot()
    labels = list(groups)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 3.8))
    x = range(len(labels))
    width = 0.4
    ax.bar([i - width / 2 for i in x], [groups[k][recall_key] for k in labels], width, label=recall_key.upper(),
           color="#4C72B0")
    ax.bar([i + width / 2 for i in x], [groups[k]["miou"] for k in labels], width, label="mIoU", color="#55A868")
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"{k}\n(n={groups[k]['count']})" for k in labels], rotation=30 if len(labels) > 6 else 0,
                       fontsize=8, ha="right" if len(labels) > 6 else "center")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_all(ious: Sequence[float], parsed: Sequence[bool], breakdowns: dict[str, dict[str, dict]],
             recall_key: str, out_dir: str) -> list[str]:
    """Write the histogram and one bar chart per breakdown into `out_dir`; return the paths."""
    paths = [plot_iou_histogram(ious, parsed, os.path.join(out_dir, "iou_hist.png"))]
    for name, groups in breakdowns.items():
        if groups:
            paths.append(plot_breakdown(groups, recall_key, os.path.join(out_dir, f"by_{name}.png"),
                                        f"{recall_key.upper()} and mIoU by {name}"))
    return paths
