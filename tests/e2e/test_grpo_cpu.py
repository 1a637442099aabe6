"""End to end: GRPO steps through `python -m verl_video.main` on CPU, with video, real verl trainer.

One run (module fixture) of the tiny Qwen2.5-VL, warm-started so that it emits the answer format, on
generated videos; the tests then read what the run logged: verl's per-step metrics (file logger, with
our trainer's `video/*` checks of the actor's batch) and its per-trajectory rollout dump, where a probe
reward manager recorded each prompt's video token count, and its console log.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from verl_video.tools.summarize import summarize

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = 2
# Demo videos are 112x112, sampled at 2 fps, at most 12544 pixels a frame (experiment=tiny_tvg_cpu). Qwen2.5-VL
# (28 pixels a token side): 112x112, each pair of frames 4x4 merged patches = 16 tokens. Qwen3-VL (32 pixels):
# 112 rounds to 128, 128x128 is over the bound, so 96x128, 3x4 = 12 tokens a pair.
TOKENS_PER_FRAME_PAIR = {"qwen2_5_vl": 4 * 4, "qwen3_vl": 3 * 4}
FPS = 2.0
# Console lines a GRPO step may print (progress, verl's step line, rollout dump, our warnings). Before the
# TransferQueue thread count was capped, its per-call warning alone gave ~40 lines a step from 2 steps.
MAX_LINES_PER_STEP = 25
# experiment=tiny_tvg_cpu: 8 prompts x 8 rollouts a step, no reference model.
PROMPTS_PER_STEP = 8
ROLLOUTS = 8


# A run that stops making progress (e.g. a weight sync whose receiver failed waits forever) must fail the
# test, not hang CI: a 2-step run took 3.3 min (vLLM rollout) on a loaded 2-core machine.
RUN_TIMEOUT_S = 1500


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a run: its process group and every process below it (Ray's GCS, raylet, workers), as a lost node."""
    import psutil

    tree = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    for child in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.wait()
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"processes of the killed run still alive: {alive}"


def _train(
    root: Path,
    name: str,
    *overrides: str,
    steps: int = STEPS,
    timeout: float = RUN_TIMEOUT_S,
    kill_when: Callable[[Path], bool] | None = None,
    env: dict | None = None,
    experiment: str = "tiny_tvg_cpu",
) -> dict:
    """Run `steps` GRPO steps into root/name (again: resumes there); returns the run's folder, exit code
    (None: timed out, or SIGKILLed with its whole process group once `kill_when(folder)` held), log, seconds."""
    out = root / name
    out.mkdir(exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", VERL_FILE_LOGGER_PATH=str(out / "metrics.jsonl"), **(env or {}))
    command = [
        sys.executable,
        "-m",
        "verl_video.main",
        f"experiment={experiment}",
        f"actor_rollout_ref.model.path={root / 'warm'}",
        f"data.train_files={root / 'data' / 'train.yaml'}",
        f"data.val_files={root / 'data' / 'val.yaml'}",
        f"trainer.total_training_steps={steps}",
        "trainer.val_before_train=false",
        f"trainer.test_freq={steps}",
        f"trainer.default_local_dir={out / 'checkpoints'}",
        f"trainer.rollout_data_dir={out / 'rollouts'}",
        "reward.reward_manager.source=importlib",
        f"reward.reward_manager.module.path={REPO_ROOT / 'tests' / 'e2e' / 'probe_reward.py'}",
        "reward.reward_manager.name=VideoProbeRewardManager",
        *overrides,
    ]
    log = out / "train.log"
    started = time.monotonic()
    with log.open("a") as stream:
        # Own process group: on timeout the driver and the Ray processes it started go together.
        process = subprocess.Popen(
            command, cwd=out, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while (code := process.poll()) is None:
            if time.monotonic() > deadline or (kill_when is not None and kill_when(out)):
                _kill_tree(process)
                reason = "on purpose" if time.monotonic() <= deadline else f"after {timeout:.0f} s without finishing"
                stream.write(f"\nverl-video test: killed {reason}\n")
                code = None
                break
            time.sleep(0.5)
    seconds = time.monotonic() - started
    return {"root": out, "code": code, "log": log, "warm": root / "warm", "steps": steps, "seconds": seconds}


@pytest.fixture(scope="module")
def grpo_run(prepared) -> dict:
    """The run most tests read: defaults of the tiny experiment (vision encoder frozen)."""
    return _train(prepared, "run")


@pytest.fixture(scope="module")
def grpo_qwen3(prepared_qwen3) -> dict:
    """The tiny Qwen3-VL through the same trainer (text timestamps instead of M-RoPE time)."""
    return _train(prepared_qwen3, "run_qwen3")


@pytest.fixture(scope="module")
def grpo_unfrozen(prepared) -> dict:
    """One step with the vision tower trained, and the GPU recipe's KL term (a reference model) on."""
    return _train(
        prepared,
        "unfrozen",
        "actor_rollout_ref.actor.freeze_vision_tower=false",
        "actor_rollout_ref.actor.use_kl_loss=true",
        "actor_rollout_ref.actor.kl_loss_coef=0.04",
        steps=1,
    )


def _metrics(run: dict) -> list[dict]:
    """The run's logged metrics per step (its first `run["only"]` steps when given)."""
    lines = (run["root"] / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["data"] for line in lines if line.strip()][: run.get("only")]


def _trajectories(run: dict) -> list[dict]:
    rows = []
    for path in sorted((run["root"] / "rollouts").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _assert_ran(run: dict) -> None:
    assert run["code"] == 0, run["log"].read_text()[-4000:]
    assert len(_metrics(run)) == run["steps"]


def test_run_exits_cleanly(grpo_run):
    _assert_ran(grpo_run)


def _assert_video_reached_the_actor(run: dict) -> None:
    for step in _metrics(run):
        # Every sample of the actor's batch carried a video_grid_thw, matching its prompt's placeholders.
        assert step["video/with_grid_fraction"] == 1.0
        assert step["video/placeholder_grid_mismatches"] == 0.0
        assert step["video/tokens_per_sample"] > 0


def test_video_reached_the_actor(grpo_run):
    _assert_video_reached_the_actor(grpo_run)


def _assert_video_tokens_follow_the_duration(run: dict, family: str) -> None:
    rows = [row for row in _trajectories(run) if not row["probe_decode_failed"]]
    assert rows, "no rollout dump written"
    per_pair = TOKENS_PER_FRAME_PAIR[family]
    for row in rows:
        duration = row["gts"]["duration"]
        frames = duration * FPS
        # Frames are taken every 0.5 s and paired; an odd count is padded to the next pair.
        expected = {math.floor(frames / 2) * per_pair, math.ceil(frames / 2) * per_pair}
        assert row["probe_video_tokens"] in expected, (duration, row["probe_video_tokens"])


def test_video_token_count_follows_the_duration(grpo_run):
    _assert_video_tokens_follow_the_duration(grpo_run, "qwen2_5_vl")


def test_broken_videos_are_skipped_and_counted(grpo_run):
    steps = _metrics(grpo_run)
    assert len(steps) == STEPS
    # The start-up header probe finds them all (none is left to be replaced mid-run), and says how many.
    assert steps[-1]["data/unreadable_at_start"] == 4
    assert steps[-1]["data/replaced_total"] == 0


def test_videos_failing_to_decode_later_are_masked_and_counted(grpo_run):
    # Flags per prompt uid (a trajectory's uid is `<prompt uid>_<rollout>_<turn>`); two samples can share a
    # prompt text, and a sample drawn again in a later epoch gets a new uid and counts again.
    flags: dict[str, set[int]] = {}
    for row in _trajectories(grpo_run):
        flags.setdefault(row["uid"].rsplit("_", 2)[0], set()).add(row["probe_decode_failed"])
    failed = [key for key, seen in flags.items() if 1 in seen]
    # 3 of the 12 usable videos were erased, 8 prompts a step: a step without one has odds of 9 in 495.
    assert failed, "no erased video was drawn"
    # All n rollouts of a prompt share its video, so all were masked (the agent loop's unit test checks the mask).
    assert all(flags[key] == {1} for key in failed)
    total = _metrics(grpo_run)[-1]["data/decode_failed_total"]
    assert total == len(failed)
    assert f"masked out of training (data/decode_failed_total): {len(failed)}" in summarize(grpo_run["root"])


def test_console_lines_per_step_stay_few(grpo_run):
    lines = grpo_run["log"].read_text(errors="replace").splitlines()
    first = next(i for i, line in enumerate(lines) if "Training Progress:" in line)
    last = max(i for i, line in enumerate(lines) if f"step:{STEPS} -" in line)
    per_step = (last - first) / STEPS
    print(f"console lines per GRPO step: {per_step:.1f}")
    assert per_step <= MAX_LINES_PER_STEP, "\n".join(lines[first : last + 1])


def _assert_rewards_vary_inside_a_group(run: dict) -> None:
    groups: dict[str, list[float]] = {}
    for row in _trajectories(run):
        groups.setdefault(row["input"], []).append(float(row["score"]))
    assert any(len(set(scores)) > 1 for scores in groups.values()), groups


def test_rewards_vary_inside_a_group(grpo_run):
    _assert_rewards_vary_inside_a_group(grpo_run)


def test_policy_is_updated(grpo_run):
    assert any(step["actor/grad_norm"] > 0 for step in _metrics(grpo_run))


def _assert_rollout_log_probs_match_the_actor(run: dict) -> None:
    for step in _metrics(run):
        # verl's metrics: mean |p_rollout - p_actor| per token, and per sequence |mean log-prob difference|.
        assert step["training/rollout_probs_diff_mean"] < 1e-3
        assert step["training/rollout_probs_diff_max"] < 1e-3
        assert step["rollout_corr/log_ppl_abs_diff"] < 1e-3


def test_rollout_log_probs_match_the_actor(grpo_run):
    _assert_rollout_log_probs_match_the_actor(grpo_run)


def test_qwen3_vl_trains_with_video(grpo_qwen3):
    """Qwen3-VL (32-pixel tokens, time as `<t seconds>` text): videos reach the actor, rollout and actor agree."""
    _assert_ran(grpo_qwen3)
    _assert_video_reached_the_actor(grpo_qwen3)
    _assert_video_tokens_follow_the_duration(grpo_qwen3, "qwen3_vl")
    _assert_rollout_log_probs_match_the_actor(grpo_qwen3)
    assert any(step["actor/grad_norm"] > 0 for step in _metrics(grpo_qwen3))
    # The prompt the actor trained on carries one timestamp per frame pair, 1 s apart at 2 fps.
    prompt = _trajectories(grpo_qwen3)[0]["input"]
    stamps = [float(t) for t in re.findall(r"<(\d+\.\d) seconds>", prompt)]
    assert len(stamps) >= 2 and stamps[1] - stamps[0] == pytest.approx(1.0), prompt[:400]


def _changes(run: dict) -> dict:
    from verl_video.tools.weight_diff import compare, load_weights

    checkpoint = run["root"] / "checkpoints" / f"global_step_{run['steps']}"
    return compare(load_weights(str(run["warm"])), load_weights(str(checkpoint)))


def test_frozen_vision_encoder_is_unchanged_and_out_of_the_optimizer(grpo_run):
    import torch

    _assert_ran(grpo_run)
    changes = _changes(grpo_run)
    assert changes["vision_encoder"].tensors > 0 and changes["vision_encoder"].changed == 0
    # The projector (merger) and the language model train.
    assert changes["vision_projector"].changed == changes["vision_projector"].tensors > 0
    assert changes["language_model"].changed > 0
    # AdamW holds state for the trainable tensors only.
    actor = grpo_run["root"] / "checkpoints" / f"global_step_{STEPS}" / "actor"
    optimizer = torch.load(actor / "optim_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    trainable = changes["vision_projector"].tensors + changes["language_model"].tensors
    assert len(optimizer["state"]) == trainable


def test_unfrozen_vision_encoder_trains(grpo_unfrozen):
    _assert_ran(grpo_unfrozen)
    changes = _changes(grpo_unfrozen)
    assert changes["vision_encoder"].changed > 0 and changes["language_model"].changed > 0


def test_reference_model_runs_on_cpu(grpo_unfrozen):
    # use_kl_loss needs the reference policy's log-probs: verl's forward-only engine must start on CPU.
    _assert_ran(grpo_unfrozen)
    step = _metrics(grpo_unfrozen)[0]
    assert "timing_s/ref" in step and math.isfinite(step["actor/kl_loss"])


# Wall-clock and memory readings differ between any two runs.
NOT_REPRODUCIBLE = ("timing_s/", "timing_per_token_ms/", "perf/", "actor/perf/")
# The hf rollout's log-probs come from batched forward passes whose float sums depend on which requests
# shared a batch (arrival timing): the sampled tokens are the same (per-request seeds) and the loss uses the
# actor's recomputed log-probs, but these rollout-vs-actor diagnostics (probability differences, their
# Pearson correlation, perplexity ratios) move around the 7th decimal.
ROLLOUT_DIAGNOSTICS = ("training/rollout_", "rollout_corr/")


def _assert_same_metrics(first_run: dict, second_run: dict) -> None:
    for first, second in zip(_metrics(first_run), _metrics(second_run), strict=True):
        keys = {k for k in first if not k.startswith(NOT_REPRODUCIBLE)}
        assert keys == {k for k in second if not k.startswith(NOT_REPRODUCIBLE)}
        for key in keys:
            if key.startswith(ROLLOUT_DIAGNOSTICS):
                assert abs(first[key] - second[key]) <= 1e-6, (key, first[key], second[key])
            else:
                # Validation means are summed in completion order: equal up to the last bit of a double.
                assert math.isclose(first[key], second[key], rel_tol=1e-12, abs_tol=0.0), (key, first[key], second[key])


def _assert_same_final_weights(first_run: dict, second_run: dict) -> None:
    import torch

    from verl_video.tools.weight_diff import load_weights

    final = f"checkpoints/global_step_{STEPS}"
    a, b = load_weights(str(first_run["root"] / final)), load_weights(str(second_run["root"] / final))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_same_command_same_seed_same_run(grpo_run, grpo_killed, grpo_resumed):
    # The resume test's run is grpo_run's command again in another folder (plus a checkpoint every step):
    # its first, never-interrupted step must equal grpo_run's, and both runs must record the same config
    # and data. (A separate rerun cost CI two minutes and observed nothing more; the resume test below
    # checks the whole run, step 2 and the final weights included.)
    _assert_ran(grpo_run)
    assert grpo_killed["metrics_at_kill"] == [1]
    _assert_ran(grpo_resumed)
    _assert_same_metrics({"root": grpo_run["root"], "only": 1}, {"root": grpo_resumed["root"], "only": 1})
    record_a = json.loads((grpo_run["root"] / "checkpoints" / "run.json").read_text())
    record_b = json.loads((grpo_resumed["root"] / "checkpoints" / "run.json").read_text())
    assert record_a["config_fingerprint"] == record_b["config_fingerprint"]
    assert record_a["data_fingerprint"] == record_b["data_fingerprint"]


def _logged_steps(run: dict) -> list[int]:
    return [json.loads(line)["step"] for line in (run["root"] / "metrics.jsonl").read_text().splitlines()]


def _killed_after_saving(step: int) -> Callable[[Path], bool]:
    """True once `step`'s checkpoint is on disk (verl writes data.pt last), i.e. during the step's validation."""

    def saved(out: Path) -> bool:
        tracker = out / "checkpoints" / "latest_checkpointed_iteration.txt"
        # Not in the instant between verl marking it and our trainer taking the mark back (a kill there is
        # verl's behaviour, not a window this test is about).
        unmarked = tracker.is_file() and tracker.read_text().strip() == str(step - 1)
        return (out / "checkpoints" / f"global_step_{step}" / "data.pt").is_file() and unmarked

    return saved


@pytest.fixture(scope="module")
def grpo_killed(prepared, grpo_run) -> dict:
    """grpo_run's command with a checkpoint every step, SIGKILLed (process tree) after step 2's checkpoint
    was written and before that step's validation and metrics were logged: the latest window of a step."""
    run = _train(prepared, "resumed", "trainer.save_freq=1", kill_when=_killed_after_saving(STEPS))
    run["metrics_at_kill"] = _logged_steps(run)
    return run


@pytest.fixture(scope="module")
def grpo_resumed(prepared, grpo_killed) -> dict:
    """The same command again, in the same folder: resumes."""
    return _train(prepared, "resumed", "trainer.save_freq=1")


@pytest.fixture(scope="module")
def grpo_rerun(prepared, grpo_run) -> dict:
    """grpo_run's command again in its finished folder, as a user reruns a script: the files before and after."""
    files = ("metrics.jsonl", "checkpoints/run.json")
    before = {name: (grpo_run["root"] / name).read_bytes() for name in files}
    run = _train(prepared, "run")
    run["before"], run["after"] = before, {name: (run["root"] / name).read_bytes() for name in files}
    return run


def test_a_rerun_of_a_finished_run_resumes_it_and_keeps_its_metrics(grpo_run, grpo_rerun):
    _assert_ran(grpo_run)
    assert grpo_rerun["code"] == 0, grpo_rerun["log"].read_text()[-4000:]
    log = grpo_rerun["log"].read_text(errors="replace").split("verl-video: run record")[-2]
    assert "holds this run (same config and data): resuming it" in log
    # Nothing trained again, nothing lost: the finished run's metrics and record are what they were.
    assert grpo_rerun["after"] == grpo_rerun["before"]
    assert "steps logged: 2" in summarize(grpo_rerun["root"])


def test_a_rerun_with_another_seed_in_the_same_folder_stops_at_start_up(prepared, grpo_run):
    _assert_ran(grpo_run)
    record, metrics = (grpo_run["root"] / "checkpoints" / "run.json").read_bytes(), (grpo_run["root"] / "metrics.jsonl").read_bytes()
    before = grpo_run["log"].read_text(errors="replace")
    run = _train(prepared, "run", "trainer.seed=7", timeout=300)
    log = grpo_run["log"].read_text(errors="replace")[len(before):]
    assert run["code"] == 2, log[-4000:]
    # Refused by the driver before Ray starts (a Ray start alone takes longer on this machine).
    assert "Started a local Ray instance" not in log and run["seconds"] < 90, (run["seconds"], log[-3000:])
    assert "trainer.seed: 42 -> 7" in log and "another trainer.default_local_dir" in log, log[-3000:]
    assert (grpo_run["root"] / "checkpoints" / "run.json").read_bytes() == record
    assert (grpo_run["root"] / "metrics.jsonl").read_bytes() == metrics


def _prompt_ids_per_step(run: dict) -> dict[int, list[str]]:
    steps: dict[int, list[str]] = {}
    for row in _trajectories(run):
        steps.setdefault(int(row["step"]), []).append(row["probe_id"])
    return steps


def test_killed_run_resumes_as_if_never_stopped(grpo_run, grpo_killed, grpo_resumed):
    _assert_ran(grpo_run)
    assert grpo_killed["code"] is None, grpo_killed["log"].read_text()[-4000:]
    # Killed inside step 2: its checkpoint written, its metrics not yet logged.
    assert grpo_killed["metrics_at_kill"] == [1]
    _assert_ran(grpo_resumed)
    log = grpo_resumed["log"].read_text(errors="replace")
    # Step 2's checkpoint never got its metrics, so the run resumes from step 1's and trains step 2 again.
    assert "verl-video: resuming after step 1 from" in log.split("killed on purpose")[-1], log[-4000:]
    # Steps 1 and 2 logged once each, in order, with the same values as the run never stopped (the data
    # counters continue across the restart), the same prompts in the same order, the same final weights.
    assert _logged_steps(grpo_resumed) == [1, 2]
    _assert_same_metrics(grpo_run, grpo_resumed)
    assert _prompt_ids_per_step(grpo_resumed) == _prompt_ids_per_step(grpo_run)
    _assert_same_final_weights(grpo_run, grpo_resumed)


def test_each_video_is_encoded_once_per_step(grpo_run):
    videos_per_step: dict[int, set] = {}
    for row in _trajectories(grpo_run):
        # One video per demo record; a record can be drawn twice in a step across an epoch boundary. The store
        # knows videos by their pixels, and every erased video gets the same small placeholder clip.
        if row["probe_decode_failed"]:
            video = ("placeholder",)
        else:
            video = (row["input"], json.dumps(row["gts"], sort_keys=True))
        videos_per_step.setdefault(int(row["step"]), set()).add(video)
    for number, step in enumerate(_metrics(grpo_run), start=1):
        videos = len(videos_per_step[number])
        # The encoder is frozen (default), so vision.reuse_features is on: the old-log-prob pass encodes each
        # video once; the other rollouts and both update mini-batches reuse it.
        assert step["actor/vision/unique_videos"] == videos
        assert step["actor/vision/encoder_passes"] == videos
        assert step["actor/vision/encoder_passes_per_video"] == 1.0
        rows_through_the_tower = step["actor/vision/encoder_passes"] + step["actor/vision/feature_reuses"]
        assert rows_through_the_tower == PROMPTS_PER_STEP * ROLLOUTS * 2  # old-log-prob pass + one update epoch
        assert step["actor/vision/encoder_sync_passes"] == 0


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "verl_video.cli", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_checkpoint_evaluates_and_exports_in_one_command(grpo_run, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from verl_video.tools.weight_diff import load_weights

    _assert_ran(grpo_run)
    checkpoint = grpo_run["root"] / "checkpoints" / f"global_step_{STEPS}"
    val = grpo_run["warm"].parent / "data" / "val.yaml"
    first = _cli("eval", "--model", str(checkpoint), "--data", str(val), "-o", str(tmp_path / "eval"), "--no-plots")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "merging" in first.stdout
    predictions = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 4 and all("iou" in json.loads(line) for line in predictions)
    # The merge is cached beside the checkpoint: a second command (export) does not merge again.
    exported = _cli("export", str(checkpoint), str(tmp_path / "hf"))
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    assert "merging" not in exported.stdout
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "hf")
    # verl's merger writes bfloat16: the weights are the checkpoint's, rounded once.
    trained = load_weights(str(checkpoint))
    weights = model.state_dict()
    assert trained.keys() == weights.keys()
    assert all(torch.equal(weights[name], trained[name].to(torch.bfloat16)) for name in trained)
    # The processor and chat template are the training model's: the same prompt renders to the same text.
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "When does it happen?"}]}]
    render = {
        name: AutoProcessor.from_pretrained(folder).apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        for name, folder in (("exported", tmp_path / "hf"), ("trained", grpo_run["warm"]))
    }
    assert render["exported"] == render["trained"] and "<|video_pad|>" in render["exported"]


def test_eval_of_the_checkpoint_takes_the_runs_settings(grpo_run, tmp_path):
    # The real layout: verl's sharded checkpoint (eval merges it once), run.json beside it.
    _assert_ran(grpo_run)
    checkpoint = grpo_run["root"] / "checkpoints" / f"global_step_{STEPS}"
    command = [sys.executable, "-m", "verl_video.cli", "eval", "--model", str(checkpoint), "-o", str(tmp_path / "eval"),
               "--no-plots", "--device", "cpu", "--max-frames", "16", "--limit", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-4000:]
    # experiment=tiny_tvg_cpu trained with 32 frames and 48 response tokens; the flag's change is printed.
    assert f"settings from run {checkpoint.parent / 'run.json'}" in result.stderr
    assert "max_frames: run 32 -> flag 16" in result.stderr
    record = json.loads((tmp_path / "eval" / "run.json").read_text())
    assert record["generation"]["max_new_tokens"] == 48 and record["generation"]["seed"] == 42
    assert record["video_budgets"]["demo"]["max_frames"] == 16
    assert len((tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()) == 2
