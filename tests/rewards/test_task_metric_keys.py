"""A data source logs only the metrics of its own task: no `box_iou` at 0.0 for a grounding-only set.

The scorer returns every key for every row (verl concatenates them); keys a row does not own read nan.
These tests run verl's own validation aggregation and the trainer's filter, and the training means, on
rows of two tasks, and compare with rows whose unowned component keys read 0 (the scorer before).
"""

from __future__ import annotations

import math

from verl.trainer.ppo.v1.trainer_base import PPOTrainer

from verl_video.rewards.metrics import reward_metrics
from verl_video.rewards.scorer import DIAGNOSTIC_KEYS, RewardScorer
from verl_video.verl_adapter.trainer import _is_missing

TVG = {"timestamps": [[12.0, 18.0]], "duration": 60.0}
MCQ = {"answer": "B"}
ROWS = [
    ("demo/tvg", "<answer>12 to 18</answer>", TVG, {"task": "tvg", "duration": 60.0}),
    ("demo/tvg", "<answer>10 to 30</answer>", TVG, {"task": "tvg", "duration": 60.0}),
    ("demo/tvg", "no answer", TVG, {"task": "tvg", "duration": 60.0}),
    ("demo/mcq", "<answer>B</answer>", MCQ, {"task": "mcq"}),
    ("demo/mcq", "<answer>C</answer>", MCQ, {"task": "mcq"}),
]
OTHER_TASKS = ("accuracy", "evidence_iou", "box_iou")


def _scored(scorer: RewardScorer) -> tuple[list[str], dict[str, list[float]]]:
    results = [scorer(*row) for row in ROWS]
    return [row[0] for row in ROWS], {key: [r[key] for r in results] for key in scorer.keys}


def _as_before(scorer: RewardScorer, infos: dict[str, list[float]]) -> dict[str, list[float]]:
    """The rows as the scorer wrote them before: unowned component keys and their failure flags read 0."""
    task_keys = {key for _, _, keys in scorer.task_metrics.values() for key in keys}
    return {key: [0.0 if math.isnan(v) and key not in task_keys else v for v in values] for key, values in infos.items()}


def _validation(sources: list[str], infos: dict[str, list[float]]) -> dict[str, float]:
    """verl's per-source validation means, then what our trainer's `_validate` keeps (no NaN means)."""
    metrics = PPOTrainer._val_metrics_update(None, sources, [str(i) for i in range(len(sources))], infos, [])
    return {key: value for key, value in metrics.items() if not _is_missing(value)}


def test_validation_logs_only_the_metrics_of_tasks_the_source_has():
    scorer = RewardScorer()
    sources, infos = _scored(scorer)
    logged = _validation(sources, infos)
    tvg = {key.split("/")[3] for key in logged if key.startswith("val-aux/demo/tvg/")}
    mcq = {key.split("/")[3] for key in logged if key.startswith("val-aux/demo/mcq/")}
    assert {"tiou", "format", "iou", "r1@0.5", "tvg"} <= tvg
    assert not tvg & {*OTHER_TASKS, "mcq"}
    assert {"accuracy", "format", "mcq"} <= mcq
    assert not mcq & {"tiou", "evidence_iou", "box_iou", "tvg"}
    # Every mean that remains is the one the old rows gave.
    before = _validation(sources, _as_before(scorer, infos))
    assert logged == {key: before[key] for key in logged}
    assert {key.split("/")[3] for key in set(before) - set(logged) if "/demo/tvg/" in key} >= set(OTHER_TASKS)


def test_training_reward_metrics_keep_their_values_and_drop_other_tasks():
    scorer = RewardScorer()
    sources, infos = _scored(scorer)
    metrics = reward_metrics(sources, infos)
    before = reward_metrics(sources, _as_before(scorer, infos))
    assert metrics == {key: before[key] for key in metrics}
    dropped = {key for key in set(before) - set(metrics) if key.startswith("reward/demo/tvg/")}
    assert {f"reward/demo/tvg/{name}" for name in OTHER_TASKS} <= dropped
    assert {"reward/demo/tvg/tiou", "reward/demo/tvg/tiou/errors", "reward/demo/mcq/accuracy/errors"} <= set(metrics)
    assert all(key.split("/")[2] not in DIAGNOSTIC_KEYS for key in dropped)
