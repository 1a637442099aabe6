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
