"""End to end, as a user meets it: the docs' counting task and reward files, named only under the data_config's
`modules:` (and the docs' reward keys), through warm start, two GRPO steps of the real trainer, eval and score.

One trainer run (2 steps, tiny sizes), from the user's folder outside the repository; relative data paths.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from extension_project import REPO_ROOT, cli, docs_block

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 2
RUN_TIMEOUT_S = 1500


def _reward_keys(project: Path) -> list[str]:
    """The docs' lines that select the reward example by name, its path made this project's."""
    block = docs_block("rewards.md", "Then select it by name:", "bash")
    return [line.strip().strip("'").replace("/abs/path/my_reward.py", str(project / "my_reward.py"))
            for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def warm(user_project, tiny_model_dir) -> Path:
    """The tiny model taught the answer formats of the mixture's tasks (the counting file's reference answer too)."""
    out = user_project / "warm"
    cli(user_project, "warm-start", str(tiny_model_dir), "data.yaml", str(out), "--set", "experiment=tiny_tvg_cpu")
    return out


@pytest.fixture(scope="module")
def run(user_project, warm) -> dict:
    """Two GRPO steps on data.yaml (counting + grounding) with the docs' reward keys; its metrics and trajectories."""
    out = user_project / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1", VERL_FILE_LOGGER_PATH=str(out / "metrics.jsonl"))
    command = [
        sys.executable, "-m", "verl_video.main", "experiment=tiny_tvg_cpu", f"actor_rollout_ref.model.path={warm}",
        "data.train_files=data.yaml", "data.val_files=val.yaml", f"trainer.total_training_steps={STEPS}",
        "trainer.val_before_train=false", f"trainer.test_freq={STEPS}", "trainer.save_freq=-1",
        f"trainer.default_local_dir={out / 'checkpoints'}", f"trainer.rollout_data_dir={out / 'rollouts'}",
        *_reward_keys(user_project),
    ]  # fmt: skip
    out.mkdir()
    with (out / "train.log").open("w") as log:
        code = subprocess.run(command, cwd=user_project, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=RUN_TIMEOUT_S).returncode
    assert code == 0, (out / "train.log").read_text()[-6000:]
    steps = [json.loads(line)["data"] for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [json.loads(line) for path in sorted((out / "rollouts").glob("*.jsonl")) for line in path.read_text().splitlines()]
    return {"steps": steps, "rows": rows}


def test_rows_of_the_user_task_are_built_and_its_reward_varies_inside_a_group(run):
    groups: dict[str, list[float]] = {}
    for row in run["rows"]:
        value = row.get("counting/accuracy")
        if isinstance(value, float) and not math.isnan(value):
            groups.setdefault(row["input"], []).append(float(row["score"]))
    assert groups, "no trajectory of the counting task"
    assert any(len(set(scores)) > 1 for scores in groups.values()), groups


def test_the_user_tasks_metric_and_the_docs_reward_are_logged_per_data_source(run):
    logged = set().union(*(step.keys() for step in run["steps"]))
    assert "reward/counting/counting/accuracy" in logged
    assert "reward/counting/count_exact" in logged
    assert "reward/grounding/early_stop" in logged  # the docs' reward example, selected by the docs' keys
    assert not any(key.startswith("reward/grounding/counting/") for key in logged)


def test_eval_and_score_report_the_user_task(user_project, warm, run):
    out = user_project / "eval"
    cli(user_project, "eval", "--model", str(warm), "--data", "val.yaml", "-o", str(out), "--no-plots",
        "--set", "experiment=tiny_tvg_cpu")
    metrics = json.loads((out / "task_metrics.json").read_text())
    assert metrics["counting"]["count"] == 4 and "accuracy" in metrics["counting"]["metrics"]
    # From elsewhere, with no flag: the eval's run.json names the data_config, whose modules load.
    scored = cli(Path("/"), "score", str(out / "predictions.jsonl"), "--no-plots")
    assert "# counting: 4 samples" in scored.stdout and "accuracy" in scored.stdout
