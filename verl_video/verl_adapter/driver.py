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
from verl_video.verl_adapter.attention_check import check_attention
from verl_video.verl_adapter.cluster_env import check_logger, propagate_cluster_env
from verl_video.verl_adapter.plugin import register_all
from verl_video.verl_adapter.rollout_budget import apply_rollout_budget
from verl_video.verl_adapter.run_paths import absolutize_paths
from verl_video.verl_adapter.run_record import METRICS_NAME, RunFolderError, claim_run_folder, write_record

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


def check_trainer_version(config: DictConfig) -> None:
    """Refuse verl's old (V0) trainer: it runs none of ours (VideoTrainer, seeding, resume)."""
    if not config.trainer.use_v1:
        raise ConfigError(
            "trainer.use_v1=false selects verl's old trainer, which runs without verl-video's trainer, seeding "
            "and resume; drop the override to train with verl's V1 trainer (the default)"
        )


def check_device_settings(config: DictConfig) -> None:
    """Refuse combinations that would fail deep inside Ray: e.g. vLLM rollouts on a CPU machine without vLLM."""
    device = config.trainer.device
    rollout = config.actor_rollout_ref.rollout.name
    if cpu_mode(config) and rollout not in CPU_ROLLOUTS:
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


WARM_START_RECORD = "warm_start.json"


def check_warm_start_template(config: DictConfig) -> None:
    """Refuse to train a warm-started model under another prompt than the one its warm start taught it."""
    path = os.path.join(str(config.actor_rollout_ref.model.path), WARM_START_RECORD)
    if not os.path.isfile(path):
        return
    import json

    with open(path) as f:
        taught = json.load(f).get("prompt_template")
    asked = config.data.get("video", {}).get("prompt_template")
    if taught and asked and taught != asked:
        raise ConfigError(
            f"actor_rollout_ref.model.path={config.actor_rollout_ref.model.path} was warm-started to answer the "
            f"{taught!r} prompt ({path}), this run prompts with {asked!r} (data.video.prompt_template): its first "
            f"answers would not parse. Use the experiment it was made with (the demo's: experiment=tiny_tvg_demo) or "
            f"data.video.prompt_template={taught}"
        )


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
    try:
        # Built here once so that a misspelt option stops the run now, not inside every reward worker.
        known = RewardScorer.from_kwargs(config.reward.get("reward_kwargs")).presets
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    for name, where in wanted.items():
        if name not in known:
            raise ConfigError(f"{where}: reward_preset {name!r} is not a known preset; known: {', '.join(sorted(known))}")


def cpu_mode(config: DictConfig) -> bool:
    """Whether the run is on CPU: `trainer.device=cpu` (set by profile=cpu / cpu_vllm), the one CPU switch."""
    return config.trainer.device == "cpu"


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
            items = load_items(files, settings, tally=tally) if files else []
            if files:
                require_usable_video(items, tally, files)
        except (NoUsableData, DataConfigError, OSError) as exc:
            raise ConfigError(f"data.{key}: {exc}") from None
        if key == "train_files":
            check_batch_fits(len(items), config)


def check_batch_fits(records: int, config: DictConfig) -> None:
    """Refuse a training set smaller than one batch: verl drops the incomplete batch and divides by zero steps."""
    batch = int(config.data.train_batch_size)
    if records < batch:
        raise ConfigError(
            f"data.train_files: {records} usable record(s), fewer than data.train_batch_size={batch}, so an epoch "
            f"has no training step (verl drops an incomplete batch); set data.train_batch_size={records} or lower "
            "(and actor_rollout_ref.actor.ppo_mini_batch_size no larger), or add records"
        )


def _data_files(config: DictConfig, key: str) -> list[str]:
    files = config.data.get(key) or []
    return [str(files)] if isinstance(files, str) else [str(f) for f in files]


def prepare_environment(config: DictConfig) -> None:
    """Environment every process needs; set before Ray starts so workers inherit it."""
    # Values derived from the config replace whatever the shell or the config's runtime_env held.
    decided = {VISION_ENV_VAR: VisionSettings.from_config(config).to_env()}
    if cpu_mode(config):
        # verl picks each process's platform from VERL_PLATFORM before probing for accelerators.
        decided["VERL_PLATFORM"] = "cpu"
        # Decoding many frames into per-frame tensors fragments glibc's heap (see docs); keep big blocks mmapped.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1048576")
    elif os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":
        raise ConfigError(
            f"VERL_PLATFORM=cpu is set in the environment but trainer.device={config.trainer.device}; "
            "unset it, or add `profile=cpu` to train on CPU"
        )
    os.environ.update(decided)
    if cpu_mode(config):
        pin_cpu_platform()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQ_NUM_THREADS", str(transfer_queue_threads(psutil.cpu_count(logical=False))))
    if "file" in (config.trainer.logger or ()) and not os.environ.get("VERL_FILE_LOGGER_PATH"):
        # verl's default is ./<project>/<experiment>.jsonl under the working directory, shared (and truncated) by
        # every run of that name; a run's metrics belong in its own folder, beside run.json.
        os.environ["VERL_FILE_LOGGER_PATH"] = os.path.join(os.path.abspath(config.trainer.default_local_dir), METRICS_NAME)
    env_vars = {k: os.environ[k] for k in PROPAGATED_ENV if k in os.environ}
    OmegaConf.set_struct(config, False)
    runtime_env = config.ray_kwargs.ray_init.setdefault("runtime_env", {})
    runtime_env.setdefault("env_vars", {})
    for key, value in env_vars.items():
        if key in decided:
            runtime_env.env_vars[key] = value
        else:
            runtime_env.env_vars.setdefault(key, value)
    OmegaConf.set_struct(config, True)


def pin_cpu_platform() -> None:
    """Make this process's verl platform the CPU one, so verl's auto_set_device keeps trainer.device=cpu on a GPU machine."""
    from verl.plugin.platform.platform_manager import get_platform, set_platform

    from verl_video.verl_adapter.cpu_platform import PlatformCPU

    if get_platform().device_name != "cpu":
        set_platform(PlatformCPU())


def run(config: DictConfig) -> None:
    """Validate and run verl's PPO trainer (TaskRunner in Ray) with this config."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    check_trainer_version(config)
    check_attention(config)
    check_logger(config)
    absolutize_paths(config)
    check_device_settings(config)
    apply_rollout_budget(config)
    check_model_family(config)
    check_warm_start_template(config)
    load_data_modules(config)
    check_data(config)
    check_reward_presets(config)
    prepare_environment(config)
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    resolved = OmegaConf.to_container(config, resolve=True)
    try:
        folder = claim_run_folder(resolved, config.trainer.default_local_dir, os.environ.get("VERL_FILE_LOGGER_PATH"))
    except RunFolderError as exc:
        raise ConfigError(str(exc)) from None
    if folder == "same":
        print(f"verl-video: {config.trainer.default_local_dir} holds this run (same config and data): resuming it")
    record = write_record(resolved, config.trainer.default_local_dir)
    print(f"verl-video: run record (seed, config and data fingerprints) in {record}")
    propagate_cluster_env(config)
    run_ppo(config, task_runner_class=TaskRunnerV1)


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
