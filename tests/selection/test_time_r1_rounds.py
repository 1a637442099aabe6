"""examples/time_r1_rounds.sh wires its rounds as Time-R1 does: each round selects and trains from the last one's model.

The script runs with `verl-video` and `python -m verl_video.main / verl.model_merger` replaced by recorders
(a real two-round run is recorded in docs/selection.md): what it asks of them is what a user's run gets.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "time_r1_rounds.sh"

# `verl-video select ... -o OUT`: a selection report; `python -m verl_video.main`: a checkpoint of
# trainer.total_training_steps steps; `python -m verl.model_merger`: the merged folder. Other python calls run.
FAKE_VERL_VIDEO = """#!/usr/bin/env bash
echo "verl-video $*" >> "$CALLS"
[[ -n "$EMPTY_FROM_ROUND" && "$*" == *"/round_$EMPTY_FROM_ROUND/select"* ]] && exit 1
out=""; prev=""
for a in "$@"; do [[ "$prev" == -o ]] && out="$a"; prev="$a"; done
mkdir -p "$out"
echo '{"records": 10, "counts": {"kept": 6, "too_easy": 3, "iou_zero": 1}}' > "$out/selection.json"
"""
FAKE_PYTHON = """#!/usr/bin/env bash
if [[ "$1" == -m && "$2" == verl_video.main ]]; then
  echo "train $*" >> "$CALLS"
  for a in "$@"; do
    case "$a" in trainer.default_local_dir=*) dir="${a#*=}";; trainer.total_training_steps=*) steps="${a#*=}";; esac
  done
  mkdir -p "$dir/global_step_$steps/actor"
  echo "$steps" > "$dir/latest_checkpointed_iteration.txt"
elif [[ "$1" == -m && "$2" == verl.model_merger ]]; then
  echo "merge $*" >> "$CALLS"
else
  exec "$REAL_PYTHON" "$@"
fi
"""


def _run(tmp_path: Path, *extra: str, expect: int = 0, **env: str) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("verl-video", FAKE_VERL_VIDEO), ("python", FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.txt"
    run_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
               "REAL_PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "MODEL": "/models/start",
               "DATA": "/data/train.yaml", "VAL": "/data/val.yaml", "EMPTY_FROM_ROUND": "", **env}
    done = subprocess.run(["bash", str(SCRIPT), *extra], env=run_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == expect, done.stdout + done.stderr
    (tmp_path / "output.txt").write_text(done.stdout + done.stderr)
    return [shlex.split(line) for line in calls.read_text().splitlines()]


def _value(argv: list[str], key: str) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith(key + "="))


def _set_overrides(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


def test_each_round_selects_and_trains_from_the_previous_rounds_checkpoint(tmp_path):
    calls = _run(tmp_path, "data.video.max_frames=16", ROUNDS="3", STEPS="5")
    selects = [c for c in calls if c[:2] == ["verl-video", "select"]]
    trains = [c for c in calls if c[0] == "train"]
    merges = [c for c in calls if c[0] == "merge"]
    assert len(selects) == len(trains) == len(merges) == 3
    out = tmp_path / "out"
    models = ["/models/start"] + [f"{out}/round_{r}/checkpoints/global_step_5/actor/huggingface_merged"
                                  for r in (1, 2)]
    for r, (select, train, merge, model) in enumerate(zip(selects, trains, merges, models), start=1):
        assert select[select.index("--model") + 1] == model
        assert _value(train, "actor_rollout_ref.model.path") == model
        # Round r trains on what round r selected, into its own folder, and that checkpoint is merged.
        assert select[select.index("-o") + 1] == f"{out}/round_{r}/select"
        assert _value(train, "data.train_files") == f"{out}/round_{r}/select/data_config.yaml"
        assert merge[merge.index("--local_dir") + 1] == f"{out}/round_{r}/checkpoints/global_step_5/actor"
    summary = (out / "rounds.txt").read_text().splitlines()
    assert len(summary) == 3 and "kept 6 of 10 (dropped: too_easy 3, iou_zero 1)" in summary[1]
    assert f"start model {models[1]}" in summary[1]


def test_selection_sees_the_records_with_the_settings_training_uses(tmp_path):
    calls = _run(tmp_path, "data.video.max_frames=16", ROUNDS="2", STEPS="1")
    selects = [c for c in calls if c[:2] == ["verl-video", "select"]]
    trains = [c for c in calls if c[0] == "train"]
    for select, train in zip(selects, trains):
        overrides = _set_overrides(select)
        # Every trainer override the script or the user passes (experiment, video budget) reaches select.
        assert "experiment=tiny_tvg_cpu" in overrides and "data.video.max_frames=16" in overrides
        assert set(overrides) <= set(train[3:])


def test_an_empty_selection_stops_the_loop_and_keeps_the_rounds_so_far(tmp_path):
    # Round 2's selection keeps nothing (verl-video select exits 1): no training on it, round 1 stands.
    calls = _run(tmp_path, ROUNDS="3", STEPS="3", EMPTY_FROM_ROUND="2", expect=1)
    merged = "round_1/checkpoints/global_step_3/actor/huggingface_merged"
    assert f"stopping with {tmp_path}/out/{merged}" in (tmp_path / "output.txt").read_text()
    assert [c[0] for c in calls] == ["verl-video", "train", "merge", "verl-video"]
    assert len((tmp_path / "out" / "rounds.txt").read_text().splitlines()) == 1
