"""Where a command's settings come from: the defaults YAML (composed as training composes it) or a saved run."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from verl_video.pipeline.run_settings import (
    add_settings_arguments,
    find_run_record,
    settings_from_args,
    settings_from_defaults,
    settings_from_run,
)
from verl_video.video.settings import DEFAULTS_FILE, VideoBudget, VideoDataSettings
from verl_video.verl_adapter.run_record import write_record


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return parser.parse_args(list(argv))


def test_python_defaults_are_the_yaml_block_and_what_training_composes():
    raw = yaml.safe_load(DEFAULTS_FILE.read_text())
    block = {k: v for k, v in raw["data"]["video"].items() if k != "seed"}
    section = VideoDataSettings().as_section()
    assert {k: section[k] for k in block} == block
    assert section["seed"] == raw["trainer"]["seed"]  # `${trainer.seed}` resolved
    composed = settings_from_defaults()
    assert composed.video == VideoDataSettings() and composed.seed == raw["trainer"]["seed"]
    assert composed.max_response_length == raw["data"]["max_response_length"]


def test_overrides_are_the_training_commands():
    settings = settings_from_defaults(["experiment=tiny_tvg_cpu", "max_frames=64"])
    tiny = yaml.safe_load((DEFAULTS_FILE.parent / "experiment" / "tiny_tvg_cpu.yaml").read_text())["data"]
    assert settings.video.budget.max_frames == 64  # a data.video key given without its prefix
    assert settings.video.budget.total_pixels == tiny["video"]["total_pixels"] != VideoBudget().total_pixels
    assert settings.max_response_length == tiny["max_response_length"]
    with pytest.raises(KeyError, match="max_frame"):
        settings_from_defaults(["+data.video.max_frame=3"])


def test_a_checkpoint_finds_the_run_it_belongs_to(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    config = {"data": {"train_files": [], "val_files": [], "video": {"max_frames": 12}, "max_response_length": 48},
              "trainer": {"seed": 7}, "actor_rollout_ref": {"model": {"path": "m"}}}
    write_record(config, str(checkpoints))
    merged = checkpoints / "global_step_30" / "actor" / "huggingface_merged"
    merged.mkdir(parents=True)
    for path in (merged.parents[1], merged.parent, merged):
        assert find_run_record(path) == checkpoints / "run.json"
    # A model beside the run (its warm start, say) is not one of its checkpoints.
    (tmp_path / "run" / "warm").mkdir()
    assert find_run_record(tmp_path / "run" / "warm") is None and find_run_record("Qwen/Qwen2.5-VL-3B") is None
    settings = settings_from_args(parse(), model=str(merged))
    assert settings.video.budget.max_frames == 12 and settings.seed == 7 and settings.max_response_length == 48
    assert settings.source == f"run {checkpoints / 'run.json'}"
    assert settings_from_run(tmp_path / "run") == settings  # the run folder holds checkpoints/run.json
    # What the record keeps besides the config: the resolved settings and the template's text.
    saved = json.loads((checkpoints / "run.json").read_text())["settings"]
    assert saved["video"]["max_frames"] == 12 and "{query}" in saved["prompt_template"]["user"]


def test_one_source_at_a_time(tmp_path):
    config = {"data": {"train_files": [], "val_files": []}, "trainer": {"seed": 1}, "actor_rollout_ref": {"model": {"path": "m"}}}
    write_record(config, str(tmp_path))
    with pytest.raises(ValueError, match="one source"):
        settings_from_args(parse("--run", str(tmp_path), "--set", "max_frames=8"))
    assert settings_from_args(parse("--run", "none")).source.endswith("video_grpo.yaml")
    with pytest.raises(ValueError, match="not a training run record"):
        (tmp_path / "eval").mkdir()
        (tmp_path / "eval" / "run.json").write_text(json.dumps({"model": "m"}))  # what `verl-video eval` writes
        settings_from_run(tmp_path / "eval")
