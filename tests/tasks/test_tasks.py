"""The task registry: each built-in task validates its fields, builds a ground truth its rewards read, renders
its prompts and computes its metrics; a user task file registers through `modules`."""

from __future__ import annotations

import textwrap

import pytest

from verl_video.video.probe import VideoError
from verl_video.annotations.records import Record
from verl_video.rewards import RewardScorer, Sample
from verl_video.rewards.components import answer_status
from verl_video.tasks import TASKS, PROMPT_STYLES, get_task, load_task_modules
from verl_video.tasks.tracking import box_frame_indices

MCQ = TASKS["mcq"]
GQA = TASKS["grounded_qa"]
TRACK = TASKS["tracking"]


def record(query="why did the boy move", timestamps=(), **extra) -> Record:
    return Record(id="r", video="v.mp4", query=query, timestamps=[list(t) for t in timestamps], duration=90.0,
                           extra=extra, origin="f.json[3]")


def qa_record(**changes):
    fields = {"options": ["(A) share", "(B) approach", "(C) unwrap it"], "answer": "(C)", "timestamps": [(13.8, 29.8)]}
    fields.update(changes)
    timestamps = fields.pop("timestamps")
    return record(timestamps=timestamps, **fields)


BOXES = [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.2, 0.2, 0.4, 0.4], [0.3, 0.3, 0.5, 0.5]]


def row_sample(task, rec, response, duration=90.0):
    return Sample(response, task.ground_truth(rec, duration), {"task": task.name})


def test_every_builtin_task_declares_prompts_preset_and_fields():
    scorer = RewardScorer()
    for task in TASKS.values():
        assert set(PROMPT_STYLES) <= set(task.prompts), task.name
        assert task.default_preset is None or task.default_preset in scorer.presets, task.name
        assert task.fields, task.name


@pytest.mark.parametrize(
    ("task", "rec", "field"),
    [
        (MCQ, record(options=["(A) x", "(B) y"]), "answer"),  # missing field
        (MCQ, qa_record(answer="(E)"), "answer"),  # not among the options
        (MCQ, qa_record(options="A or B"), "options"),
        (GQA, qa_record(timestamps=[]), "timestamps"),
        (TRACK, record(query="sloth", boxes=[[0.1, 0.1, 0.3, 0.3], [0.1, 0.1, 1.3, 0.3], [0, 0, 1, 1]]), "boxes[1]"),
        (TRACK, record(query="sloth", boxes=[[0.1, 0.1, 0.3, 0.3], [0.5, 0.1, 0.3, 0.3], [0, 0, 1, 1]]), "boxes[1]"),
        (TRACK, record(query="sloth", boxes=[[0.1, 0.1, 0.3, 0.3]]), "boxes"),
        (TRACK, record(query="sloth", boxes=BOXES, box_frames="every_other"), "box_frames"),
        (TASKS["tvg"], record(), "timestamps"),
    ],
)
def test_validation_names_the_bad_field(task, rec, field):
    problems = task.validate(rec)
    assert problems and problems[0][0] == field, problems


def test_good_records_have_no_problems():
    assert MCQ.validate(qa_record()) == [] and GQA.validate(qa_record()) == []
    assert TRACK.validate(record(query="sloth", boxes=BOXES)) == []
    assert TRACK.video_problems(record(query="sloth", boxes=BOXES), 2) == [("boxes", "4 boxes need 3 frames, the video has 2")]
    assert TASKS["tvg"].validate(record(timestamps=[(1.0, 2.0)])) == []


def test_mcq_truth_scores_the_letter_and_rejects_letters_beyond_the_options():
    rec = qa_record()
    assert row_sample(MCQ, rec, "<think>x</think><answer>C</answer>").truth["answer"] == "C"
    assert MCQ.metrics(row_sample(MCQ, rec, "<answer>(C)</answer>"))["accuracy"] == 1.0
    assert MCQ.metrics(row_sample(MCQ, rec, "<answer>B</answer>"))["accuracy"] == 0.0
    beyond = row_sample(MCQ, rec, "<answer>D</answer>")  # 3 options: D names none of them
    assert answer_status(beyond) == "unparseable" and MCQ.metrics(beyond)["parse_ok"] == 0.0


def test_grounded_qa_scores_merged_evidence_windows():
    rec = qa_record(timestamps=[(10.0, 20.0), (30.0, 40.0)])
    exact = row_sample(GQA, rec, "<answer>C</answer><glue>[(10, 15), (14, 20), (30, 40)]</glue>")
    half = row_sample(GQA, rec, "<answer>A</answer><glue>[(10, 20)]</glue>")
    assert GQA.metrics(exact) == {"accuracy": 1.0, "parse_ok": 1.0, "evidence_iou": 1.0, "evidence_iou@0.5": 1.0}
    assert GQA.metrics(half)["evidence_iou"] == pytest.approx(0.5) and GQA.metrics(half)["accuracy"] == 0.0


def test_tracking_scores_boxes_of_the_asked_frames_and_zero_for_a_wrong_count():
    rec = record(query="sloth", boxes=BOXES)
    truth = TRACK.ground_truth(rec, None)
    assert truth["first_box"] == BOXES[0] and truth["boxes"] == BOXES[1:]
    perfect = row_sample(TRACK, rec, f"<answer>{BOXES[1:]}</answer>")
    assert TRACK.metrics(perfect) == {"box_iou": 1.0, "box_success@0.5": 1.0, "parse_ok": 1.0}
    short = row_sample(TRACK, rec, f"<answer>{BOXES[1:3]}</answer>")
    assert TRACK.metrics(short)["box_iou"] == 0.0 and answer_status(short) == "wrong_count"
    scored = RewardScorer()("got", f"<answer>{BOXES[1:3]}</answer>", truth, {"task": "tracking", "reward_preset": "tracking"})
    assert scored["box_iou"] == 0.0 and scored["parse_wrong_count"] == 1.0


def test_videochat_r1_mapping_shows_its_seven_frames():
    n = 121
    loader = [0] + [int(i * (n - 1) / 6) for i in range(1, 6)] + [n - 1]  # VideoChat-R1's evaluate_tracking.py
    rec = record(query="sloth", boxes=[BOXES[0]] * 8)
    assert TRACK.frame_indices(rec, n) == loader
    assert box_frame_indices(n, 8, "uniform") == [int(j * (n - 1) / 7) for j in range(8)]
    with pytest.raises(VideoError, match="v.mp4: 8 boxes need 7 frames"):
        TRACK.frame_indices(rec, 5)


def test_prompts_show_the_task_fields():
    mcq = MCQ.render_prompt(record(options=["share", "unwrap"], answer=1), "no_think", 90.0)
    assert "(A) share\n(B) unwrap" in mcq and mcq.startswith("<video>")
    track = TRACK.render_prompt(record(query="sloth", boxes=BOXES), "think", None)
    assert '"sloth"' in track and "[0.100, 0.100, 0.300, 0.300]" in track and "3 boxes" in track


def test_a_user_task_file_registers_and_a_clash_is_refused(tmp_path, user_registrations_undone):
    path = tmp_path / "counting_task.py"
    path.write_text(textwrap.dedent('''
        from verl_video.tasks import Task, register_task

        @register_task
        class Counting(Task):
            name = "counting_test"
            fields = ("query", "count")
            default_preset = "mcq"
            prompts = {"think": "<video>{query}", "no_think": "<video>{query}"}

            def ground_truth(self, record, duration):
                return {"answer_kind": "choice", "answer": str(record.extra["count"])}

            def metrics(self, sample):
                return {}
    '''))
    load_task_modules([str(path)])
    task = get_task("counting_test")
    assert task.validate(record(query="how many")) == [("count", "missing field")]
    clash = tmp_path / "clash.py"
    clash.write_text("from verl_video.tasks import Task, register_task\n\n@register_task\nclass Other(Task):\n    name = 'mcq'\n")
    with pytest.raises(ValueError, match="already registered"):
        load_task_modules([str(clash)])
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")


def test_the_worked_example_of_docs_tasks_md_works(tmp_path, user_registrations_undone):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "counting_doc.py").write_text(code)
    load_task_modules([str(tmp_path / "counting_doc.py")])
    task = get_task("counting")
    rec = record(query="the ball bounces", count=3)
    assert task.validate(rec) == [] and task.validate(record(query="x", count=-1)) == [("count", "must be a non-negative integer, got -1")]
    scorer = RewardScorer()  # the file registered its preset itself
    extra = {"task": "counting", "reward_preset": task.default_preset, "prompt_template": "answer_only", "think": False}
    right = scorer("c", task.reference_answer(rec, None), task.ground_truth(rec, None), extra)
    wrong = scorer("c", "<answer>three</answer>", task.ground_truth(rec, None), extra)
    assert right["count_exact"] == 1.0 and right["parse_ok"] == 1.0 and right["score"] == 2.0
    assert wrong["count_exact"] == 0.0 and wrong["parse_unparseable"] == 1.0
    assert "How many times" in task.render_prompt(rec, "think", None)


def test_scored_rows_carry_their_own_tasks_metrics_and_nan_for_the_others():
    import math

    rec = record(query="sloth", boxes=BOXES)
    row = RewardScorer()("got", f"<answer>{BOXES[1:]}</answer>", TRACK.ground_truth(rec, None), {"task": "tracking"})
    assert row["tracking/box_iou"] == 1.0 and row["tracking/box_success@0.5"] == 1.0
    assert math.isnan(row["tvg/r1@0.5"]) and math.isnan(row["mcq/accuracy"])  # never averaged into another task


def test_each_tasks_reference_answer_scores_full_marks():
    cases = [
        (TASKS["tvg"], record(timestamps=[(1.0, 2.5)])),
        (MCQ, qa_record()),
        (GQA, qa_record(timestamps=[(10.0, 20.0), (30.0, 40.0)])),
        (TRACK, record(query="sloth", boxes=BOXES)),
    ]
    for task, rec in cases:
        sample = row_sample(task, rec, task.reference_answer(rec, 90.0))
        assert all(v == 1.0 for v in task.metrics(sample).values()), (task.name, task.metrics(sample))
