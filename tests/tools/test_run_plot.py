"""`verl-video summarize` draws the run into a PNG whose plotted numbers are the run's own metrics."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from verl_video.evaluation.localisation import blind_baseline
from verl_video.tools import summarize

REPO = Path(__file__).resolve().parents[2]
VAL_STEPS = (0, 15, 30)
VAL_IOU = (0.612, 0.655, 0.701)
VAL_R1 = (0.75, 0.8125, 0.875)
TRUTHS = [[float(s), float(s) + 3.0] for s in range(10)]
DURATION = 16.0


def _reward(step: int) -> float:
    return round(0.4 + 0.01 * step + (0.05 if step % 3 == 0 else -0.03), 4)


def _write_metrics(run_dir: Path, validate: bool) -> list[tuple[int, float]]:
    """verl's file log: step 0 holds the validation before training; returns the reward per step."""
    run_dir.mkdir(parents=True)
    records = [{"step": 0, "data": {"val-aux/demo/iou/mean@1": VAL_IOU[0], "val-aux/demo/r1@0.5/mean@1": VAL_R1[0]}}]
    records = records if validate else []
    for step in range(1, 31):
        data = {"critic/score/mean": _reward(step), "reward/demo/iou": _reward(step) / 2, "reward/demo/format": 1.0}
        if validate and step in VAL_STEPS:
            k = VAL_STEPS.index(step)
            data.update({"val-aux/demo/iou/mean@1": VAL_IOU[k], "val-aux/demo/r1@0.5/mean@1": VAL_R1[k]})
        records.append({"step": step, "data": data})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return [(step, _reward(step)) for step in range(1, 31)]


def _write_dump(run_dir: Path, step: int, answers: list[str]) -> None:
    folder = run_dir / "validation"
    folder.mkdir(exist_ok=True)
    rows = [{"input": "q", "output": a, "gts": {"timestamps": [t], "duration": DURATION}, "step": step}
            for a, t in zip(answers, TRUTHS)]
    (folder / f"{step}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _summarize(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "verl_video.cli", "summarize", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _plotted(stdout: str) -> tuple[Path, Image.Image, dict]:
    last = stdout.rstrip().splitlines()[-1]
    assert last.startswith("plot: "), last
    path = Path(last[len("plot: "):])
    assert path.is_absolute() and path.is_file()
    image = Image.open(path)
    image.load()
    return path, image, json.loads(image.text["verl-video:series"])


def _pairs(points: list[tuple[int, float]]) -> list[list[float]]:
    return [[step, value] for step, value in points]


def test_the_png_shows_validation_training_warm_start_and_baseline_of_the_run(tmp_path):
    rewards = _write_metrics(tmp_path / "run", validate=True)
    _write_dump(tmp_path / "run", 0, ["<answer>2.00 to 6.00</answer>"] * 10)
    last_answers = [f"<answer>{s + 0.5:.2f} to {e:.2f}</answer>" for s, e in TRUTHS]
    _write_dump(tmp_path / "run", 30, last_answers)

    stdout = _summarize(tmp_path, "run")
    path, image, drawn = _plotted(stdout)

    assert path == (tmp_path / "run" / "summary.png").resolve()
    assert image.format == "PNG" and image.width >= 600 and image.height >= 600
    assert len(set(image.convert("RGB").getdata())) > 20  # drawn on, not a blank canvas
    series, lines = drawn["series"], drawn["lines"]
    assert series["val-aux/demo/iou/mean@1"] == _pairs(zip(VAL_STEPS, VAL_IOU))
    assert series["val-aux/demo/r1@0.5/mean@1"] == _pairs(zip(VAL_STEPS, VAL_R1))
    assert series["critic/score/mean"] == _pairs(rewards)
    assert series["reward/demo/iou"] == _pairs((s, r / 2) for s, r in rewards)
    assert series["critic/score/mean (5-step mean)"][-1][1] == pytest.approx(sum(r for _, r in rewards[-5:]) / 5)
    assert series["critic/score/mean (5-step mean)"][0][1] == pytest.approx(rewards[0][1])
    assert "reward/demo/format" not in series
    # The baseline is the best constant interval on the last dump's videos, the same number the text prints.
    baseline = blind_baseline(TRUTHS, [DURATION] * len(TRUTHS))[0]
    assert lines == {"warm start (step-0 validation)": VAL_IOU[0], "video-blind baseline": baseline}
    assert f"video-blind baseline:        mIoU {baseline:.3f}" in stdout
    assert f"  warm start (step 0) mIoU 0.612, video-blind baseline {baseline:.3f}, final 0.701\n" in stdout


def test_no_plot_writes_no_png_and_still_summarises(tmp_path):
    _write_metrics(tmp_path / "run", validate=True)
    stdout = _summarize(tmp_path, "run", "--no-plot")
    assert "mIoU    0.612 (step 0) -> 0.701 (step 30)" in stdout
    assert "plot:" not in stdout
    assert not list(tmp_path.rglob("*.png"))


def test_a_run_without_validation_gets_its_training_panel_where_asked(tmp_path):
    rewards = _write_metrics(tmp_path / "run", validate=False)
    path, image, drawn = _plotted(_summarize(tmp_path, "run", "--plot", "pictures/run.png"))
    assert path == (tmp_path / "pictures" / "run.png").resolve()
    assert not (tmp_path / "run" / "summary.png").exists()
    assert drawn["series"]["critic/score/mean"] == _pairs(rewards)
    assert not [key for key in drawn["series"] if key.startswith("val-aux/")]
    assert drawn["lines"] == {}
    assert image.height < image.width  # one panel, not two


def test_a_run_with_nothing_to_draw_writes_nothing_and_says_why(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text(json.dumps({"step": 1, "data": {"timing_s/step": 3.0}}) + "\n")
    stdout = _summarize(tmp_path, "run")
    assert stdout.rstrip().splitlines()[-1].startswith("plot: none written, no greedy validation")
    assert not list(tmp_path.rglob("*.png"))


def test_without_matplotlib_the_summary_is_printed_and_the_plot_skipped(tmp_path, monkeypatch, capsys):
    _write_metrics(tmp_path / "run", validate=True)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an environment without it sees on import
    parser = argparse.ArgumentParser()
    summarize.add_arguments(parser)
    assert summarize.run(parser.parse_args([str(tmp_path / "run")])) == 0
    out = capsys.readouterr().out
    assert "mIoU    0.612 (step 0) -> 0.701 (step 30)" in out
    assert out.rstrip().splitlines()[-1] == "plot: skipped, matplotlib is not installed (pip install matplotlib)"
    assert not list(tmp_path.rglob("*.png"))
