"""Scores verl rows: picks each row's composite reward and returns the score with its metrics.

Which composite scores a row is decided here alone (`composite_for`, docs/settings.md), first match wins:
1. `extra_info.reward_preset`: the row's data_config entry's `reward_preset`, when it names a known preset;
2. the run's `task_presets[task]` (reward.reward_kwargs.task_presets);
3. TVG rows (`extra_info.task` absent or "tvg"): the inline `components`, else the run's `preset` option;
4. other tasks: the task's `default_preset` (registered with the task), else the preset named like the task.
Rows carry only the entry's preset: the task's default is applied here, after the run's options.

Every row returns the same keys (verl concatenates them across the batch): `score`, `parse_ok`, `iou`
(the task's localisation quality), `parse_<status>` for each failure status, and every component key of
every known preset. Each registered task's metrics come as `<task>/<metric>` (verl_video/tasks/ registers
them). Each component key also has `<key>/errors`, `<key>/nan` and `<key>/clamped` (1 when that component
raised, returned nan or inf, or returned a value outside its declared bounds for this response); the trainer
sums them per step. A row computes its own composite's components and its own task's metrics; the keys of
other composites and tasks read nan. The per-source means skip nan and the trainer drops a validation mean
of no sample, so a data source logs only its own task's metrics (a grounding set shows no `box_iou` at 0.0)
and a box IoU never enters a grounding mean.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from verl_video.rewards.grounding_metrics import per_sample_metrics

from .components import answer_status, overlap_metrics
from .composite import FAILURE_KINDS, Composite, load_presets, to_plain
from .parser import OK, STATUSES
from .registry import FUNCTION_REFERENCE, load_modules
from .sample import Sample, row_task

logger = logging.getLogger("verl_video.rewards")

DEFAULT_PRESET = "default"
_FAILURES = tuple(status for status in STATUSES if status != OK)
# Each row sets exactly one of these to 1 (none when its answer parsed): the zeros come with the blank row.
_FAILURE_KEYS = {status: f"parse_{status}" for status in _FAILURES}
# iou, parse_ok and r1@m come from evaluation's per-sample metrics, so validation during training reports
# mIoU, parse rate and R1@m exactly as `verl-video score` computes them.
# The options `reward.reward_kwargs` (and the custom reward function's reward_kwargs) accept.
OPTIONS = ("preset", "components", "task_presets", "presets_file", "strictness", "parser", "modules")
DIAGNOSTIC_KEYS = ("score", *per_sample_metrics(0.0, False), *(f"parse_{status}" for status in _FAILURES))


# Per-task evaluation metrics of one scored row, by task name: (metric names, fn(sample) -> {name: value}).
# Filled by the task registry (a higher layer) when tasks are registered; user task files register too.
ROW_METRICS: dict[str, tuple[tuple[str, ...], Callable[[Sample], Mapping[str, float]]]] = {}
# Each registered task's own default preset (its `default_preset`), by task name; filled like ROW_METRICS.
TASK_DEFAULT_PRESETS: dict[str, str] = {}


def register_row_metrics(task: str, names: Iterable[str], fn: Callable[[Sample], Mapping[str, float]]) -> None:
    """Emit `<task>/<name>` for every scored row (nan for rows of other tasks)."""
    ROW_METRICS[task] = (tuple(names), fn)


def register_default_preset(task: str, preset: str | None) -> None:
    """The preset scoring `task`'s rows when neither the data_config entry nor the run's options name one."""
    if preset:
        TASK_DEFAULT_PRESETS[task] = preset
    else:
        TASK_DEFAULT_PRESETS.pop(task, None)


class RewardScorer:
    """Turns (data_source, response, ground_truth, extra_info) into verl's score dict."""

    def __init__(
        self,
        preset: str = DEFAULT_PRESET,
        components: Any = None,
        task_presets: Mapping[str, str] | None = None,
        presets_file: str | None = None,
        strictness: str | None = None,
        parser: Mapping[str, Any] | None = None,
        modules: Iterable[str] | str | None = None,
    ) -> None:
        load_modules(to_plain(modules), named_in="reward.reward_kwargs.modules")
        presets = load_presets()
        if presets_file:
            presets.update(load_presets(presets_file))
        if components is not None:
            presets["inline"] = Composite.from_config("inline", components)
            preset = "inline"
        if preset not in presets and FUNCTION_REFERENCE.match(preset):
            # `preset=path/to/file.py:compute_score`: verl's compute_score function alone is the reward.
            presets[preset] = Composite.from_config(preset, [preset])
        if preset not in presets:
            raise ValueError(f"unknown reward preset {preset!r}; known: {', '.join(sorted(presets))}")
        parser = to_plain(parser)
        self.presets = {name: c.override(strictness, parser) for name, c in presets.items()}
        self.preset = preset
        self.task_presets = dict(to_plain(task_presets) or {})
        for task, name in self.task_presets.items():
            if name not in self.presets:
                raise ValueError(f"task_presets[{task!r}] = {name!r} is not a known preset")
        component_keys = tuple(dict.fromkeys(key for c in self.presets.values() for key in c.keys))
        failure_keys = tuple(f"{key}/{kind}" for key in component_keys for kind in FAILURE_KINDS)
        # Per task: (metric names, fn, the `<task>/<name>` keys), the keys spelt once, not per row.
        self.task_metrics = {
            task: (names, fn, tuple(f"{task}/{name}" for name in names)) for task, (names, fn) in ROW_METRICS.items()
        }
        task_keys = tuple(key for _, _, keys in self.task_metrics.values() for key in keys)
        self.keys = tuple(dict.fromkeys(DIAGNOSTIC_KEYS + component_keys + failure_keys + task_keys))
        # Keys a row may not own: nan until its composite or task sets them (diagnostics are every row's).
        owned = set(DIAGNOSTIC_KEYS)
        self._blank = {key: 0.0 if key in owned else math.nan for key in self.keys}
        # Per composite name, the blank row it starts from (one dict copy): its failure flags read 0.
        self._blanks: dict[str, dict[str, float]] = {}
        self._warned: set[str] = set()

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None) -> RewardScorer:
        """Build from a config mapping such as `reward.reward_kwargs`; an unknown key is an error naming the valid ones."""
        kwargs = dict(to_plain(kwargs) or {})
        unknown = sorted(set(kwargs) - set(OPTIONS), key=str)
        if unknown:
            # A misspelt option (say `presets` for `preset`) would otherwise train with the default reward.
            raise ValueError(
                f"reward.reward_kwargs: unknown option(s) {', '.join(map(repr, unknown))}; valid: {', '.join(OPTIONS)}"
            )
        return cls(**{key: kwargs[key] for key in OPTIONS if kwargs.get(key) is not None})

    def composite_for(self, ground_truth: Any, extra_info: Mapping) -> Composite:
        """The composite that scores this row (see the module docstring)."""
        wanted = extra_info.get("reward_preset")
        if wanted:
            wanted = str(wanted)
            if wanted in self.presets:
                return self.presets[wanted]
            self._warn_once(f"unknown reward_preset {wanted!r}; using the task's preset")
        task = row_task(ground_truth, extra_info)
        if task in self.task_presets:
            return self.presets[self.task_presets[task]]
        if task == "tvg":
            return self.presets[self.preset]
        name = TASK_DEFAULT_PRESETS.get(task, task)
        if name in self.presets:
            return self.presets[name]
        self._warn_once(f"no reward preset for task {task!r}; scoring it as tvg")
        return self.presets[self.preset]

    def __call__(self, data_source: Any, response: str, ground_truth: Any, extra_info: Any = None) -> dict[str, float]:
        """`{"score": total, key: value, ...}` with the same keys for every row; never raises on the response."""
        extra_info = extra_info if isinstance(extra_info, Mapping) else {}
        composite = self.composite_for(ground_truth, extra_info)
        sample = Sample(response, ground_truth, extra_info, str(data_source), composite.parser)
        total, values, failures = composite.evaluate(sample)
        status = answer_status(sample)
        result = self._blank_for(composite).copy()
        result.update(overlap_metrics(sample))
        if status in _FAILURE_KEYS:
            result[_FAILURE_KEYS[status]] = 1.0
        result.update(values)
        result.update((f"{key}/{kind}", 1.0) for key, kind in failures.items())
        result.update(self._task_metrics(sample))
        result["score"] = total
        return result

    def _blank_for(self, composite: Composite) -> dict[str, float]:
        """The row a composite's scores start from: its components' failure flags 0, other owned keys nan."""
        blank = self._blanks.get(composite.name)
        if blank is None:
            own = {f"{key}/{kind}": 0.0 for key in composite.keys for kind in FAILURE_KINDS}
            blank = self._blanks[composite.name] = {**self._blank, **own}
        return blank

    def _task_metrics(self, sample: Sample) -> dict[str, float]:
        own = self.task_metrics.get(sample.task)
        if own is None:
            return {}
        names, fn, keys = own
        try:
            computed = fn(sample)
        except Exception as exc:  # a metric bug must not kill a training step; it reads nan and is logged once
            self._warn_once(f"task {sample.task!r} metrics raised {type(exc).__name__}: {exc}")
            return {}
        return {key: float(computed[name]) for name, key in zip(names, keys) if name in computed}

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning("verl-video reward: %s", message)
