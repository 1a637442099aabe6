"""One decider per setting (docs/settings.md): a value set in its documented place reaches the code that uses it.

Every config here is composed by hydra exactly as `python -m verl_video.main` composes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from verl_video.pipeline.items import build_row, load_items
from verl_video.pipeline.run_settings import RunSettings
from verl_video.verl_adapter import driver
from verl_video.verl_adapter.driver import CONFIG_DIR, ConfigError, imply_cpu_profile, prepare_environment

REPO_ROOT = Path(__file__).resolve().parents[1]


def _compose(*overrides: str, config_dir: str | Path = CONFIG_DIR):
    with initialize_config_dir(config_dir=os.path.abspath(config_dir), version_base=None):
        return compose(config_name="video_grpo", overrides=list(overrides))


def _seed_keys(tree, prefix: str = "") -> dict[str, int]:
    """Every key named like a seed in the resolved config, by dotted path."""
    found = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            found.update(_seed_keys(value, path))
        elif "seed" in str(key):
            found[path] = value
    return found


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def clean_env(monkeypatch):
    """The variables prepare_environment writes, restored after the test."""
    for name in ("VERL_PLATFORM", "MALLOC_MMAP_THRESHOLD_", "TOKENIZERS_PARALLELISM", "TQ_NUM_THREADS",
                 "VERL_VIDEO_VISION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---- the seed: trainer.seed --------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", [[], ["profile=cpu"], ["experiment=tiny_tvg_demo"], ["profile=cpu_vllm"]])
def test_trainer_seed_reaches_every_seed_key_verl_reads(choice):
    from verl.trainer.ppo.utils import create_rl_sampler
    from verl.utils.config import omega_conf_to_dataclass

    cfg = _compose(*choice, "trainer.seed=7")
    # No seed key is left at verl's 42: data order, mixing, mini-batches (actor.data_loader_seed and the critic's,
    # passed to each update), rollout.seed (our agent loop's per-trajectory seeds, vLLM's engine seed), the
    # engines' RNGs under full_determinism, a generative reward model's rollout.
    assert set(_seed_keys(OmegaConf.to_container(cfg, resolve=True)).values()) == {7}
    # The engine configs as verl's workers build them (FSDPEngineConfig.seed feeds enable_full_determinism).
    engines = (cfg.actor_rollout_ref.actor.fsdp_config, cfg.actor_rollout_ref.ref.fsdp_config, cfg.critic.fsdp)
    assert [omega_conf_to_dataclass(engine).seed for engine in engines] == [7, 7, 7]
    # verl's data sampler draws the order from it.
    order = list(create_rl_sampler(cfg.data, range(20)))
    assert order == list(create_rl_sampler(OmegaConf.create({"shuffle": True, "seed": 7}), range(20)))
    assert order != list(create_rl_sampler(OmegaConf.create({"shuffle": True, "seed": 42}), range(20)))


def test_trainer_seed_picks_the_records_unless_the_data_config_fixes_them(tmp_path):
    records = [{"id": f"r{i}", "video": f"v{i}.mp4", "query": "q", "timestamps": [[1.0, 2.0]], "duration": 10.0}
               for i in range(40)]  # fmt: skip
    _write_jsonl(tmp_path / "a.jsonl", records)
    entry = {"name": "a", "json_path": "a.jsonl", "data_folder": str(tmp_path), "sampling_strategy": "random:5"}
    follows = tmp_path / "follows.yaml"
    follows.write_text(yaml.safe_dump({"datasets": [entry]}))
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump({"seed": 3, "datasets": [entry]}))

    def picked(path: Path, seed: int) -> list[str]:
        settings = RunSettings.from_config(_compose(f"trainer.seed={seed}")).video
        return [item.record.id for item in load_items([str(path)], settings)]

    assert picked(follows, 7) == picked(follows, 7) != picked(follows, 8)
    # The documented override: the file's own seed, whatever the run's.
    assert picked(fixed, 7) == picked(fixed, 8) == picked(follows, 3)


# ---- the vision settings: actor_rollout_ref.actor.freeze_vision_tower and vision.* --------------------------

_WORKER = """
import json, os, sys
from types import SimpleNamespace
import torch
from transformers import AutoModelForImageTextToText
from verl_video.verl_adapter.fsdp_engine import VisionSettingsMixin

class Loaded:  # verl's engine up to loading the model
    def _build_module(self):
        return AutoModelForImageTextToText.from_pretrained(sys.argv[1], dtype=torch.float32)

class Engine(VisionSettingsMixin, Loaded):
    engine_config = SimpleNamespace(forward_only=False)
    model_config = SimpleNamespace(local_path=sys.argv[1])

results = []
for env_vars in json.loads(sys.argv[2]):  # one worker's runtime_env after another
    os.environ.update(env_vars)
    trains = {"encoder": set(), "projector": set()}
    for name, param in Engine()._build_module().model.visual.named_parameters():
        trains["projector" if "merger" in name else "encoder"].add(param.requires_grad)
    results.append({part: sorted(flags) for part, flags in trains.items()})
print(json.dumps(results))
"""


def test_vision_settings_in_the_config_reach_the_engine_in_a_worker_process(tiny_model_dir, clean_env):
    cases = {  # overrides: (encoder trains, projector trains)
        (): ([False], [True]),
        ("vision.freeze_projector=true",): ([False], [False]),
        ("actor_rollout_ref.actor.freeze_vision_tower=false",): ([True], [True]),
    }
    sent = []
    for overrides in cases:
        cfg = _compose("profile=cpu", *overrides)
        prepare_environment(cfg)
        sent.append(OmegaConf.to_container(cfg.ray_kwargs.ray_init.runtime_env.env_vars, resolve=True))
    # A worker gets the driver's runtime_env variables, not the driver's process environment.
    worker_env = {k: v for k, v in os.environ.items() if k != "VERL_VIDEO_VISION"}
    done = subprocess.run([sys.executable, "-c", _WORKER, str(tiny_model_dir), json.dumps(sent)], env=worker_env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    trains = json.loads(done.stdout.strip().splitlines()[-1])
    assert trains == [{"encoder": encoder, "projector": projector} for encoder, projector in cases.values()]


def test_a_stale_vision_variable_in_the_shell_does_not_win(clean_env):
    clean_env.setenv("VERL_VIDEO_VISION", json.dumps({"freeze_encoder": False}))
    cfg = _compose("profile=cpu")
    prepare_environment(cfg)
    sent = json.loads(cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_VIDEO_VISION)
    assert sent["freeze_encoder"] is True


# ---- the video settings: data.video ------------------------------------------------------------------------


def _frames_of_the_first_row(config_dir: Path, data_yaml: Path, *overrides: str) -> int:
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset

    cfg = _compose("experiment=tiny_tvg_cpu", *overrides, config_dir=config_dir)
    (item,) = load_items([str(data_yaml)], RunSettings.from_config(cfg).video)
    row = build_row(item, 0, item.record.duration)
    # The row's `<video>` as verl's dataset expands it, then what verl's agent loop calls in the rollout workers
    # with the data section of the composed config.
    messages = [{"role": "user", "content": [{"type": "video", **row["videos"][0]}, {"type": "text", "text": "q"}]}]
    _, videos, _ = asyncio.run(VideoRLDataset.process_multi_modal_info(messages, 14, cfg.data))
    return int(videos[0][0].shape[0])


def test_a_video_default_changed_in_the_config_changes_the_frames_a_row_gets(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic_video", REPO_ROOT / "tests" / "data" / "synthetic_video.py")
    synthetic_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic_video)
    write_video = synthetic_video.write_video
    video = write_video(tmp_path / "v.mp4", [(8, 10)], size=(56, 56))
    _write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "video": video.name, "query": "q", "timestamps": [[1.0, 2.0]],
                                         "duration": 8.0}])  # fmt: skip
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({"datasets": [{"name": "a", "json_path": "a.jsonl", "data_folder": str(tmp_path)}]}))
    # The documented place: data.video in video_grpo.yaml (an experiment or the command line override it).
    edited = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, edited)
    text = (edited / "video_grpo.yaml").read_text()
    (edited / "video_grpo.yaml").write_text(text.replace("    min_frames: 4\n", "    min_frames: 24\n", 1))
    as_shipped = _frames_of_the_first_row(Path(CONFIG_DIR), data_yaml)  # 8 s at 2 fps
    assert _frames_of_the_first_row(edited, data_yaml) >= 24 > as_shipped
    assert _frames_of_the_first_row(Path(CONFIG_DIR), data_yaml, "data.video.fps=1.0") < as_shipped


# ---- CPU mode: trainer.device ------------------------------------------------------------------------------


def test_the_cpu_switch_on_the_command_line_decides_the_platform_of_every_process(clean_env):
    argv = imply_cpu_profile(["trainer.device=cpu"])
    cfg = _compose(*argv)
    assert driver.cpu_mode(cfg) and cfg.actor_rollout_ref.rollout.name == "hf"
    driver.check_device_settings(cfg)
    prepare_environment(cfg)
    env = dict(os.environ, **OmegaConf.to_container(cfg.ray_kwargs.ray_init.runtime_env.env_vars, resolve=True))
    probe = ("import verl_video.verl_adapter.plugin\n"
             "from verl.plugin.platform.platform_manager import get_platform\n"
             "print(get_platform().device_name)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "cpu"


def test_a_gpu_in_the_driver_does_not_turn_a_cpu_run_into_a_cuda_one(clean_env):
    from verl.plugin.platform import platform_manager
    from verl.utils.device import auto_set_device

    clean_env.setattr(platform_manager, "_current_platform", SimpleNamespace(device_name="cuda"))
    cfg = _compose("profile=cpu")
    prepare_environment(cfg)
    auto_set_device(cfg)  # what driver.run calls next: it follows the detected platform
    assert cfg.trainer.device == "cpu" and platform_manager.get_platform().device_name == "cpu"


def test_a_cpu_platform_left_in_the_shell_is_refused_for_a_gpu_run(clean_env):
    clean_env.setenv("VERL_PLATFORM", "cpu")
    with pytest.raises(ConfigError, match="VERL_PLATFORM=cpu .* trainer.device=cuda"):
        prepare_environment(_compose())


# ---- the reward preset: data_config reward_preset > reward_kwargs.task_presets > the task's default ---------


def _scored_presets(tmp_path: Path, entry_extra: dict, *overrides: str) -> str:
    from verl_video.verl_adapter.reward_manager import VideoRewardManager

    record = {"id": "m", "video": "m.mp4", "query": "which?", "options": ["a", "b"], "answer": "B", "duration": 4.0,
              "task": "mcq"}  # fmt: skip
    _write_jsonl(tmp_path / "mcq.jsonl", [record])
    entry = {"name": "qa", "json_path": "mcq.jsonl", "data_folder": str(tmp_path), "task": "mcq", **entry_extra}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"datasets": [entry]}))
    cfg = _compose(*overrides)
    (item,) = load_items([str(tmp_path / "data.yaml")], RunSettings.from_config(cfg).video)
    row = build_row(item, 0, 4.0)
    scorer = VideoRewardManager(cfg, tokenizer=None).scorer
    return scorer.composite_for(row["reward_model"]["ground_truth"], row["extra_info"]).name


def test_the_reward_preset_is_decided_once_with_a_documented_order(tmp_path):
    task_presets = "+reward.reward_kwargs.task_presets={mcq: tracking}"
    assert _scored_presets(tmp_path, {}) == "mcq"  # the task's default
    assert _scored_presets(tmp_path, {}, task_presets) == "tracking"  # the run's option beats the task's default
    assert _scored_presets(tmp_path, {"reward_preset": "grounded_qa"}, task_presets) == "grounded_qa"  # the entry


# ---- the prompt template: data.video.prompt_template, a data_config entry's, eval's flag ---------------------


def _prompt_of(tmp_path: Path, entry_extra: dict, *overrides: str, flag: str | None = None) -> str:
    from verl_video.evaluation.run_eval import force_flags

    _write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "video": "a.mp4", "query": "the ball", "timestamps": [[1.0, 2.0]],
                                         "duration": 8.0}])  # fmt: skip
    entry = {"name": "a", "json_path": "a.jsonl", "data_folder": str(tmp_path), **entry_extra}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"datasets": [entry]}))
    (item,) = load_items([str(tmp_path / "data.yaml")], RunSettings.from_config(_compose(*overrides)).video)
    if flag:
        item = force_flags(item, {"prompt_template": flag})
    row = build_row(item, 0, 8.0)
    return row["prompt"][-1]["content"] + f"|think={row['extra_info']['think']}"


def test_the_prompt_template_set_in_the_config_reaches_the_row(tmp_path):
    think = _prompt_of(tmp_path, {})
    answer_only = _prompt_of(tmp_path, {}, "experiment=tiny_tvg_demo")
    assert "<think>" in think and think.endswith("think=True")
    assert "<think>" not in answer_only and answer_only.endswith("think=False")
    # A data_config entry's template beats the run's; eval's --template beats both.
    assert _prompt_of(tmp_path, {"prompt_template": "think"}, "experiment=tiny_tvg_demo") == think
    assert _prompt_of(tmp_path, {"prompt_template": "think"}, flag="answer_only") == answer_only


# ---- the search loop: search.* -----------------------------------------------------------------------------


def test_the_search_settings_reach_the_loop_and_the_prompt_filter():
    from verl_video.verl_adapter.search_prompt import SearchSettings, search_settings_for

    overrides = ("search.max_zoom_calls=5", "search.zoom.max_frames=6", "search.zoom.fps=1.0")
    cfg = _compose("actor_rollout_ref.rollout.agent.default_agent_loop=video_search", *overrides)
    # The filter (data config) and the loop (trainer config) tell the model the same budget.
    text = search_settings_for(cfg.data).zoom_instructions(60.0, 8)
    assert text == SearchSettings.from_config(cfg).zoom_instructions(60.0, 8)
    assert "up to 5 times" in text and "at most 6 frames, so at most 6 s per window" in text
    # With the single-turn loop the filter adds nothing.
    assert search_settings_for(_compose(*overrides).data) is None


def test_a_search_choice_outside_its_list_is_refused_by_name():
    from verl_video.verl_adapter.search_prompt import SearchSettings

    for key in ("long_windows", "trace_window"):
        with pytest.raises(ValueError, match=f"search.{key}: 'sometimes' is not one of"):
            SearchSettings.from_config(_compose(f"search.{key}=sometimes"))
