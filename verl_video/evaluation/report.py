"""A score report: the numbers, their breakdowns and the settings that produced them, as JSON and markdown."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field

from verl_video.rewards.grounding_metrics import Convention, metric_names, recall_key
from verl_video.rewards.parser import ParserConfig

REPORT_JSON = "metrics.json"
REPORT_MD = "metrics.md"


@dataclass
class ScoreReport:
    """Everything `verl-video score` prints and writes."""

    source: str  # the predictions file
    convention: Convention
    parser: ParserConfig
    overall: dict
    breakdowns: dict[str, dict[str, dict]]
    statuses: Counter
    prefer: str = "response"
    settings: dict = field(default_factory=dict)  # the eval run's settings, when there was one
    ious: list[float] = field(default_factory=list)  # per sample, for the plots
    parsed: list[bool] = field(default_factory=list)
    # Means of what the answers saw (`score.trajectory_metrics`): visual tokens, a search eval's zoom/*.
    trajectory: dict = field(default_factory=dict)

    def conventions_text(self) -> list[str]:
        """Human-readable lines stating how the numbers were computed."""
        p = self.parser
        lines = [
            self.convention.describe(),
            f"parser: {p.match} match in the last <answer> block (fallback: {p.fallback}), "
            f"reversed pairs: {p.reversed}, clip to duration: {p.clip}, normalised values: {p.normalized}",
            f"graded field: '{self.prefer}' when a line has both 'response' and 'prediction'; "
            "a given 'prediction' is scored as written (not clipped)",
            "several ground-truth windows: a prediction is scored by its best-matching window",
        ]
        return lines

    def to_json(self) -> dict:
        """The report as a JSON object."""
        return {
            "predictions": self.source,
            "metrics": {**self.overall, **self.trajectory},
            "conventions": {**self.convention.to_json(), "parser": asdict(self.parser), "graded_field": self.prefer},
            "parse_status": dict(sorted(self.statuses.items())),
            "breakdowns": self.breakdowns,
            "settings": self.settings,
        }

    def to_markdown(self) -> str:
        """The headline table, the conventions, and one table per breakdown."""
        names = metric_names(self.convention)
        out = [f"# Temporal grounding scores: {os.path.basename(self.source)}", ""]
        out += _table("subset", {"all": self.overall}, names)
        if self.trajectory:
            out += ["", "Per answer: " + ", ".join(f"{k} {v:.2f}" for k, v in self.trajectory.items())]
        out += ["", "Conventions:"] + [f"- {line}" for line in self.conventions_text()]
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        out += [f"- parse status counts: {statuses}"]
        if self.settings:
            out += ["", "Run settings (complete in metrics.json):"]
            out += [f"- {key}: {_compact(value)}" for key, value in self.settings.items()]
        for name, groups in self.breakdowns.items():
            out += ["", f"## By {name}", ""] + _table(name, groups, names)
        return "\n".join(out) + "\n"

    def write(self, out_dir: str, plots: bool = True) -> list[str]:
        """Write metrics.json, metrics.md and (optionally) the PNG plots into `out_dir`."""
        os.makedirs(out_dir, exist_ok=True)
        paths = [os.path.join(out_dir, REPORT_JSON), os.path.join(out_dir, REPORT_MD)]
        _write_atomic(paths[0], json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        _write_atomic(paths[1], self.to_markdown())
        if plots:
            from verl_video.evaluation.plots import plot_all

            paths += plot_all(self.ious, self.parsed, self.breakdowns, self.headline_recall, out_dir)
        return paths

    @property
    def headline_recall(self) -> str:
        """The R1 key the plots show: R1@0.5 when computed, else the middle threshold."""
        thresholds = self.convention.thresholds
        return recall_key(0.5 if 0.5 in thresholds else thresholds[len(thresholds) // 2])


def _compact(value: object) -> str:
    # Prompt texts are long: the markdown names the templates, metrics.json keeps their text.
    if isinstance(value, dict) and value and all(isinstance(v, dict) and "user" in v for v in value.values()):
        value = {k: v.get("name") for k, v in value.items()}
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _header(name: str) -> str:
    if name.startswith("r1@"):
        return "R1@" + name[3:]
    return {"miou": "mIoU", "parse_failure_rate": "parse fail %", "count": "n"}.get(name, name)


def _fmt(name: str, value: object) -> str:
    if name in ("count", "parse_failures", "scored"):
        return str(value)
    return f"{value:.2f}"


def _table(first: str, rows: dict[str, dict], names: list[str]) -> list[str]:
    header = [first] + [_header(n) for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, values in rows.items():
        lines.append("| " + " | ".join([str(label)] + [_fmt(n, values[n]) for n in names]) + " |")
    return lines


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
