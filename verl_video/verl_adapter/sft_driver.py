"""Supervised cold start with verl's SFT trainer: `python -m verl_video.sft [key=value ...]`.

verl's own `SFTTrainer` (FSDP engine, its loss, checkpoints and resume) with our config
(`config/sft.yaml`: verl's `sft_trainer_engine` plus our dataset class, `VideoSFTDataset`). On GPUs launch
it with torchrun as verl's trainer (examples/qwen2_5_vl_3b_sft.sh); `sft_profile=cpu` runs one process on
CPU, whose gloo process group we start ourselves (verl's `cpu:gloo,cpu:gloo` backend string is refused by
torch, see verl_adapter/cpu_distributed.py).
"""

from __future__ import annotations

import json
import os
import sys
import time

import hydra
from omegaconf import DictConfig

from verl_video.models.vision_tower import ENV_VAR as VISION_ENV_VAR
from verl_video.models.vision_tower import VisionSettings
from verl_video.verl_adapter.plugin import register_all

# Written into trainer.default_local_dir when the fit ends: its steps, seconds and training records.
RESULT_NAME = "sft_result.json"


def single_process_env() -> None:
    """torch.distributed's variables for a one-process group, unless a launcher set them."""
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def run(config: DictConfig) -> dict:
    """Train with verl's SFTTrainer; returns the fit's steps and seconds and the training records used."""
    import torch.distributed as dist
    from verl.trainer.sft_trainer import SFTTrainer
    from verl.utils.distributed import destroy_global_process_group, initialize_global_process_group

    # What the GRPO driver does (driver.prepare_environment): the config decides, not a stale shell value;
    # torchrun's processes each run this, so each engine finds its settings in its own environment.
    os.environ[VISION_ENV_VAR] = VisionSettings.from_sft_config(config).to_env()
    if config.trainer.device == "cpu":
        os.environ.setdefault("VERL_PLATFORM", "cpu")
        single_process_env()
        if not dist.is_initialized():
            rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            dist.init_process_group(backend="gloo", rank=rank, world_size=world_size)
    else:
        initialize_global_process_group()
    try:
        trainer = SFTTrainer(config=config)
        began = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - began
        return {"steps": trainer.total_training_steps, "seconds": seconds, "samples": len(trainer.train_dataset)}
    finally:
        destroy_global_process_group()


@hydra.main(config_path=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config"), config_name="sft", version_base=None)
def main(config: DictConfig) -> None:
    """Hydra entry point."""
    result = run(config)
    print(f"verl-video sft: {result['steps']} steps in {result['seconds']:.1f} s")
    out = config.trainer.default_local_dir
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, RESULT_NAME), "w") as f:
        json.dump(result, f)


def entry() -> None:
    """`python -m verl_video.sft`: register our extensions (strictly), then run hydra."""
    register_all(strict=True)
    sys.exit(main())
