"""What a cluster run needs from the launching shell: its environment on every worker, and a logger that can log.

Ray hands a remote worker the environment of the raylet on its node plus the job's runtime_env, not the
driver's shell: HF_HOME, NCCL_SOCKET_IFNAME or WANDB_API_KEY set where the script runs reach no other node
unless they are in runtime_env.env_vars.
"""

from __future__ import annotations

import netrc
import os

from omegaconf import DictConfig, open_dict

# Prefixes of variables handed to every Ray worker: hub and cache locations (HF_*, TRANSFORMERS_*), logging
# (WANDB_*), the interconnect (NCCL_*, TORCH_NCCL_*, GLOO_*). Not CUDA_VISIBLE_DEVICES (Ray sets it per
# worker), RANK / MASTER_* (verl sets them per worker), RAY_* (the cluster's own).
PROPAGATED_PREFIXES = ("HF_", "TRANSFORMERS_", "WANDB_", "NCCL_", "TORCH_NCCL_", "GLOO_")
# Ways wandb logs without an account on the worker that logs: offline files, or not at all.
WANDB_NO_ACCOUNT_MODES = ("offline", "disabled", "dryrun")


def cluster_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The launching shell's variables with a propagated prefix."""
    environ = os.environ if environ is None else environ
    return {key: value for key, value in environ.items() if key.startswith(PROPAGATED_PREFIXES)}


def propagate_cluster_env(config: DictConfig) -> None:
    """Add the cluster variables to ray_kwargs.ray_init.runtime_env.env_vars (values set there win).

    Called after the run record is written: the record (run.json) must not carry WANDB_API_KEY or HF_TOKEN.
    """
    env_vars = cluster_env()
    with open_dict(config):
        runtime_env = config.ray_kwargs.ray_init.setdefault("runtime_env", {})
        targets = runtime_env.setdefault("env_vars", {})
        for key, value in env_vars.items():
            targets.setdefault(key, value)


def wandb_login_here() -> bool:
    """Whether `wandb login` stored a key for this user on this machine (~/.netrc)."""
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_logger(config: DictConfig) -> None:
    """Refuse trainer.logger with wandb when the worker that logs would have no wandb account."""
    if "wandb" not in (config.trainer.logger or ()):
        return
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE", "").lower() in WANDB_NO_ACCOUNT_MODES:
        return
    # A key in this machine's ~/.netrc serves a single-node run; on a cluster the logging worker may be elsewhere.
    if int(config.trainer.nnodes) == 1 and wandb_login_here():
        return
    from verl_video.verl_adapter.driver import ConfigError

    raise ConfigError(
        "trainer.logger includes wandb but no wandb account is set: export WANDB_API_KEY=... (reaches every node), "
        "or WANDB_MODE=offline, or log without wandb: trainer.logger=[console,file]"
    )
