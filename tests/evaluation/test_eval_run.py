"""`verl-video eval` end to end: the tiny model on generated videos, resuming, failures, settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from verl_video.cli import main
from verl_video.evaluation import run_eval
from verl_video.evaluation.backends import GenerationOptions, HFBackend

from eval_helpers import ScriptedBackend, eval_args  # noqa: I001  (tests/evaluation is on sys.path)


@pytest.fixture(scope="module")
def tiny_backend(tiny_model) -> HFBackend:
    """The tiny model loaded once for the tests that only change how it is called."""
    return HFBackend(str(tiny_model), GenerationOptions(max_new_tokens=12), device="cpu")


def demo_answers(demo_data: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (demo_data / "val.jsonl").read_text().splitlines()]
    return {r["id"]: "<think>seen</think><answer>{:.2f} to {:.2f}</answer>".format(*r["timestamps"][0]) for r in rows}


def test_eval_tiny_model_end_to_end(tiny_model, demo_data, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "--model", str(tiny_model), "--data", str(demo_data / "val.yaml"), "-o", str(out),
                 "--batch-size", "2", "--max-new-tokens", "12", "--device", "cpu", "--by", "task"])
    assert code == 0
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    for line in lines:
        assert {"id", "video", "query", "duration", "timestamps", "response", "prediction", "parse_status",
                "iou", "source"} <= set(line)
        assert isinstance(line["response"], str) and line["parse_status"] in ("ok", "no_answer", "unparseable",
                                                                              "reversed", "out_of_range")
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["count"] == 4
    assert report["settings"]["generation"]["temperature"] == 0.0  # greedy by default
    assert report["settings"]["dataset_templates"] == {"demo": ["think"]}
    assert (out / "iou_hist.png").exists() and (out / "run.json").exists()
    assert "R1@0.5" in capsys.readouterr().out


def test_resume_after_interruption_gives_the_same_file(tiny_backend, demo_data, tmp_path):
    common = ["--model", tiny_backend.engine.model_path, "--data", str(demo_data / "val.yaml"), "--batch-size", "2",
              "--max-new-tokens", "12", "--no-plots"]
    run_eval.evaluate(eval_args(*common, "-o", str(tmp_path / "a")), lambda _: tiny_backend)

    calls = []

    class Crashing:
        processor = tiny_backend.processor

        def generate(self, requests):
            calls.append(len(requests))
            if len(calls) == 2:
                raise RuntimeError("simulated crash")
            return tiny_backend.generate(requests)

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_eval.evaluate(eval_args(*common, "-o", str(tmp_path / "b")), lambda _: Crashing())
    partial = tmp_path / "b/predictions.jsonl"
    assert len(partial.read_text().splitlines()) == 2
    with open(partial, "a") as f:
        f.write('{"id": "demo_val_00002", "resp')  # torn by the crash
    calls.clear()

    class Counting(Crashing):
        def generate(self, requests):
            calls.append(len(requests))
            return tiny_backend.generate(requests)

    run_eval.evaluate(eval_args(*common, "-o", str(tmp_path / "b")), lambda _: Counting())
    assert calls == [2]  # only the two unfinished samples were generated again
    assert partial.read_bytes() == (tmp_path / "a/predictions.jsonl").read_bytes()
    # A finished run resumes to nothing and does not load the model.
    run_eval.evaluate(eval_args(*common, "-o", str(tmp_path / "b")), lambda _: pytest.fail("model loaded"))


def test_scripted_answers_score_perfectly_and_see_the_training_prompt(tiny_backend, demo_data, tmp_path):
    backend = ScriptedBackend(tiny_backend.processor, demo_answers(demo_data))
    report = run_eval.evaluate(eval_args("--model", tiny_backend.engine.model_path, "--data",
                                         str(demo_data / "val.jsonl"), "-o", str(tmp_path), "--no-plots",
                                         "--no-think", "--fps", "1"), lambda _: backend)
    assert report["metrics"]["r1@0.7"] == 100.0 and report["metrics"]["parse_failure_rate"] == 0.0
    request = backend.requests[0]
    assert "Give only the start and end time" in request.prompt and "<|video_pad|>" in request.prompt
    assert request.frames.dtype.is_floating_point is False and request.frames.shape[1] == 3
    assert request.metadata["fps"] == 1.0  # --fps reached the metadata the model's time encoding reads
    assert report["settings"]["video_budgets"]["val"]["fps"] == 1.0


def test_video_failures_are_recorded_then_retried(tiny_backend, demo_data, tmp_path, write_jsonl):
    rows = [json.loads(line) for line in (demo_data / "val.jsonl").read_text().splitlines()][:2]
    shutil.copy(demo_data / rows[0]["video"], tmp_path / "a.mp4")
    rows[0]["video"], rows[1]["video"] = "a.mp4", "b.mp4"  # b.mp4 does not exist yet
    data = write_jsonl(tmp_path / "set.jsonl", rows)
    args = eval_args("--model", tiny_backend.engine.model_path, "--data", str(data), "-o", str(tmp_path / "out"),
                     "--no-plots")
    backend = ScriptedBackend(tiny_backend.processor, demo_answers(demo_data))
    report = run_eval.evaluate(args, lambda _: backend)
    assert report["metrics"]["count"] == 2 and report["metrics"]["parse_failures"] == 1
    assert report["parse_status"] == {"error": 1, "ok": 1}
    failed = json.loads((tmp_path / "out/predictions.jsonl").read_text().splitlines()[1])
    assert failed["parse_status"] == "video_error" and "b.mp4" in failed["error"] and failed["response"] is None
    shutil.copy(demo_data / "videos/val/00001.mp4", tmp_path / "b.mp4")
    report = run_eval.evaluate(args, lambda _: backend)
    assert report["metrics"]["parse_failures"] == 0 and len(backend.requests) == 2


def test_changed_settings_refuse_to_resume(tiny_backend, demo_data, tmp_path):
    backend = ScriptedBackend(tiny_backend.processor, {})
    common = ["--model", tiny_backend.engine.model_path, "--data", str(demo_data / "val.yaml"), "-o", str(tmp_path),
              "--no-plots", "--limit", "1"]
    run_eval.evaluate(eval_args(*common), lambda _: backend)
    run_eval.evaluate(eval_args(*common, "--batch-size", "3", "--limit", "2"), lambda _: backend)  # harmless
    with pytest.raises(ValueError, match="generation"):
        run_eval.evaluate(eval_args(*common, "--max-new-tokens", "7"), lambda _: backend)
    assert main(["eval", *common, "--template", "answer_only"]) == 2
    run_eval.evaluate(eval_args(*common, "--max-new-tokens", "7", "--overwrite"), lambda _: backend)


def test_missing_duration_is_the_length_the_model_sees(tiny_backend, demo_data, tmp_path, write_jsonl):
    row = json.loads((demo_data / "val.jsonl").read_text().splitlines()[0])
    expected = row.pop("duration")
    row["video"] = str(demo_data / row["video"])
    data = write_jsonl(tmp_path / "set.jsonl", [row])
    backend = ScriptedBackend(tiny_backend.processor, {row["id"]: f"<answer>0 to {10 * expected}</answer>"})
    run_eval.evaluate(eval_args("--model", tiny_backend.engine.model_path, "--data", str(data), "-o",
                                str(tmp_path / "out"), "--no-plots", "--template", "{query} lasts {duration} s"),
                      lambda _: backend)
    line = json.loads((tmp_path / "out/predictions.jsonl").read_text())
    assert line["duration"] == pytest.approx(expected)
    assert f"lasts {expected:.2f} s" in backend.requests[0].prompt
    assert line["prediction"] == [0.0, pytest.approx(expected)]  # clipped to the video, as in training
    assert line["parse_status"] == "out_of_range"
