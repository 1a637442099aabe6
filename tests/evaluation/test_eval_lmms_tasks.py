"""The lmms-eval task folder, checked without lmms-eval: YAMLs reference existing hooks; hooks use our stack."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from verl_video.rewards.grounding_metrics import summarize

TASKS = Path(__file__).resolve().parents[2] / "third_party" / "lmms_eval_tasks" / "verl_video_tvg"


@pytest.fixture(scope="module")
def utils():
    spec = importlib.util.spec_from_file_location("vv_lmms_utils", TASKS / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Loader(yaml.SafeLoader):
    """lmms-eval's `!function file.name` tag, kept as the string 'file.name'."""


_Loader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))


def _load(name: str) -> dict:
    return yaml.load((TASKS / name).read_text(), Loader=_Loader)


@pytest.mark.parametrize("task", ["vv_charades_sta.yaml", "vv_activitynet.yaml", "vv_tvgbench.yaml"])
def test_task_yamls_reference_existing_hooks(task, utils):
    config = _load(task)
    assert config["task"] == task.removesuffix(".yaml")
    assert config["dataset_kwargs"]["data_files"]["test"].endswith(".jsonl")
    base = _load(config["include"])
    assert base["dataset_path"] == "json" and base["test_split"] == "test"
    # Each task names its own video hook (its own video-folder variable): the tag runs all three at once.
    assert config["doc_to_visual"] != base["doc_to_visual"]
    hooks = [config["doc_to_visual"]] + [base[k] for k in ("doc_to_text", "doc_to_target", "process_results")]
    hooks += [m["aggregation"] for m in base["metric_list"]]
    for hook in hooks:
        assert hook.startswith("!function utils.") and callable(getattr(utils, hook.split(".", 1)[1]))
    assert [m["metric"] for m in base["metric_list"]] == list(utils.METRICS)
    assert base["generation_kwargs"]["do_sample"] is False


def test_hooks_use_our_prompt_parser_and_metrics(utils, tmp_path, monkeypatch):
    (tmp_path / "v.mp4").write_bytes(b"")
    doc = {"video": "v.mp4", "query": "a person opens a door.", "timestamps": [[2.0, 6.0]], "duration": 30.0}
    monkeypatch.setenv("VERL_VIDEO_VIDEO_ROOT", str(tmp_path))
    for name in ("VERL_VIDEO_CHARADES_STA_ROOT", "VERL_VIDEO_ACTIVITYNET_ROOT", "VERL_VIDEO_TVGBENCH_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert utils.doc_to_visual(doc) == [str(tmp_path / "v.mp4")]
    with pytest.raises(FileNotFoundError, match="VERL_VIDEO_VIDEO_ROOT"):
        utils.doc_to_visual({**doc, "video": "missing.mp4"})
    text = utils.doc_to_text(doc, {"template": "think"})
    assert "a person opens a door." in text and "<video>" not in text and "<think>" in text
    assert "<think>" not in utils.doc_to_text(doc, {"template": "answer_only"})
    assert utils.doc_to_target(doc) == "2.00 to 6.00"

    responses = ["<think>x</think><answer>2.00 to 6.00</answer>", "<answer>4 to 6</answer>", "no answer"]
    items = [utils.process_results(doc, [r])["r1@0.5"] for r in responses]
    assert [i["parsed"] for i in items] == [True, True, False]
    expected = summarize([1.0, 0.5, 0.0], [True, True, False])
    assert utils.r1_at_05(items) == expected["r1@0.5"] == pytest.approx(200 / 3)
    assert utils.r1_at_07(items) == pytest.approx(100 / 3) and utils.r1_at_03(items) == pytest.approx(200 / 3)
    assert utils.miou(items) == pytest.approx(50.0)
    assert utils.parse_failure_rate(items) == pytest.approx(100 / 3)


def test_each_task_reads_its_own_video_folder(utils, tmp_path, monkeypatch):
    doc = {"video": "v.mp4", "query": "q", "timestamps": [[2.0, 6.0]], "duration": 30.0}
    hooks = {}
    for task in ("vv_charades_sta.yaml", "vv_activitynet.yaml", "vv_tvgbench.yaml"):
        config = _load(task)
        hooks[config["task"]] = getattr(utils, config["doc_to_visual"].split(".", 1)[1])
    for task, hook in hooks.items():
        folder = tmp_path / task
        folder.mkdir()
        (folder / "v.mp4").write_bytes(b"")
        monkeypatch.setenv(utils.VIDEO_ROOTS[task], str(folder))
    monkeypatch.setenv("VERL_VIDEO_VIDEO_ROOT", str(tmp_path / "elsewhere"))
    for task, hook in hooks.items():
        assert hook(doc) == [str(tmp_path / task / "v.mp4")]
    monkeypatch.delenv(utils.VIDEO_ROOTS["vv_tvgbench"])
    with pytest.raises(FileNotFoundError, match=utils.VIDEO_ROOTS["vv_tvgbench"]):
        hooks["vv_tvgbench"](doc)


def test_a_clip_record_is_refused_not_shown_whole(utils, tmp_path, monkeypatch):
    (tmp_path / "long.mp4").write_bytes(b"")
    monkeypatch.setenv("VERL_VIDEO_CHARADES_STA_ROOT", str(tmp_path))
    # Ground truth counts from the clip start (40 s into the file): against the whole file it would be wrong.
    clip = {"id": "c1", "video": "long.mp4", "query": "q", "timestamps": [[2.0, 6.0]], "duration": 20.0,
            "video_start": 40.0, "video_end": 60.0}
    with pytest.raises(ValueError, match="c1: a clip record .*verl-video eval"):
        utils.charades_sta_visual(clip)
    with pytest.raises(ValueError, match="clip record"):
        utils.doc_to_visual({**clip, "video_start": None})
    # The text and scoring hooks still work on the record (lmms-eval builds all of them per document).
    assert "q" in utils.doc_to_text(clip, {"template": "think"}) and utils.doc_to_target(clip) == "2.00 to 6.00"
    assert utils.process_results(clip, ["<answer>2 to 6</answer>"])["miou"]["iou"] == 1.0


GQA = TASKS.parent / "verl_video_gqa"


def test_the_grounded_qa_task_uses_the_task_registry(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("vv_lmms_gqa_utils", GQA / "utils.py")
    gqa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gqa)
    config = yaml.load((GQA / "vv_nextgqa.yaml").read_text(), Loader=_Loader)
    hooks = [config[k] for k in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results")]
    hooks += [m["aggregation"] for m in config["metric_list"]]
    assert all(hook.startswith("!function utils.") and callable(getattr(gqa, hook.split(".", 1)[1])) for hook in hooks)
    assert [m["metric"] for m in config["metric_list"]] == list(gqa.METRICS)
    # A row of VideoChat-R1's nextgqa_val.json, as lmms-eval's json loader hands it over.
    doc = {"id": "4882821564_1", "video": "1104/4882821564.mp4", "question": "why did the boy pick up the present",
           "options": ["(A) share", "(B) approach", "(C) unwrap it"], "answer": "(C)", "duration": 90,
           "glue": [[13.8, 29.8]], "type": "CW"}  # fmt: skip
    (tmp_path / "1104").mkdir()
    (tmp_path / "1104" / "4882821564.mp4").write_bytes(b"")
    monkeypatch.setenv("VERL_VIDEO_NEXTGQA_ROOT", str(tmp_path))
    assert gqa.doc_to_visual(doc) == [str(tmp_path / "1104" / "4882821564.mp4")]
    text = gqa.doc_to_text(doc, {"style": "think"})
    assert "(C) unwrap it" in text and "<glue>" in text and "<video>" not in text
    right = gqa.process_results(doc, [gqa.doc_to_target(doc)])
    wrong = gqa.process_results(doc, ["<answer>A</answer><glue>[(50, 60)]</glue>"])
    assert right == {"accuracy": 1.0, "parse_ok": 1.0, "evidence_iou": 1.0, "evidence_iou@0.5": 1.0}
    assert wrong["accuracy"] == 0.0 and wrong["evidence_iou"] == 0.0 and wrong["parse_ok"] == 1.0
    assert gqa.mean_percent([right["accuracy"], wrong["accuracy"]]) == 50.0
