"""One settings path: eval of a checkpoint takes its run's settings, flags change them visibly, training and eval
build the same inputs, and the defaults YAML is what every command reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import AutoProcessor
from verl.utils.dataset.rl_dataset import get_dataset_class

from verl_video.pipeline.run_settings import CONFIG_DIR
from verl_video.video.settings import read_video_defaults
from verl_video.evaluation import run_eval
from verl_video.verl_adapter.run_record import write_record

from eval_helpers import ScriptedBackend, eval_args  # noqa: I001  (tests/evaluation is on sys.path)

ANSWER_ONLY = "Give only the start and end time"


@pytest.fixture(scope="module")
def processor(tiny_model):
    return AutoProcessor.from_pretrained(tiny_model)


def compose_config(*overrides: str, config_dir: Path = CONFIG_DIR):
    """The trainer config exactly as `python -m verl_video.main` composes it."""
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name="video_grpo", overrides=list(overrides))


def make_checkpoint(root: Path, demo_data: Path, tiny_model: Path, *overrides: str) -> Path:
    """A run folder laid out as training leaves it: run.json from the composed config, then a merged checkpoint."""
    checkpoints = root / "checkpoints"
    config = compose_config(
        "experiment=tiny_tvg_cpu", f"data.train_files={demo_data / 'train.yaml'}",
        f"data.val_files={demo_data / 'val.yaml'}", f"trainer.default_local_dir={checkpoints}", *overrides,
    )  # fmt: skip
    write_record(OmegaConf.to_container(config, resolve=True), str(checkpoints))  # as verl_video.main.run does
    actor = checkpoints / "global_step_2" / "actor"
    actor.mkdir(parents=True)
    (actor / "fsdp_config.json").write_text("{}")
    # `python -m verl.model_merger merge --local_dir actor --target_dir actor/huggingface_merged` writes this.
    shutil.copytree(tiny_model, actor / "huggingface_merged")
    return checkpoints / "global_step_2"


def answers(demo_data: Path, template: str = "<answer>{:.2f} to {:.2f}</answer>") -> dict[str, str]:
    rows = [json.loads(line) for line in (demo_data / "val.jsonl").read_text().splitlines()]
    return {r["id"]: template.format(*r["timestamps"][0]) for r in rows}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, demo_data, tiny_model) -> Path:
    """A run that trained with 4 frames, the answer-only prompt and a reward parser reading the first interval."""
    return make_checkpoint(
        tmp_path_factory.mktemp("run"), demo_data, tiny_model, "data.video.max_frames=4",
        "data.video.prompt_template=answer_only", "+reward.reward_kwargs.parser.match=first",
    )  # fmt: skip


def test_eval_of_a_checkpoint_uses_the_runs_settings(checkpoint, demo_data, tiny_model, processor, tmp_path, capsys):
    # The answer holds two intervals: the true one first, a wrong one last.
    backend = ScriptedBackend(processor, answers(demo_data, "<answer>{:.2f} to {:.2f}, then 0.00 to 0.10</answer>"))
    report = run_eval.evaluate(eval_args("--model", str(checkpoint), "-o", str(tmp_path / "run"), "--no-plots"),
                               lambda _: backend)
    assert f"settings from run {checkpoint.parent / 'run.json'}" in capsys.readouterr().err
    # No --data: the run's validation files; frames and prompt as the run trained.
    assert len(backend.requests) == 4
    assert [r.frames.shape[0] for r in backend.requests] == [4, 4, 4, 4]
    assert all(ANSWER_ONLY in r.prompt and "<think>" not in r.prompt for r in backend.requests)
    assert report["metrics"]["r1@0.7"] == 100.0  # graded with the run's reward parser (first interval)

    # The same model outside a run: the YAML's defaults (think prompt, 2 fps up to 768 frames, last interval).
    plain = ScriptedBackend(processor, backend.answers)
    report = run_eval.evaluate(eval_args("--model", str(tiny_model), "--data", str(demo_data / "val.yaml"), "-o",
                                         str(tmp_path / "plain"), "--no-plots"), lambda _: plain)
    assert "settings from" in capsys.readouterr().err and report["metrics"]["r1@0.7"] == 0.0
    assert all(r.frames.shape[0] >= 16 and "<think>" in r.prompt for r in plain.requests)


@pytest.mark.parametrize("inside", ["", "actor", "actor/huggingface_merged"])
def test_flags_change_a_runs_setting_and_say_so(checkpoint, demo_data, processor, tmp_path, capsys, inside):
    backend = ScriptedBackend(processor, answers(demo_data))
    run_eval.evaluate(eval_args("--model", str(checkpoint / inside), "-o", str(tmp_path), "--no-plots",
                                "--max-frames", "8", "--min-frames", "4", "--think", "--match", "last"),
                      lambda _: backend)
    err = capsys.readouterr().err
    assert "max_frames: run 4 -> flag 8" in err and "prompt_template: run answer_only -> flag think" in err
    assert "parser.match: run first -> flag last" in err
    assert "min_frames" not in err  # given, but the same as the run's: nothing to report
    assert [r.frames.shape[0] for r in backend.requests] == [8, 8, 8, 8]
    assert all("<think>" in r.prompt for r in backend.requests)


def test_training_rows_and_eval_requests_are_the_same_inputs(checkpoint, demo_data, processor, tmp_path):
    record = json.loads((checkpoint.parent / "run.json").read_text())
    config = OmegaConf.create(record["config"]).data
    dataset = get_dataset_class(config)(data_files=[str(demo_data / "val.yaml")], tokenizer=processor.tokenizer,
                                        config=config, processor=processor)
    backend = ScriptedBackend(processor, {})
    run_eval.evaluate(eval_args("--model", str(checkpoint), "-o", str(tmp_path), "--no-plots"), lambda _: backend)
    requests = {r.id: r for r in backend.requests}
    assert len(dataset) == len(requests) == 4
    for index in range(len(dataset)):
        row = dataset[index]
        request = requests[row["extra_info"]["id"]]
        # What verl's agent loop renders and decodes for the row.
        prompt = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
        _, videos, _ = dataset._process_multi_modal_info(row["raw_prompt"], None, config)
        (frames, metadata), = videos
        assert request.prompt == prompt
        assert torch.equal(request.frames, frames)
        assert request.metadata == metadata  # fps and frame indices: the frames' times


def test_a_default_changed_in_the_yaml_reaches_training_and_eval(demo_data, tiny_model, processor, tmp_path):
    config_dir = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config_dir)
    yaml_file = config_dir / "video_grpo.yaml"
    text = yaml_file.read_text()
    edited = text.replace("    max_frames: 768\n", "    max_frames: 6\n").replace(
        "    prompt_template: think\n", "    prompt_template: answer_only\n")
    assert edited.count("max_frames: 6") == edited.count("prompt_template: answer_only") == 1
    yaml_file.write_text(edited)
    assert read_video_defaults(yaml_file)["max_frames"] == 6  # what the Python defaults are read with

    config = compose_config(f"data.val_files={demo_data / 'val.yaml'}", config_dir=config_dir).data
    dataset = get_dataset_class(config)(data_files=[str(demo_data / "val.yaml")], tokenizer=processor.tokenizer,
                                        config=config, processor=processor)
    row = dataset[0]
    _, ((frames, _),), _ = dataset._process_multi_modal_info(row["raw_prompt"], None, config)
    assert frames.shape[0] <= 6 and ANSWER_ONLY in row["raw_prompt"][-1]["content"][-1]["text"]

    backend = ScriptedBackend(processor, {})
    run_eval.evaluate(eval_args("--model", str(tiny_model), "--data", str(demo_data / "val.yaml"), "-o",
                                str(tmp_path / "eval"), "--no-plots", "--config-dir", str(config_dir)),
                      lambda _: backend)
    assert all(r.frames.shape[0] <= 6 and ANSWER_ONLY in r.prompt for r in backend.requests)
    assert max(r.frames.shape[0] for r in backend.requests) == 6
