"""`verl-video score` on a file mixing tasks: each task's metrics apart, grounding's R1@m from grounding lines only."""

from __future__ import annotations

import json

import pytest

from verl_video.cli import main as cli_main

BOXES = [[0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4]]


def test_a_mixed_file_reports_each_task_apart(tmp_path, capsys):
    lines = [
        {"id": "g1", "timestamps": [[2, 6]], "duration": 10, "response": "<answer>2 to 6</answer>"},
        {"id": "g2", "timestamps": [[2, 6]], "duration": 10, "response": "<answer>7 to 9</answer>"},
        {"id": "m1", "task": "mcq", "ground_truth": {"answer_kind": "choice", "answer": "B", "num_options": 4},
         "response": "<answer>B</answer>"},
        {"id": "m2", "task": "mcq", "ground_truth": {"answer_kind": "choice", "answer": "B", "num_options": 4},
         "response": "no idea"},
        # A perfect tracking answer: were its box IoU averaged into grounding, R1@0.5 would read 66.67.
        {"id": "t1", "task": "tracking", "ground_truth": {"answer_kind": "boxes", "boxes": BOXES},
         "response": f"<answer>{BOXES}</answer>"},
        {"id": "t2", "task": "tracking", "ground_truth": {"answer_kind": "boxes", "boxes": BOXES},
         "response": f"<answer>{BOXES[:1]}</answer>"},
    ]  # fmt: skip
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli_main(["score", str(path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "# mcq: 2 samples" in out and "| 0.5000 | 0.5000 |" in out  # accuracy, parse_ok
    assert "parse status counts: no_answer: 1, ok: 1" in out
    assert "# tracking: 2 samples" in out and "parse status counts: ok: 1, wrong_count: 1" in out
    tracking_table = out.split("# tracking: 2 samples")[1].split("parse status")[0]
    assert "| 0.5000 | 0.5000 | 0.5000 |" in tracking_table  # box_iou, box_success@0.5, parse_ok
    grounding = out.split("# Temporal grounding scores")[1]
    assert "50.00" in grounding and "66.67" not in grounding  # R1@0.5 over the two grounding lines only


def test_a_task_line_without_its_ground_truth_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"task": "mcq", "response": "<answer>B</answer>"}) + "\n")
    assert cli_main(["score", str(path)]) == 2
    assert "preds.jsonl:1: field 'ground_truth'" in capsys.readouterr().err


def test_eval_of_a_mixture_writes_each_tasks_truth_and_scores_each_task_apart(tiny_model, demo_data, tmp_path, capsys):
    from eval_helpers import ScriptedBackend, eval_args  # noqa: I001  (tests/evaluation is on sys.path)

    from verl_video.evaluation import run_eval
    from verl_video.evaluation.eval_set import load_eval_set
    from verl_video.evaluation.task_scores import TASK_JSON
    from verl_video.tasks import get_task

    data = demo_data / "val_mix.yaml"
    samples = load_eval_set(str(data))
    # The right answer for the first two samples of each dataset, nothing for the other two.
    answers, seen = {}, {}
    for s in samples:
        seen[s.dataset] = seen.get(s.dataset, 0) + 1
        if seen[s.dataset] <= 2:
            answers[s.id] = "<think>seen</think>" + get_task(s.record.task).reference_answer(s.record, s.record.duration)
    backend = None

    def factory(_model: str) -> ScriptedBackend:
        nonlocal backend
        from transformers import AutoProcessor

        backend = ScriptedBackend(AutoProcessor.from_pretrained(tiny_model), answers)
        return backend

    out = tmp_path / "eval"
    result = run_eval.evaluate(eval_args("--model", str(tiny_model), "--data", str(data), "-o", str(out), "--no-plots"),
                               factory)  # fmt: skip
    lines = {line["id"]: line for line in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert len(lines) == len(samples) == 16
    for s in samples:
        line = lines[s.id]
        if s.record.task == "tvg":
            assert "ground_truth" not in line and line["iou"] == (1.0 if s.id in answers else 0.0)
        else:  # the ground truth the training row would carry, so that `score` can grade the line again
            truth = get_task(s.record.task).ground_truth(s.record, s.record.duration)
            assert line["ground_truth"] == json.loads(json.dumps(truth))
            assert line["parse_status"] == ("ok" if s.id in answers else "no_answer")
    per_task = json.loads((out / TASK_JSON).read_text())
    assert per_task["mcq"]["metrics"] == {"accuracy": 0.5, "parse_ok": 0.5}
    assert per_task["grounded_qa"]["metrics"]["evidence_iou"] == pytest.approx(0.5, abs=0.02)
    assert per_task["tracking"]["metrics"]["box_success@0.5"] == 0.5
    assert per_task["tracking"]["parse_status"] == {"no_answer": 2, "ok": 2}
    # Grounding's report counts the four grounding lines only; a tracking IoU never enters R1@m.
    assert json.loads((out / "metrics.json").read_text())["metrics"]["count"] == 4
    assert result["metrics"]["r1@0.5"] == 50.0 and result["tasks"]["mcq"]["accuracy"] == 0.5
    # `score` on the eval's file gives the same per-task numbers.
    capsys.readouterr()
    assert cli_main(["score", str(out / "predictions.jsonl"), "-o", str(tmp_path / "score"), "--no-plots"]) == 0
    assert json.loads((tmp_path / "score" / TASK_JSON).read_text()) == per_task


def _means(rows: list[dict]) -> dict[str, float]:
    return {name: sum(r[name] for r in rows) / len(rows) for name in rows[0]}


def test_each_task_is_broken_down_and_plotted_by_its_own_metrics(tmp_path):
    from PIL import Image

    from verl_video.evaluation.score import score_all, show_and_write
    from verl_video.evaluation.task_scores import TASK_JSON, plot_name
    from verl_video.rewards.grounding_metrics import Convention
    from verl_video.rewards.parser import ParserConfig

    mcq = {"answer_kind": "choice", "answer": "B", "num_options": 4}
    track = {"answer_kind": "boxes", "boxes": BOXES}
    quarter = [[0.1, 0.1, 0.2, 0.2], BOXES[1]]  # first box inside the truth, a quarter of its area: IoU 0.25
    # Each line with the metrics it must score (worked out by hand; `expect` is not written to the file).
    cases = [
        ({"task": "mcq", "source": "nextgqa", "duration": 20, "qtype": "why", "response": "<answer>B</answer>"},
         {"accuracy": 1.0, "parse_ok": 1.0}, "ok"),
        ({"task": "mcq", "source": "nextgqa", "duration": 20, "qtype": "how", "response": "<answer>C</answer>"},
         {"accuracy": 0.0, "parse_ok": 1.0}, "ok"),
        ({"task": "mcq", "source": "nextgqa", "duration": 25, "qtype": "why", "response": "I think B"},
         {"accuracy": 0.0, "parse_ok": 0.0}, "no_answer"),
        ({"task": "mcq", "source": "star", "duration": 200, "qtype": "why", "response": "<answer>B</answer>"},
         {"accuracy": 1.0, "parse_ok": 1.0}, "ok"),
        ({"task": "tracking", "source": "got", "duration": 10, "response": f"<answer>{BOXES}</answer>"},
         {"box_iou": 1.0, "box_success@0.5": 1.0, "parse_ok": 1.0}, "ok"),
        ({"task": "tracking", "source": "got", "duration": 10, "response": f"<answer>{BOXES[:1]}</answer>"},
         {"box_iou": 0.0, "box_success@0.5": 0.0, "parse_ok": 0.0}, "wrong_count"),
        ({"task": "tracking", "source": "lasot", "duration": 10, "response": f"<answer>{quarter}</answer>"},
         {"box_iou": 0.625, "box_success@0.5": 0.5, "parse_ok": 1.0}, "ok"),
    ]  # fmt: skip
    lines = [{"id": "g1", "source": "charades", "timestamps": [[2, 6]], "duration": 10,
              "response": "<answer>2 to 6</answer>"},
             {"id": "g2", "source": "anet", "timestamps": [[2, 6]], "duration": 10, "response": "<answer>7 to 9</answer>"}]
    lines += [{**line, "id": f"x{i}", "ground_truth": mcq if line["task"] == "mcq" else track}
              for i, (line, _, _) in enumerate(cases)]  # fmt: skip
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    report, tasks = score_all(str(path), Convention(), ParserConfig(), fields=["qtype"])
    out = tmp_path / "report"
    written = show_and_write(report, tasks, str(out))
    per_task = json.loads((out / TASK_JSON).read_text())
    for task in ("mcq", "tracking"):
        mine = [(line, expect, status) for line, expect, status in cases if line["task"] == task]
        by_source = per_task[task]["breakdowns"]["source"]
        assert set(by_source) == {line["source"] for line, _, _ in mine}
        for source, got in by_source.items():
            rows = [(expect, status) for line, expect, status in mine if line["source"] == source]
            assert got["count"] == len(rows)
            assert got["metrics"] == pytest.approx(_means([expect for expect, _ in rows]))
            assert got["parse_failures"] == sum(status != "ok" for _, status in rows)
            assert sum(got["parse_status"].values()) == len(rows)
        # Grounding's moment dimensions mean nothing here; duration buckets and named fields do.
        assert set(per_task[task]["breakdowns"]) <= {"source", "duration", "qtype"}
    assert set(per_task["mcq"]["breakdowns"]["duration"]) == {"0-30s", "120-300s"}
    assert per_task["mcq"]["breakdowns"]["duration"]["0-30s"]["metrics"]["accuracy"] == pytest.approx(1 / 3)
    assert per_task["mcq"]["breakdowns"]["qtype"]["why"]["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert "## tracking by source" in (out / "task_metrics.md").read_text()
    # Grounding's report: the two grounding lines and their sources only, R1@0.5 untouched by any other task.
    grounding = json.loads((out / "metrics.json").read_text())
    assert grounding["metrics"]["count"] == 2 and grounding["metrics"]["r1@0.5"] == 50.0
    assert set(grounding["breakdowns"]["source"]) == {"charades", "anet"}
    for name in ("iou_hist.png", "by_source.png", plot_name("mcq"), plot_name("tracking")):
        assert str(out / name) in written
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 0 and image.size[1] > 0
