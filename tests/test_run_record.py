"""Run records: the same experiment has one fingerprint wherever it writes; a changed setting or annotation shows."""

from __future__ import annotations

import copy
import json

from verl_video.verl_adapter.run_record import build_record, config_fingerprint, data_fingerprint, find_record, write_record


def _config(tmp_path) -> dict:
    annotations = tmp_path / "a.jsonl"
    if not annotations.exists():
        annotations.write_text('{"id": "1", "video": "v.mp4", "query": "q", "timestamps": [[0, 1]], "duration": 4}\n')
    return {
        "data": {"train_files": str(annotations), "val_files": str(annotations)},
        "trainer": {"seed": 1, "default_local_dir": str(tmp_path / "ckpt"), "logger": ["console"]},
        "actor_rollout_ref": {"model": {"path": "m"}, "actor": {"optim": {"lr": 1e-6}}},
    }


def test_output_folders_do_not_change_the_fingerprint_but_settings_do(tmp_path):
    base = _config(tmp_path)
    moved = copy.deepcopy(base)
    moved["trainer"]["default_local_dir"] = "/elsewhere"
    moved["trainer"]["logger"] = ["console", "wandb"]
    assert config_fingerprint(base) == config_fingerprint(moved)
    changed = copy.deepcopy(base)
    changed["actor_rollout_ref"]["actor"]["optim"]["lr"] = 1e-5
    assert config_fingerprint(base) != config_fingerprint(changed)
    reseeded = copy.deepcopy(base)
    reseeded["trainer"]["seed"] = 2
    assert config_fingerprint(base) != config_fingerprint(reseeded)


def test_data_fingerprint_follows_annotation_contents_through_a_data_config(tmp_path):
    annotations = tmp_path / "a.jsonl"
    annotations.write_text('{"id": "1"}\n')
    data_config = tmp_path / "d.yaml"
    data_config.write_text(f"datasets:\n  - json_path: {annotations}\n    data_folder: {tmp_path}\n")
    before = data_fingerprint([str(data_config)])
    annotations.write_text('{"id": "2"}\n')
    assert data_fingerprint([str(data_config)]) != before


def test_record_is_written_atomically_and_found_from_the_run_folder(tmp_path):
    config = _config(tmp_path)
    path = write_record(config, config["trainer"]["default_local_dir"])
    assert path.name == "run.json" and not list(path.parent.glob("*.tmp"))
    record = find_record(tmp_path)  # run folder with checkpoints/ inside? here the record sits in ckpt/
    assert record is None
    assert find_record(path.parent)["seed"] == 1
    assert json.loads(path.read_text())["config_fingerprint"] == build_record(config)["config_fingerprint"]


def _claim(config: dict, metrics: str | None = None) -> str:
    from verl_video.verl_adapter.run_record import claim_run_folder

    return claim_run_folder(config, config["trainer"]["default_local_dir"], metrics)


def test_a_folder_is_claimed_by_one_run_and_resumed_by_the_same_config(tmp_path):
    config = _config(tmp_path)
    assert _claim(config) == "new"
    write_record(config, config["trainer"]["default_local_dir"])
    moved_logs = copy.deepcopy(config)
    moved_logs["trainer"]["logger"] = ["console", "file"]  # not the experiment: still the same run
    assert _claim(moved_logs) == "same"


def test_another_seed_in_a_used_folder_is_refused_naming_the_keys_and_the_ways_out(tmp_path):
    import pytest

    from verl_video.verl_adapter.run_record import RunFolderError

    config = _config(tmp_path)
    record = write_record(config, config["trainer"]["default_local_dir"])
    before = record.read_text()
    reseeded = copy.deepcopy(config)
    reseeded["trainer"]["seed"] = 7
    with pytest.raises(RunFolderError) as error:
        _claim(reseeded)
    message = str(error.value)
    assert "trainer.seed: 1 -> 7" in message and "trainer.default_local_dir" in message
    assert "trainer.resume_mode=resume_path" in message
    assert record.read_text() == before  # the record still describes the run whose folder it is


def test_changed_annotations_are_another_run_too(tmp_path):
    import pytest

    from verl_video.verl_adapter.run_record import RunFolderError

    config = _config(tmp_path)
    write_record(config, config["trainer"]["default_local_dir"])
    (tmp_path / "a.jsonl").write_text('{"id": "2", "video": "v.mp4", "query": "q", "timestamps": [[0, 2]], "duration": 4}\n')
    with pytest.raises(RunFolderError, match="data files: fingerprint"):
        _claim(config)


def test_an_explicit_fresh_start_keeps_the_previous_record_and_metrics(tmp_path):
    import pytest

    from verl_video.verl_adapter.run_record import RunFolderError

    config = _config(tmp_path)
    folder = tmp_path / "ckpt"
    old = write_record(config, str(folder)).read_text()
    fingerprint = json.loads(old)["config_fingerprint"]
    metrics = folder / "metrics.jsonl"
    metrics.write_text('{"step": 1, "data": {"x": 1}}\n')
    fresh = copy.deepcopy(config)
    fresh["trainer"]["seed"] = 7
    fresh["trainer"]["resume_mode"] = "disable"
    assert _claim(fresh, str(metrics)) == "archived"
    assert (folder / f"run.{fingerprint}.json").read_text() == old
    assert (folder / f"metrics.{fingerprint}.jsonl").read_text() == '{"step": 1, "data": {"x": 1}}\n'
    assert not metrics.exists() and not (folder / "run.json").exists()
    # With checkpoints in the folder a fresh start would overwrite them: refused as under `auto`.
    write_record(config, str(folder))
    (folder / "global_step_2").mkdir()
    with pytest.raises(RunFolderError, match="resume_from_path"):
        _claim(fresh, str(metrics))
