"""A real GPU node's start-up, checked on CPU: rollout budgets, attention kernels, paths, environment, logger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from verl_video.tasks.prompts import build_messages, render_prompt
from verl_video.tools.tiny_model import build_processor, build_tokenizer
from verl_video.verl_adapter.attention_check import check_attention, flash_attn_importable
from verl_video.verl_adapter.cluster_env import check_logger, propagate_cluster_env
from verl_video.verl_adapter.driver import CONFIG_DIR, ConfigError
from verl_video.verl_adapter.rollout_budget import apply_rollout_budget, budget_from_config, video_prompt_tokens
from verl_video.verl_adapter.run_paths import absolutize_paths

REPO_ROOT = Path(__file__).resolve().parents[1]
# The scripts call `python`: make it this interpreter, as an activated virtualenv would.
SCRIPT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("WANDB_")},
    "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    "PYTHONPATH": str(REPO_ROOT),
}
FAMILY_SCRIPTS = {"qwen2_5_vl": "qwen2_5_vl_3b_tvg.sh", "qwen3_vl": "qwen3_vl_4b_tvg.sh"}
# Videos long enough for the full 768 frames; Qwen3-VL's time stamps grow with the video (`<35990.5 seconds>`).
DURATIONS = (384.0, 3600.0, 36000.0)
QUERY = "a person opens the door of the kitchen and walks towards the window while holding a cup of coffee"


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        return compose(config_name="video_grpo", overrides=list(overrides))


def largest_prompt(family: str, config) -> int:
    """The longest TVG prompt under the config's video budget, counted by the family's processor."""
    processor = build_processor(build_tokenizer(), family)
    template = config.data.video.prompt_template
    text = render_prompt(processor, build_messages(QUERY, template, duration=max(DURATIONS)))
    text_tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"]) - 1  # the placeholder
    budget = budget_from_config(config)
    return text_tokens + max(video_prompt_tokens(processor, budget, d, 720, 1280) for d in DURATIONS)


@pytest.mark.parametrize("family", FAMILY_SCRIPTS)
def test_gpu_scripts_budget_the_rollout_from_the_data_and_fit_the_largest_video_prompt(family, tmp_path):
    script = REPO_ROOT / "examples" / FAMILY_SCRIPTS[family]
    out = subprocess.run(
        ["bash", str(script)], env={**SCRIPT_ENV, "DRY_RUN": "1"}, capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    config = OmegaConf.create(yaml.safe_load(out.stdout))
    rollout = config.actor_rollout_ref.rollout
    assert rollout.max_model_len is None and not rollout.enable_chunked_prefill  # what verl would turn into 128K+
    line = apply_rollout_budget(config)
    wanted = config.data.max_prompt_length + config.data.max_response_length
    # vLLM reserves for prompt + response, not the model's 128K / 256K context; a whole prompt fits one batch.
    assert rollout.max_model_len == wanted and rollout.max_num_batched_tokens >= wanted
    assert f"max_model_len={wanted}" in line
    longest = largest_prompt(family, config)
    assert longest <= config.data.max_prompt_length, (family, longest)
    # No account here: the script logs to the console and a file, and the driver lets that start.
    assert list(config.trainer.logger) == ["console", "file"]
    check_logger(config)


def test_rollout_budget_keeps_set_values_and_the_models_context(tmp_path):
    config = _compose("actor_rollout_ref.rollout.max_model_len=20000")
    apply_rollout_budget(config)
    assert config.actor_rollout_ref.rollout.max_model_len == 20000
    assert config.actor_rollout_ref.rollout.max_num_batched_tokens == 20000  # chunked prefill off: one batch
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 4096}}))
    config = _compose(f"actor_rollout_ref.model.path={tmp_path}", "actor_rollout_ref.rollout.enable_chunked_prefill=true")
    apply_rollout_budget(config)
    # verl refuses max_model_len above the model's context; chunked prefill keeps the batch at verl's default.
    assert config.actor_rollout_ref.rollout.max_model_len == 4096
    assert config.actor_rollout_ref.rollout.max_num_batched_tokens == 8192
    assert apply_rollout_budget(_compose("profile=cpu")) is None  # the hf backend reads neither key


@pytest.mark.skipif(flash_attn_importable(), reason="flash_attn imports here")
def test_flash_attention_without_flash_attn_stops_at_start_up(tmp_path):
    started = time.monotonic()
    override = "actor_rollout_ref.model.override_config.attn_implementation=flash_attention_2"
    out = subprocess.run(
        [sys.executable, "-m", "verl_video.main", "trainer.device=cpu", override],
        env=SCRIPT_ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    errors = [line for line in out.stderr.splitlines() if "verl-video" in line]
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(errors) == 1 and "flash_attn" in errors[0]
    assert "make install-gpu" in errors[0] and "attn_implementation=sdpa" in errors[0]
    assert "use_remove_padding=false" in errors[0]
    assert "Ray" not in out.stdout + out.stderr and time.monotonic() - started < 120


def test_attention_check_passes_pytorch_attention_and_refuses_packing_without_flash_attn(monkeypatch):
    monkeypatch.setattr("verl_video.verl_adapter.attention_check.flash_attn_importable", lambda: False)
    check_attention(_compose("profile=cpu"))
    # verl's packed Qwen-VL attention calls flash_attn's kernel whatever attn_implementation says.
    with pytest.raises(ConfigError, match="use_remove_padding=true"):
        check_attention(_compose("profile=cpu", "actor_rollout_ref.model.use_remove_padding=true"))
    with pytest.raises(ConfigError, match="flash_attention_2"):
        check_attention(_compose())


def test_paths_are_absolute_before_ray(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.yaml").write_text("datasets: []\n")
    (tmp_path / "model").mkdir()
    config = _compose(
        "data.train_files=data/train.yaml", "data.val_files=[data/train.yaml]", "actor_rollout_ref.model.path=model",
        "trainer.default_local_dir=runs/a", "trainer.rollout_data_dir=dumps", "data.video.cache_dir=cache",
    )
    absolutize_paths(config)
    assert config.data.train_files == str(tmp_path / "data" / "train.yaml")
    assert list(config.data.val_files) == [str(tmp_path / "data" / "train.yaml")]
    assert config.actor_rollout_ref.model.path == str(tmp_path / "model")
    assert config.critic.model.path == str(tmp_path / "model")  # follows the policy's path
    for key, folder in [("default_local_dir", "runs/a"), ("rollout_data_dir", "dumps")]:
        assert config.trainer[key] == str(tmp_path / folder)
    assert config.data.video.cache_dir == str(tmp_path / "cache")
    # A hub id is no folder here and stays a hub id; verl's default run folder becomes absolute too.
    config = _compose()
    absolutize_paths(config)
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert os.path.isabs(config.trainer.default_local_dir)


def test_cluster_variables_reach_every_worker(monkeypatch):
    for name, value in [("NCCL_SOCKET_IFNAME", "eth0"), ("HF_HOME", "/shared/hf"), ("WANDB_API_KEY", "k"),
                        ("CUDA_VISIBLE_DEVICES", "0"), ("RAY_ADDRESS", "auto")]:  # fmt: skip
        monkeypatch.setenv(name, value)
    config = _compose("+ray_kwargs.ray_init.runtime_env.env_vars.HF_HOME=/mine")
    propagate_cluster_env(config)
    env_vars = config.ray_kwargs.ray_init.runtime_env.env_vars
    assert env_vars.NCCL_SOCKET_IFNAME == "eth0" and env_vars.WANDB_API_KEY == "k"
    assert env_vars.HF_HOME == "/mine"  # a value set in the config wins
    assert "CUDA_VISIBLE_DEVICES" not in env_vars and "RAY_ADDRESS" not in env_vars


def test_wandb_without_an_account_stops_at_start_up(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(ConfigError, match="WANDB_API_KEY"):
        check_logger(_compose("trainer.logger=[console,wandb]"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    check_logger(_compose("trainer.logger=[console,wandb]"))
