"""The training driver behind `python -m verl_video.main [key=value ...]`: checks, environment, verl's PPO trainer.

verl's own PPO entry point with our config (`verl_video/config/video_grpo.yaml`, extending verl's
`ppo_trainer`) and our extensions registered before anything starts.
"""

from __future__ import annotations

import os
import sys

import hydra
import psutil
from omegaconf import DictConfig, OmegaConf

from verl_video.verl_adapter.vllm_cpu import INSTALL_HINT as VLLM_INSTALL_HINT
from verl_video.verl_adapter.vllm_cpu import vllm_importable
from verl_video.models.family import UnsupportedModelError, require_family
from verl_video.models.vision_tower import ENV_VAR as VISION_ENV_VAR
from verl_video.models.vision_tower import VisionSettings
from verl_video.verl_adapter.plugin import register_all
from verl_video.verl_adapter.run_record import write_record

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config")


# Variables the driver's environment hands to every Ray process (trainer workers, rollout servers, reward workers).
PROPAGATED_ENV = (
    "VERL_PLATFORM",
    "MALLOC_MMAP_THRESHOLD_",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "VERL_FILE_LOGGER_PATH",
    "VERL_VIDEO_CACHE_DIR",
    "TQ_NUM_THREADS",
    VISION_ENV_VAR,
)
# verl's TransferQueue runs every put and get with TQ_NUM_THREADS torch threads (default 8) and, on a machine
# with fewer physical cores, warns on each call from every process: hundreds of console lines a step.
TQ_DEFAULT_THREADS = 8


def transfer_queue_threads(physical_cores: int | None) -> int:
    """TransferQueue's thread count: its default, capped at the machine's physical cores."""
    return max(1, min(TQ_DEFAULT_THREADS, physical_cores or TQ_DEFAULT_THREADS))


class ConfigError(ValueError):
    """A combination of settings that cannot run; the message says which keys to change."""


# Rollout backends that run on trainer.device=cpu: our `hf` backend, and verl's vLLM through vLLM's CPU build.
CPU_ROLLOUTS = ("hf", "vllm")
# What vLLM-CPU cannot do, with the value profile=cpu_vllm sets.
VLLM_CPU_SETTINGS = {"enable_sleep_mode": False, "free_cache_engine": False}


def check_device_settings(config: DictConfig) -> None:
    """Refuse combinations that would fail deep inside Ray: e.g. vLLM rollouts on a CPU machine without vLLM."""
    device = config.trainer.device
    rollout = config.actor_rollout_ref.rollout.name
    if device == "cpu" and rollout not in CPU_ROLLOUTS:
        raise ConfigError(
            f"trainer.device=cpu runs the hf or vllm rollout backend, not actor_rollout_ref.rollout.name={rollout}; "
            "add `profile=cpu` (hf) or `profile=cpu_vllm` (sets the backend and the other CPU settings)"
        )
    if device == "cpu" and rollout == "vllm":
        check_vllm_cpu_settings(config)
    if rollout == "hf" and device != "cpu":
        raise ConfigError("actor_rollout_ref.rollout.name=hf is the CPU backend; use it with `profile=cpu`")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "trainer.device=cuda but no GPU is visible here. To train on this machine use the CPU profile: "
                "`profile=cpu` (see examples/tiny_tvg_cpu.sh)"
            )


def check_vllm_cpu_settings(config: DictConfig) -> None:
    """vLLM rollouts on CPU: vLLM installed, and none of the GPU-only engine features switched on."""
    if not vllm_importable():
        raise ConfigError(f"actor_rollout_ref.rollout.name=vllm on trainer.device=cpu needs vLLM: {VLLM_INSTALL_HINT}")
    rollout = config.actor_rollout_ref.rollout
    wrong = {key: rollout.get(key, True) for key, value in VLLM_CPU_SETTINGS.items() if rollout.get(key, True) != value}
    if wrong:
        settings = ", ".join(f"actor_rollout_ref.rollout.{key}={value}" for key, value in wrong.items())
        raise ConfigError(
            f"vLLM's CPU build has no sleep mode ({settings}); use `profile=cpu_vllm`, which turns it off"
        )


def check_model_family(config: DictConfig) -> None:
    """Refuse a model whose family verl-video cannot handle before any worker starts."""
    path = config.actor_rollout_ref.model.path
    try:
        family = require_family(path)
    except UnsupportedModelError as exc:
        raise ConfigError(f"actor_rollout_ref.model.path={path}: {exc}") from None
    print(f"verl-video: model family {family.model_type} (video time: {family.time_encoding})")


def check_reward_presets(config: DictConfig) -> None:
    """Refuse a data_config entry whose `reward_preset` names no preset: its rows would be scored by another one."""
    from verl_video.annotations.data_config import DataConfigError
    from verl_video.pipeline.items import read_data_config
    from verl_video.rewards import RewardScorer

    wanted: dict[str, str] = {}
    for key in ("train_files", "val_files"):
        files = config.data.get(key) or []
        for path in [files] if isinstance(files, str) else files:
            if not (str(path).endswith((".yaml", ".yml")) and os.path.isfile(str(path))):
                continue
            try:
                entries = read_data_config(str(path)).datasets
            except DataConfigError:
                continue  # the dataset reports it, with file and line, when it loads
            for entry in entries:
                if entry.reward_preset:
                    wanted.setdefault(entry.reward_preset, f"{path}: dataset {entry.name!r}")
    if not wanted:
        return
    known = RewardScorer.from_kwargs(config.reward.get("reward_kwargs")).presets
    for name, where in wanted.items():
        if name not in known:
            raise ConfigError(f"{where}: reward_preset {name!r} is not a known preset; known: {', '.join(sorted(known))}")


def load_data_modules(config: DictConfig) -> None:
    """Import the data_configs' `modules:` here and hand them to the reward workers (`reward.reward_kwargs.modules`)."""
    from verl_video.annotations.data_config import DataConfigError, data_config_modules

    try:
        found = data_config_modules(config.data.get("train_files"), config.data.get("val_files"))
    except DataConfigError as exc:
        raise ConfigError(str(exc)) from None
    if not found:
        return
    OmegaConf.set_struct(config, False)
    kwargs = config.reward.setdefault("reward_kwargs", {})
    given = kwargs.get("modules") or []
    kwargs["modules"] = [*([given] if isinstance(given, str) else given), *found]  # absolute: workers' cwd differs
    OmegaConf.set_struct(config, True)


def check_data(config: DictConfig) -> None:
    """Stop before Ray starts when the training or validation data yields no usable row (each reason counted)."""
    from verl_video.annotations.data_config import DataConfigError
    from verl_video.pipeline.issues import DropTally, NoUsableData
    from verl_video.pipeline.items import load_items, require_usable_video
    from verl_video.video.settings import settings_from_config

    settings = settings_from_config(config.data)
    for key in ("train_files", "val_files"):
        files, tally = _data_files(config, key), DropTally()
        try:
            if files:
                require_usable_video(load_items(files, settings, tally=tally), tally, files)
        except (NoUsableData, DataConfigError) as exc:
            raise ConfigError(f"data.{key}: {exc}") from None


def _data_files(config: DictConfig, key: str) -> list[str]:
    files = config.data.get(key) or []
    return [str(files)] if isinstance(files, str) else [str(f) for f in files]


def prepare_environment(config: DictConfig) -> None:
    """Environment every process needs; set before Ray starts so workers inherit it."""
    if config.trainer.device == "cpu":
        os.environ.setdefault("VERL_PLATFORM", "cpu")
        # Decoding many frames into per-frame tensors fragments glibc's heap (see docs); keep big blocks mmapped.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1048576")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQ_NUM_THREADS", str(transfer_queue_threads(psutil.cpu_count(logical=False))))
    # The engines in the trainer workers read the vision settings from here (see models/vision_tower.py).
    os.environ[VISION_ENV_VAR] = VisionSettings.from_config(config).to_env()
    env_vars = {k: os.environ[k] for k in PROPAGATED_ENV if k in os.environ}
    OmegaConf.set_struct(config, False)
    runtime_env = config.ray_kwargs.ray_init.setdefault("runtime_env", {})
    runtime_env.setdefault("env_vars", {})
    for key, value in env_vars.items():
        runtime_env.env_vars.setdefault(key, value)
    OmegaConf.set_struct(config, True)


def run(config: DictConfig) -> None:
    """Validate and run verl's PPO trainer (TaskRunner in Ray) with this config."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    check_device_settings(config)
    check_model_family(config)
    load_data_modules(config)
    check_data(config)
    check_reward_presets(config)
    prepare_environment(config)
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    record = write_record(OmegaConf.to_container(config, resolve=True), config.trainer.default_local_dir)
    print(f"verl-video: run record (seed, config and data fingerprints) in {record}")
    if config.trainer.use_v1:
        run_ppo(config, task_runner_class=TaskRunnerV1)
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner

        run_ppo(config, task_runner_class=TaskRunner)


# Either documented CPU switch selects the whole CPU profile (precision, Ray slots, ...), not just one key.
CPU_SWITCHES = ("trainer.device=cpu", "actor_rollout_ref.rollout.name=hf")
VLLM_SWITCH = "actor_rollout_ref.rollout.name=vllm"


def imply_cpu_profile(argv: list[str]) -> list[str]:
    """Add `profile=cpu` (`profile=cpu_vllm` with the vllm rollout) for a CPU switch when no profile is chosen."""
    chooses_profile = any(arg.split("=", 1)[0].lstrip("+~") in ("profile", "experiment") for arg in argv)
    if chooses_profile or not any(arg in CPU_SWITCHES for arg in argv):
        return argv
    return [*argv, "profile=cpu_vllm" if VLLM_SWITCH in argv else "profile=cpu"]


@hydra.main(config_path=CONFIG_DIR, config_name="video_grpo", version_base=None)
def main(config: DictConfig) -> None:
    """Hydra entry point."""
    try:
        run(config)
    except ConfigError as exc:
        print(f"verl-video: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


def entry() -> None:
    """`python -m verl_video.main`: register our extensions (strictly), imply the CPU profile, run hydra."""
    # verl imported the plugin already (warning on failure); the driver must not start with a piece missing.
    register_all(strict=True)
    sys.argv = [sys.argv[0], *imply_cpu_profile(sys.argv[1:])]
    main()
