"""Per-trajectory sampling seeds, so a run's rollouts do not depend on how requests were batched.

verl's agent loop sends every rollout request without a seed (or, with `rollout.full_determinism`, the
same seed for all of them, which makes the n rollouts of a prompt identical). We derive one seed per
trajectory from (run seed, step, sample index, rollout index) and put it in the request's sampling
parameters: vLLM honours `seed` per request, and our `hf` server samples each row from its own generator
(`hf_engine.py`). The same trajectory is then drawn whatever batch it lands in.

Selected with `actor_rollout_ref.rollout.agent.agent_loop_manager_class`, verl's hook for a custom manager.
"""

from __future__ import annotations

import hashlib
from typing import Any

import ray
from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

MANAGER_CLASS = "verl_video.backends.seeding.SeededAgentLoopManager"


def trajectory_seed(run_seed: int, step: int, sample_index: Any, rollout_index: int, validate: bool = False) -> int:
    """A 63-bit seed that depends only on its arguments (not on process, batch or arrival order)."""
    key = f"{int(run_seed)}|{int(step)}|{sample_index}|{int(rollout_index)}|{'val' if validate else 'train'}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 1


class _SeededWorker(AgentLoopWorkerTQ.__ray_actor_class__):
    """verl's TransferQueue agent-loop worker; each trajectory's request carries its own seed."""

    async def _run_agent_loop(self, sampling_params: dict[str, Any], trajectory: dict[str, Any], **kwargs: Any):
        seeded = dict(sampling_params)
        seeded["seed"] = trajectory_seed(
            self.config.actor_rollout_ref.rollout.seed,
            trajectory.get("step", -1),
            trajectory.get("sample_index"),
            kwargs.get("session_id", 0),
            bool(trajectory.get("validate", False)),
        )
        return await super()._run_agent_loop(seeded, trajectory, **kwargs)


SeededAgentLoopWorker = ray.remote(_SeededWorker)


class SeededAgentLoopManager(AgentLoopManagerTQ):
    """verl's TransferQueue agent-loop manager with seeded workers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent_loop_workers_class = SeededAgentLoopWorker
