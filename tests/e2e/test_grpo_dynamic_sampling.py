"""End to end: select a subset of the demo, then GRPO on it with dynamic sampling (verl's `filter_groups` keys).

`verl-video select` drops the records a predictions file answers exactly (Time-R1's IoU > 0.7 band) and
writes a data_config; two steps of the tiny experiment train on that data_config with groups whose rewards
all agree dropped and the batch topped up with new prompts, at most `max_num_gen_batches` batches a step,
and the difficulty curriculum sampler ordering the prompts by running rewards. Read from the run's per-step
metrics, rollout dump and checkpoint.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
from test_grpo_cpu import PROMPTS_PER_STEP, ROLLOUTS, _assert_ran, _metrics, _train, _trajectories

from verl_video.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREFIX = "training/filter_groups"
MAX_GEN_BATCHES = 3


@pytest.fixture(scope="module")
def selection(prepared, tmp_path_factory) -> dict:
    """Every 8th demo record answered exactly (too easy, dropped), the others half right (kept)."""
    records = [json.loads(line) for line in (prepared / "data" / "train.jsonl").read_text().splitlines()]
    rows = []
    for i, r in enumerate(records):
        start, end = r["timestamps"][0]
        prediction = [start, end] if i % 8 == 0 else [start, end + (end - start)]  # IoU 1 or 0.5
        rows.append({**r, "prediction": prediction})
    out = tmp_path_factory.mktemp("selection")
    (out / "pred.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["select", str(prepared / "data" / "train.yaml"), "--from-predictions", str(out / "pred.jsonl"),
                 "--strategy", "difficulty", "-o", str(out / "sel"), "--no-plots"]) == 0
    kept = [json.loads(line) for line in next((out / "sel" / "annotations").glob("*.jsonl")).read_text().splitlines()]
    return {"config": out / "sel" / "data_config.yaml", "kept": kept, "dropped": records[::8]}


@pytest.fixture(scope="module")
def dynamic_run(prepared, selection) -> dict:
    return _train(prepared, "dynamic", f"data.train_files={selection['config']}",
                  "algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=reward",
                  f"algorithm.filter_groups.max_num_gen_batches={MAX_GEN_BATCHES}",
                  "data.sampler.class_path=pkg://verl_video.selection.curriculum",
                  "data.sampler.class_name=DifficultyCurriculumSampler")


def _pairs(records) -> set:
    return {(r["query"], tuple(r["timestamps"][0])) for r in records}


def test_the_run_trains_only_on_the_selected_records(dynamic_run, selection):
    _assert_ran(dynamic_run)
    kept, dropped = _pairs(selection["kept"]), _pairs(selection["dropped"]) - _pairs(selection["kept"])
    assert len(selection["kept"]) == 14 and dropped
    for row in _trajectories(dynamic_run):
        window = tuple(row["gts"]["timestamps"][0])
        assert any(query in row["input"] and window == ts for query, ts in kept), row["input"][-300:]


def test_groups_are_dropped_and_every_batch_is_still_full(dynamic_run):
    _assert_ran(dynamic_run)
    steps = _metrics(dynamic_run)
    for step in steps:
        assert step[f"{PREFIX}/groups_kept"] == PROMPTS_PER_STEP
        generated = step[f"{PREFIX}/groups_generated"]
        assert generated >= PROMPTS_PER_STEP
        assert step[f"{PREFIX}/gen_batches"] == math.ceil(generated / PROMPTS_PER_STEP)
        # Groups that agree are what is dropped: unless the bound stopped the filter, none reached the update.
        if step[f"{PREFIX}/budget_exhausted"] == 0.0:
            assert step["groups/zero_variance_fraction"] == 0.0
    dropped = sum(step.get(f"{PREFIX}/evicted_samples", 0) for step in steps)
    assert dropped > 0, steps
    assert any(step[f"{PREFIX}/groups_generated"] > PROMPTS_PER_STEP for step in steps)
    # The trained batch is full: every step dumped 8 prompts x 8 rollouts.
    per_step = Counter(row["step"] for row in _trajectories(dynamic_run))
    assert sorted(per_step.values()) == [PROMPTS_PER_STEP * ROLLOUTS] * len(steps), per_step


def test_the_curriculum_learned_every_trained_reward_and_its_state_is_checkpointed(dynamic_run):
    _assert_ran(dynamic_run)
    checkpoints = dynamic_run["root"] / "checkpoints"
    step = (checkpoints / "latest_checkpointed_iteration.txt").read_text().strip()
    state = torch.load(checkpoints / f"global_step_{step}" / "data.pt", weights_only=False)
    curriculum = state["_sampler_iter_state"]["sampler_state"]
    # update() saw each trained trajectory once (not the dropped groups), and the drawn prompts are recorded.
    trained = len(_trajectories(dynamic_run))
    assert sum(curriculum["reward_count"]) == trained == dynamic_run["steps"] * PROMPTS_PER_STEP * ROLLOUTS
    # `drawn` holds the current epoch's records; the epochs before it each drew every record once.
    drawn = curriculum["epoch"] * curriculum["size"] + len(curriculum["drawn"])
    assert drawn >= dynamic_run["steps"] * PROMPTS_PER_STEP
