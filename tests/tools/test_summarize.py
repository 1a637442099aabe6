"""`verl-video summarize` leads with the task metric, warns when grounding got worse, and reports bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

from verl_video.verl_adapter.run_record import write_record
from verl_video.tools.summarize import summarize


def _write_run(run_dir: Path, val_iou: list[float], val_format: list[float]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for step, (iou, fmt) in enumerate(zip(val_iou, val_format)):
        data = {
            "critic/score/mean": 0.5 + 0.1 * step,
            "val-aux/demo/iou/mean@1": iou,
            "val-aux/demo/r1@0.5/mean@1": iou / 2,
            "val-aux/demo/format/mean@1": fmt,
            "timing_s/step": 10.0,
        }
        lines.append(json.dumps({"step": step * 15, "data": data}))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_falling_iou_is_warned_about_even_when_reward_and_format_rise(tmp_path):
    _write_run(tmp_path / "run", val_iou=[0.395, 0.212, 0.022], val_format=[0.8, 0.95, 1.0])
    text = summarize(tmp_path / "run")
    assert "mIoU    0.395 (step 0) -> 0.022 (step 30)  -0.373" in text
    assert "WARNING: validation IoU on demo FELL" in text
    # The task metric comes before the format reward and before the training reward.
    assert text.index("mIoU") < text.index("format reward, apart: 0.800 -> 1.000") < text.index("reward:")


def test_rising_iou_gives_no_warning(tmp_path):
    _write_run(tmp_path / "run", val_iou=[0.4, 0.42, 0.46], val_format=[0.8, 0.9, 1.0])
    text = summarize(tmp_path / "run")
    assert "R1@0.5  0.200 (step 0) -> 0.230 (step 30)  +0.030" in text
    assert "WARNING" not in text


def test_seed_and_fingerprints_come_from_the_run_record(tmp_path):
    _write_run(tmp_path / "run", val_iou=[0.3, 0.4], val_format=[1.0, 1.0])
    annotations = tmp_path / "train.jsonl"
    annotations.write_text('{"id": "a"}\n')
    config = {
        "data": {"train_files": str(annotations), "val_files": [str(annotations)]},
        "trainer": {"seed": 7, "default_local_dir": "x"},
        "actor_rollout_ref": {"model": {"path": "m"}},
    }
    write_record(config, str(tmp_path / "run" / "checkpoints"))
    assert "seed: 7  config fingerprint: " in summarize(tmp_path / "run")


def _write(path, steps):
    path.write_text("".join(json.dumps({"step": i + 1, "data": data}) + "\n" for i, data in enumerate(steps)))


def test_summary_reports_bad_videos_and_reward_failures(tmp_path):
    common = {"critic/score/mean": 1.0, "data/unreadable_at_start": 4.0, "data/replaced_total": 0.0}
    _write(tmp_path / "metrics.jsonl", [
        {**common, "data/decode_failed_total": 1.0, "reward/demo/tiou/errors": 2.0, "reward/demo/tiou/nan": 0.0},
        {**common, "data/decode_failed_total": 3.0, "reward/demo/tiou/errors": 1.0, "reward/demo/tiou/nan": 0.0},
    ])  # fmt: skip
    text = summarize(tmp_path)
    assert "masked out of training (data/decode_failed_total): 3" in text
    assert "dropped (data/unreadable_at_start): 4" in text
    assert "reward failures reward/demo/tiou/errors: 3 responses" in text
    assert "tiou/nan" not in text


def _write_validation(run_dir: Path, step: int, answers: list[str], truths: list[list[float]], duration: float) -> None:
    folder = run_dir / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"input": "q", "output": answer, "gts": {"timestamps": [truth], "duration": duration}, "step": step}
        for answer, truth in zip(answers, truths)
    ]
    # An MCQ row in the same dump is not a grounding answer and is left out.
    rows.append({"input": "q", "output": "<answer>B</answer>", "gts": {"answer": "B", "options": ["A", "B"]}})
    (folder / f"{step}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


TRUTHS = [[float(s), float(s) + 3.0] for s in range(0, 10)]


def test_a_constant_answer_is_called_the_prior_not_localisation(tmp_path):
    _write_run(tmp_path / "run", val_iou=[0.2, 0.3], val_format=[1.0, 1.0])
    _write_validation(tmp_path / "run", 0, ["<answer>0.00 to 4.00</answer>"] * 10, TRUTHS, 16.0)
    _write_validation(tmp_path / "run", 15, ["<answer>2.00 to 12.00</answer>"] * 10, TRUTHS, 16.0)
    text = summarize(tmp_path / "run")
    assert "distinct answers:            1/10 -> 1/10" in text
    assert "NOTE: the final answers" in text


def test_answers_that_follow_the_moment_get_no_note(tmp_path):
    _write_run(tmp_path / "run", val_iou=[0.2, 0.8], val_format=[1.0, 1.0])
    _write_validation(tmp_path / "run", 0, ["<answer>0.00 to 4.00</answer>"] * 10, TRUTHS, 16.0)
    _write_validation(
        tmp_path / "run", 15, [f"<answer>{s:.2f} to {e + 0.5:.2f}</answer>" for s, e in TRUTHS], TRUTHS, 16.0
    )
    text = summarize(tmp_path / "run")
    assert "distinct answers:            1/10 -> 10/10" in text
    assert "centre correlation w/ truth: n/a (one answer) -> +1.00" in text
    assert "NOTE" not in text


def test_each_source_gets_one_grounding_block(tmp_path):
    # Grounding rows log `iou` twice (the row's and the task metric `tvg/iou`); an MCQ source logs `iou` 0.
    steps = []
    for step, iou in ((0, 0.7), (15, 0.8)):
        data = {"critic/score/mean": 1.0}
        for source, value in (("demo", iou), ("demo/tvg", iou), ("colours", 0.0)):
            data.update({f"val-aux/{source}/iou/mean@1": value, f"val-aux/{source}/r1@0.5/mean@1": value,
                         f"reward/{source}/iou": value, f"reward/{source}/format": 1.0})
        data.update({"val-aux/colours/mcq/accuracy/mean@1": 0.5, "val-aux/colours/format/mean@1": 1.0,
                     "reward/colours/mcq/accuracy": 0.5})
        steps.append({"step": step, "data": data})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    text = summarize(tmp_path)
    assert text.count("the task metric:") == 1 and "validation on demo (greedy), the task metric:" in text
    assert "validation on colours (greedy), mcq: accuracy 0.500 -> 0.500" in text
    assert text.count("mIoU    0.700 (step 0) -> 0.800 (step 15)") == 1
    assert text.count("reward/demo/iou: ") == 1 and "reward/demo/tvg/iou" not in text
    assert "reward/colours/iou" not in text and "reward/colours/format: " in text


def test_steps_that_could_not_learn_are_counted(tmp_path):
    _write(tmp_path / "metrics.jsonl", [{"groups/zero_variance_fraction": v} for v in (1.0, 0.25, 1.0)])
    text = summarize(tmp_path)
    assert "steps that could not learn (every group's rewards equal): 2 of 3 (steps 1, 3)" in text
