from __future__ import annotations

import pytest

from verl_video.evaluation.checkpoint import resolve_model


def test_model_folders_hub_ids_and_verl_checkpoints(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"")
    assert resolve_model(str(hf)) == str(hf)
    assert resolve_model("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"

    step = tmp_path / "global_step_5"
    actor = step / "actor"
    (actor / "huggingface").mkdir(parents=True)
    (actor / "huggingface" / "config.json").write_text("{}")  # verl saves config and tokenizer only
    (actor / "model_world_size_2_rank_0.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="python -m verl.model_merger merge --backend fsdp --local_dir"):
        resolve_model(str(step))
    merged = actor / "huggingface_merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    (merged / "model-00001-of-00002.safetensors").write_bytes(b"")
    assert resolve_model(str(step)) == str(merged)
    assert resolve_model(str(actor)) == str(merged)

    with pytest.raises(ValueError, match="neither"):
        resolve_model(str(tmp_path))
