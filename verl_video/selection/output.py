"""What a selection writes: the selected annotations, a data_config that trains on them, and a report.

Output folder:
    annotations/<dataset>.jsonl   the kept records, canonical JSONL, one file per dataset
    data_config.yaml              one entry per dataset (its settings copied from the source data_config)
    selection.json / selection.md counts kept and dropped per reason, the strategy and its parameters
    selection_hist.png            the selection value (difficulty IoU or reward variance) before and after
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import yaml

from verl_video.annotations.data_config import DatasetEntry
from verl_video.selection.stats import RecordStats, canonical_record
from verl_video.selection.strategies import Selection

ANNOTATIONS = "annotations"
DATA_CONFIG = "data_config.yaml"
REPORT_JSON = "selection.json"
REPORT_MD = "selection.md"
HISTOGRAM = "selection_hist.png"


class EmptySelection(ValueError):
    """The strategy kept nothing: nothing is written."""


def selection_value(stats: RecordStats, strategy: str) -> float:
    """The number a report plots for a record: reward variance for `variance`, else the difficulty IoU."""
    if strategy == "variance" and stats.reward_var is not None:
        return stats.reward_var
    return stats.difficulty_iou


def _entry_yaml(entry: DatasetEntry | None, name: str, json_path: str, data_folder: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "json_path": json_path, "data_folder": data_folder,
                           "format": "canonical", "sampling_strategy": "all"}
    if entry is not None:
        for key in ("weight", "task", "prompt_template"):
            if getattr(entry, key) is not None:
                out[key] = getattr(entry, key)
        out.update(entry.budget_overrides)
    return out


def _dataset_record(stats: RecordStats) -> dict[str, Any]:
    record = canonical_record(stats)
    # A record id prefixed by eval (`dataset/id`) goes back to the id its own file gives it.
    if stats.dataset and str(record.get("id", "")).startswith(f"{stats.dataset}/"):
        record["id"] = str(record["id"])[len(stats.dataset) + 1:]
    return record


def write_selection(selection: Selection, all_stats: Sequence[RecordStats], out_dir: str, *, strategy: str,
                    params: dict[str, Any], source: str, entries: dict[str, DatasetEntry] | None = None,
                    data_folder: str | None = None, plots: bool = True) -> list[str]:
    """Write annotations, data_config, report and histogram; EmptySelection (nothing written) if none kept."""
    if not selection.kept:
        raise EmptySelection(f"strategy {strategy!r} kept none of the {len(all_stats)} records "
                             f"({_counts_text(selection)}); nothing written")
    entries = entries or {}
    os.makedirs(os.path.join(out_dir, ANNOTATIONS), exist_ok=True)
    by_dataset: dict[str, list[dict]] = {}
    for s in selection.kept:
        name = s.dataset or os.path.splitext(os.path.basename(source))[0]
        by_dataset.setdefault(name, []).append(_dataset_record(s))
    written, config_entries = [], []
    for name, records in by_dataset.items():
        rel = os.path.join(ANNOTATIONS, f"{name}.jsonl")
        path = os.path.join(out_dir, rel)
        with open(path, "w", encoding="utf-8") as f:
            for record in records:
                missing = [k for k in ("video", "query", "timestamps") if record.get(k) in (None, "")]
                if missing:
                    raise ValueError(f"{source}: record {record.get('id')!r} has no {', '.join(missing)}; "
                                     "pass --data DATA_CONFIG so the records come from the data")
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        written.append(path)
        entry = entries.get(name)
        folder = entry.data_folder if entry is not None else os.path.abspath(data_folder or os.path.dirname(source))
        config_entries.append(_entry_yaml(entry, name, rel, folder))
    config_path = os.path.join(out_dir, DATA_CONFIG)
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(f"# Written by `verl-video select` (strategy {strategy}) from {source}.\n")
        yaml.safe_dump({"datasets": config_entries}, f, sort_keys=False)
    written.append(config_path)
    report = selection_report(selection, all_stats, strategy=strategy, params=params, source=source)
    with open(os.path.join(out_dir, REPORT_JSON), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, REPORT_MD), "w", encoding="utf-8") as f:
        f.write(report_markdown(report))
    written += [os.path.join(out_dir, REPORT_JSON), os.path.join(out_dir, REPORT_MD)]
    if plots:
        written.append(plot_before_after([selection_value(s, strategy) for s in all_stats],
                                         [selection_value(s, strategy) for s in selection.kept],
                                         os.path.join(out_dir, HISTOGRAM), strategy))
    return written


def _counts_text(selection: Selection) -> str:
    return ", ".join(f"{k} {v}" for k, v in selection.counts().items())


def selection_report(selection: Selection, all_stats: Sequence[RecordStats], *, strategy: str,
                     params: dict[str, Any], source: str) -> dict[str, Any]:
    """Counts per reason plus the mean selection value before and after."""
    before = [selection_value(s, strategy) for s in all_stats]
    after = [selection_value(s, strategy) for s in selection.kept]
    return {"source": source, "strategy": strategy, "params": params, "records": len(all_stats),
            "counts": selection.counts(),
            "value": "reward_var" if strategy == "variance" else "difficulty_iou",
            "mean_before": sum(before) / len(before) if before else None,
            "mean_after": sum(after) / len(after) if after else None}


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a short markdown table."""
    lines = [f"# Selection: {report['strategy']} on {report['source']}", "",
             f"parameters: {json.dumps(report['params'])}", "", "| | records |", "|---|---|",
             f"| total | {report['records']} |"]
    lines += [f"| {reason} | {count} |" for reason, count in report["counts"].items()]
    lines += ["", f"mean {report['value']}: {report['mean_before']:.4f} before, "
                  f"{report['mean_after']:.4f} after" if report["mean_after"] is not None else ""]
    return "\n".join(lines) + "\n"


def plot_before_after(before: Sequence[float], after: Sequence[float], path: str, strategy: str) -> str:
    """Overlaid histograms of the selection value of all records and of the kept ones."""
    from verl_video.evaluation.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max([*before, *after, 1e-9])
    bins = [i / 20 for i in range(21)] if strategy != "variance" else [top * i / 20 for i in range(21)]
    ax.hist(before, bins=bins, color="#BBBBBB", edgecolor="white", label=f"all ({len(before)})")
    ax.hist(after, bins=bins, color="#4C72B0", edgecolor="white", alpha=0.8, label=f"kept ({len(after)})")
    ax.set_xlabel("reward variance over k answers" if strategy == "variance" else "IoU of the prediction (difficulty)")
    ax.set_ylabel("records")
    ax.set_title(f"selection '{strategy}': before and after")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

