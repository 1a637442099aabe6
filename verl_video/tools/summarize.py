"""`verl-video summarize RUN_DIR`: what a training run did, read from verl's file logger.

Reads `metrics.jsonl` (verl's `file` logger, one JSON object per step) and, when present, `memory.json`
(from `verl-video monitor-memory`) and the greedy validation dumps in `validation/`. Prints reward and IoU
at the start and end of training and of validation, the warm start beside the video-blind baseline, what
went wrong with inputs and rewards (bad videos, reward functions that failed), the time per step and its
split, peak memory, and where the outputs are. Then it draws the run into `RUN_DIR/summary.png`
(verl_video/tools/run_plot.py; `--plot PATH` elsewhere, `--no-plot` not at all) and ends with `plot: <path>`.
"""

from __future__ import annotations

import argparse
import json
import sys
import statistics
from dataclasses import dataclass
from pathlib import Path

from verl_video.annotations.records import DEFAULT_TASK
from verl_video.evaluation.localisation import Localisation, localisation
from verl_video.rewards.composite import FAILURE_KINDS
from verl_video.rewards.parser import parse_interval
from verl_video.tasks import TASKS
from verl_video.verl_adapter.run_record import find_record

# verl's timing keys, in the order a step runs them.
STEP_PHASES = (
    ("gen", "generation"),
    ("reward", "reward"),
    ("old_log_prob", "log-prob (actor)"),
    ("ref", "log-prob (reference)"),
    ("adv", "advantages"),
    ("update_actor", "update"),
    ("update_weights", "weight sync"),
)


# Running totals logged each step (verl_video/verl_adapter/step_metrics.py); the last value is the run's count.
DATA_TOTALS = (
    ("data/unreadable_at_start", "videos unreadable at start-up, dropped"),
    ("data/replaced_total", "samples replaced in training, video missing or unreadable"),
    ("data/decode_failed_total", "samples whose video failed to decode after start-up, masked out of training"),
)


@dataclass
class RunMetrics:
    """Per-step metric dicts of one run, in step order."""

    steps: list[tuple[int, dict[str, float]]]

    @classmethod
    def load(cls, path: Path) -> "RunMetrics":
        """Parse a verl file-logger JSONL; a torn last line (run killed mid-write) is ignored."""
        steps = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            steps.append((int(record["step"]), record["data"]))
        return cls(sorted(steps, key=lambda item: item[0]))

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) for every step that logged `key`."""
        return [(step, float(data[key])) for step, data in self.steps if key in data]

    def keys_matching(self, prefix: str, suffix: str) -> list[str]:
        """Metric names with this prefix and suffix, e.g. per-data-source validation keys."""
        names = {key for _, data in self.steps for key in data}
        return sorted(k for k in names if k.startswith(prefix) and k.endswith(suffix))


def window_mean(values: list[float], head: bool, size: int) -> float | None:
    """Mean of the first or last `size` values (None when there are none)."""
    chosen = values[:size] if head else values[-size:]
    return statistics.fmean(chosen) if chosen else None


# Greedy validation metrics per data source, task metric first; the format reward is reported apart from it.
TASK_METRICS = (("iou", "mIoU"), ("r1@0.3", "R1@0.3"), ("r1@0.5", "R1@0.5"), ("r1@0.7", "R1@0.7"))
# A fall smaller than this is within the noise of a few dozen validation videos.
FALL_TOLERANCE = 0.01


def grounding_sources(run: RunMetrics, prefix: str, suffix: str) -> list[str]:
    """Data sources whose rows are grounding, each once, from the keys `<prefix><source>/iou<suffix>`.

    Every row logs `iou` (its task's overlap: 0 for a bare choice), and grounding rows log it again as the
    task metric `tvg/iou`: a source is named once, and a source that logs another task's metrics is not
    a grounding source.
    """
    found = [key[len(prefix) : -len(f"/iou{suffix}")] for key in run.keys_matching(prefix, f"/iou{suffix}")]
    names = {key for _, data in run.steps for key in data}
    sources = []
    for name in found:
        owner, _, task = name.rpartition("/")
        if task == DEFAULT_TASK and owner in found:
            continue  # the task metric's copy of its source's `iou`
        if not any(key.startswith(f"{prefix}{name}/{other}/") for key in names for other in TASKS if other != DEFAULT_TASK):
            sources.append(name)
    return sources


def warm_start(run: RunMetrics, source: str) -> float | None:
    """The source's validation mIoU at step 0 (the model before GRPO), None when the run did not validate then."""
    series = run.series(f"val-aux/{source}/iou/mean@1")
    return series[0][1] if series and series[0][0] == 0 else None


def task_metric_lines(run: RunMetrics, baseline: float | None = None) -> list[str]:
    """Validation before/after per data source: the task metric, the warm start beside the video-blind baseline,
    then format, then a warning if the task got worse."""
    lines = []
    sources = grounding_sources(run, "val-aux/", "/mean@1")
    for source in sources:
        iou_key = f"val-aux/{source}/iou/mean@1"
        lines.append(f"validation on {source} (greedy), the task metric:")
        for name, label in TASK_METRICS:
            series = run.series(f"val-aux/{source}/{name}/mean@1")
            if series:
                (first_step, first), (last_step, last) = series[0], series[-1]
                lines.append(f"  {label:<7} {first:.3f} (step {first_step}) -> {last:.3f} (step {last_step})  {last - first:+.3f}")
        start = warm_start(run, source)
        if start is not None and baseline is not None:
            # The dumps pool every grounding source, so with several the baseline is theirs together.
            pooled = " (all grounding sources)" if len(sources) > 1 else ""
            lines.append(f"  warm start (step 0) mIoU {start:.3f}, video-blind baseline{pooled} {baseline:.3f}, "
                         f"final {run.series(iou_key)[-1][1]:.3f}")
        fmt = run.series(f"val-aux/{source}/format/mean@1")
        if fmt:
            lines.append(f"  format reward, apart: {fmt[0][1]:.3f} -> {fmt[-1][1]:.3f}")
        iou = run.series(iou_key)
        if len(iou) > 1 and iou[-1][1] < iou[0][1] - FALL_TOLERANCE:
            lines.append(
                f"  WARNING: validation IoU on {source} FELL during training ({iou[0][1]:.3f} -> {iou[-1][1]:.3f}): "
                "the model localises worse than before GRPO, whatever the reward says"
            )
    return lines


def other_task_lines(run: RunMetrics) -> list[str]:
    """Validation before/after of the other tasks' metrics (accuracy, evidence IoU, box IoU), one line per source."""
    lines = []
    for task_name, task in TASKS.items():
        if task_name == DEFAULT_TASK:
            continue
        by_source: dict[str, list[str]] = {}
        for metric in task.metric_keys:
            suffix = f"/{task_name}/{metric}/mean@1"
            for key in run.keys_matching("val-aux/", suffix):
                (_, first), (_, last) = run.series(key)[0], run.series(key)[-1]
                by_source.setdefault(key[len("val-aux/") : -len(suffix)], []).append(f"{metric} {first:.3f} -> {last:.3f}")
        lines += [f"validation on {source} (greedy), {task_name}: {', '.join(parts)}" for source, parts in by_source.items()]
    return lines


# Ground-truth keys of a plain grounding record (tasks/grounding.py); rows of other tasks are left out.
GROUNDING_KEYS = {"timestamps", "duration"}


def read_localisation(dump: Path) -> Localisation | None:
    """Localisation of the greedy grounding answers in one validation dump (verl's `<step>.jsonl`)."""
    preds, truths, durations = [], [], []
    for line in dump.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of a killed run
        gts = row.get("gts")
        if not isinstance(gts, dict) or set(gts) != GROUNDING_KEYS or not gts["timestamps"] or not gts["duration"]:
            continue
        parsed = parse_interval(str(row.get("output", "")), gts["duration"])
        if parsed.ok:
            preds.append(parsed.interval)
            truths.append(gts["timestamps"][0])
            durations.append(float(gts["duration"]))
    return localisation(preds, truths, durations) if preds else None


@dataclass(frozen=True)
class ValidationDumps:
    """Localisation of a run's first and last validation dumps, with their steps."""

    first_step: int
    first: Localisation
    last_step: int
    last: Localisation


def read_dumps(validation_dir: Path) -> ValidationDumps | None:
    """The first and last greedy validation dumps of a run (None unless both hold grounding answers)."""
    # verl names each dump by its step.
    dumps = sorted((p for p in validation_dir.glob("*.jsonl") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not dumps:
        return None
    first, last = read_localisation(dumps[0]), read_localisation(dumps[-1])
    if first is None or last is None:
        return None
    return ValidationDumps(int(dumps[0].stem), first, int(dumps[-1].stem), last)


def localisation_lines(dumps: ValidationDumps | None) -> list[str]:
    """First vs last validation: distinct answers, centre correlation and the video-blind baseline, with a note."""
    if dumps is None:
        return []
    first, last = dumps.first, dumps.last

    def corr(value: float | None) -> str:
        return "n/a (one answer)" if value is None else f"{value:+.2f}"

    lines = [
        f"localisation, greedy grounding answers (validation step {dumps.first_step} -> {dumps.last_step}):",
        f"  distinct answers:            {first.distinct}/{first.n} -> {last.distinct}/{last.n}",
        f"  centre correlation w/ truth: {corr(first.centre_corr)} -> {corr(last.centre_corr)}",
        f"  video-blind baseline:        mIoU {last.blind_miou:.3f} (one interval, "
        f"{last.blind_interval[0]:.2f}-{last.blind_interval[1]:.2f} of the duration, for every video)",
    ]
    if last.miou <= last.blind_miou + FALL_TOLERANCE:
        lines.append(
            f"  NOTE: the final answers (mIoU {last.miou:.3f} over parsed ones) do not beat one interval for every "
            "video: a gain in mIoU here is the dataset's prior, not evidence that the model localises"
        )
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class SummaryError(ValueError):
    """A run folder that cannot be summarised; the message says what was looked for."""


def find_metrics(path: Path) -> Path:
    """The metrics file of a run: `path` itself, or metrics.jsonl in the run folder or its checkpoints/."""
    if path.is_file():
        return path
    candidates = [path / "metrics.jsonl", path / "checkpoints" / "metrics.jsonl"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not path.exists():
        raise SummaryError(f"{path}: no such run folder or metrics file")
    raise SummaryError(
        f"{path}: no metrics.jsonl here or in checkpoints/ (the driver writes it into trainer.default_local_dir when "
        "trainer.logger includes file; VERL_FILE_LOGGER_PATH puts it elsewhere: pass that file)"
    )


@dataclass(frozen=True)
class RunFolder:
    """A run's folder, its metrics and its validation dumps, read once for the text and the plot."""

    path: Path
    metrics_path: Path
    run: RunMetrics
    dumps: ValidationDumps | None

    @classmethod
    def open(cls, path: Path) -> "RunFolder":
        """Read the run in `path` (a run folder or its metrics file)."""
        metrics_path = find_metrics(path)
        # The outputs (train.log, memory.json, validation/) sit in the folder given, the metrics maybe one below.
        folder = path if path.is_dir() else metrics_path.parent
        return cls(folder, metrics_path, RunMetrics.load(metrics_path), read_dumps(folder / "validation"))

    @property
    def baseline(self) -> float | None:
        """The video-blind baseline mIoU on the last validation dump's videos (None without dumps)."""
        return self.dumps.last.blind_miou if self.dumps else None


def summarize(run_dir: Path, window: int = 5) -> str:
    """Human-readable summary of a run directory."""
    return summary_text(RunFolder.open(run_dir), window)


def summary_text(folder: RunFolder, window: int = 5) -> str:
    """Human-readable summary of a run already read."""
    run_dir, metrics_path, run = folder.path, folder.metrics_path, folder.run
    lines = [f"run: {run_dir}", f"steps logged: {len(run.steps)}"]

    record = find_record(run_dir)
    if record:
        lines.append(
            f"seed: {record.get('seed')}  config fingerprint: {record.get('config_fingerprint')}  "
            f"data fingerprint: {record.get('data_fingerprint')}"
        )
    lines += task_metric_lines(run, folder.baseline) + other_task_lines(run)
    lines += localisation_lines(folder.dumps)

    rewards = [v for _, v in run.series("critic/score/mean")]
    window = max(1, min(window, len(rewards) // 2 or 1))
    lines.append(f"training rollouts (sampled at the rollout temperature), mean of first {window} -> last {window} steps:")
    lines.append(f"  reward: {_fmt(window_mean(rewards, True, window))} -> {_fmt(window_mean(rewards, False, window))}")
    iou_keys = [f"reward/{source}/iou" for source in grounding_sources(run, "reward/", "")]
    for key in iou_keys + run.keys_matching("reward/", "/format"):
        values = [v for _, v in run.series(key)]
        lines.append(f"  {key}: {_fmt(window_mean(values, True, window))} -> {_fmt(window_mean(values, False, window))}")

    lines.extend(problem_lines(run))

    # The first step carries start-up (compilation, caches); leave it out of the per-step costs.
    timed = [data for step, data in run.steps if "timing_s/step" in data][1:] or [
        data for _, data in run.steps if "timing_s/step" in data
    ]
    if timed:
        per_step = statistics.fmean(d["timing_s/step"] for d in timed)
        parts = [
            f"{label} {statistics.fmean(d.get(f'timing_s/{key}', 0.0) for d in timed):.2f}"
            for key, label in STEP_PHASES
            if any(f"timing_s/{key}" in d for d in timed)
        ]
        lines.append(f"seconds per step (mean of {len(timed)}): {per_step:.2f} = " + ", ".join(parts) + ", other")

    memory_path = run_dir / "memory.json"
    if memory_path.exists():
        memory = json.loads(memory_path.read_text())
        lines.append(
            f"peak memory: {memory['peak_gib']:.2f} GiB in use on the machine "
            f"({memory['peak_above_baseline_gib']:.2f} GiB above the start), wall {memory['wall_s']:.0f} s"
        )
    lines.append("outputs:")
    lines.append(f"  {metrics_path}  (metrics per step)")
    for name, what in (
        ("train.log", "console log"),
        ("checkpoints", "checkpoints"),
        ("validation", "validation generations"),
    ):
        if (run_dir / name).exists():
            lines.append(f"  {run_dir / name}  ({what})")
    return "\n".join(lines)


def problem_lines(run: RunMetrics) -> list[str]:
    """Bad-input totals (always, so a clean run says 0) and reward failures summed over the steps (when any)."""
    lines = []
    for key, label in DATA_TOTALS:
        series = run.series(key)
        if series:
            lines.append(f"{label} ({key}): {int(series[-1][1])}")
    silent = [step for step, value in run.series("groups/zero_variance_fraction") if value >= 1.0]
    if silent:
        shown = ", ".join(str(step) for step in silent[:10]) + (", ..." if len(silent) > 10 else "")
        lines.append(f"steps that could not learn (every group's rewards equal): {len(silent)} of {len(run.steps)} "
                     f"(steps {shown}); see the warning in the log for likely causes")
    for kind in FAILURE_KINDS:
        for key in run.keys_matching("reward/", f"/{kind}"):
            total = sum(value for _, value in run.series(key))
            if total:
                lines.append(f"reward failures {key}: {int(total)} responses over the run")
    return lines


def plot_line(folder: RunFolder, out: Path) -> str:
    """Draw the run into the PNG `out`; the line saying where it is, or why there is none."""
    # Imported here: run_plot reads RunMetrics from this module.
    from verl_video.tools.run_plot import NothingToPlot, plot_run

    try:
        path = plot_run(folder.run, out, folder.baseline, f"{folder.path.resolve().name}: validation and training")
    except NothingToPlot as exc:
        return f"plot: none written, {exc}"
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        return "plot: skipped, matplotlib is not installed (pip install matplotlib)"
    return f"plot: {path.resolve()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run directory (or its metrics.jsonl)")
    parser.add_argument("--window", type=int, default=5, help="steps averaged at the start and at the end")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--plot", type=Path, metavar="PATH", help="where to write the PNG (default RUN_DIR/summary.png)")
    where.add_argument("--no-plot", action="store_true", help="print the summary only, no PNG")


def run(args: argparse.Namespace) -> int:
    """`verl-video summarize`: print the summary, then write the PNG and print its path; a folder without a run
    is one line on stderr, exit 2."""
    try:
        folder = RunFolder.open(args.run_dir)
        print(summary_text(folder, args.window))
    except (SummaryError, ValueError) as exc:
        print(f"verl-video summarize: {exc}", file=sys.stderr)
        return 2
    if not args.no_plot:
        print(plot_line(folder, args.plot or folder.path / "summary.png"))
    return 0
