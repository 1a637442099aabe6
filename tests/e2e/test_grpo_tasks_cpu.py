"""GRPO on the four-task demo mixture (experiment=tiny_tasks_cpu): each task's reward varies inside a group
and every task's metrics are logged per dataset.

Shares the tiny model, the demo data (which carries all four tasks) and the warm start with test_grpo_cpu.py.
"""

from __future__ import annotations

import math

import pytest
from conftest import _cli
from test_grpo_cpu import _assert_ran, _metrics, _train, _trajectories

from verl_video.tasks import TASKS

STEPS = 2
# The mixture's datasets (demo_data.mixture_config) and the task each one holds.
DATASETS = {"demo": "tvg", "demo_mcq": "mcq", "demo_grounded_qa": "grounded_qa", "demo_tracking": "tracking"}


@pytest.fixture(scope="module")
def tasks_run(prepared) -> dict:
    """Two steps on the mixture with the project's `video` reward manager (each row scored by its task's preset),
    from a warm start on the mixture (each task's reference answer), so that every task's answers can score.
    The mixture has its own demo data: the shared one has videos broken on purpose after its warm start."""
    data, warm = prepared / "data_mix", prepared / "warm_mix"
    _cli("make-demo-data", str(data), "--num-train", "16", "--num-val", "4")
    # The warm start sees the videos and prompts GRPO will: the same experiment's settings.
    _cli("warm-start", str(prepared / "tiny"), str(data / "train_mix.yaml"), str(warm), "--set", "experiment=tiny_tasks_cpu")
    run = _train(
        prepared, "tasks", f"actor_rollout_ref.model.path={warm}", f"data.train_files={data / 'train_mix.yaml'}",
        f"data.val_files={data / 'val_mix.yaml'}", steps=STEPS, experiment="tiny_tasks_cpu",
    )  # fmt: skip
    _assert_ran(run)
    return run


def _task_of(row: dict) -> str | None:
    # A trajectory's own task is the one whose metrics are numbers; the other tasks' read nan.
    found = [task for task in TASKS if isinstance(row.get(f"{task}/parse_ok"), float) and not math.isnan(row[f"{task}/parse_ok"])]
    return found[0] if len(found) == 1 else None


def _varied_tasks(run: dict) -> tuple[set[str], dict]:
    groups: dict[tuple[str | None, str], list[float]] = {}
    for row in _trajectories(run):
        if not row.get("probe_decode_failed"):
            groups.setdefault((_task_of(row), row["input"]), []).append(float(row["score"]))
    return {task for (task, _), scores in groups.items() if len(set(scores)) > 1}, groups


@pytest.mark.parametrize("task", ["tvg", "mcq", "grounded_qa", "tracking"])
def test_each_tasks_reward_varies_inside_a_group(tasks_run, task):
    varied, groups = _varied_tasks(tasks_run)
    assert task in varied, [scores for (t, _), scores in groups.items() if t == task]


def test_every_tasks_metrics_are_logged_per_dataset(tasks_run):
    logged = set().union(*(step.keys() for step in _metrics(tasks_run)))
    for dataset, task in DATASETS.items():
        for name in TASKS[task].metric_keys:
            assert f"reward/{dataset}/{task}/{name}" in logged, (dataset, task, name)
        # No dataset logs another task's metric (nan is never averaged in).
        others = [key for key in logged if key.startswith(f"reward/{dataset}/") and key.split("/")[2] in TASKS and key.split("/")[2] != task]
        assert not others, others
