"""Per-trajectory sampling seeds, so a run's rollouts do not depend on how requests were batched.

verl's agent loop sends every rollout request without a seed (or, with `rollout.full_determinism`, one
seed for all of them, which makes the n rollouts of a prompt identical). Our agent loop derives one seed
per trajectory from (run seed, step, sample index, rollout index) and puts it in the request's sampling
parameters: vLLM honours `seed` per request, and our `hf` server samples each row from its own generator
(`hf_engine.SeededSampler`). The same trajectory is then drawn whatever batch it lands in.

`SeededSingleTurnAgentLoop` is the base of the agent loop our config selects (`verl_adapter/agent_loop.py`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

logger = logging.getLogger("verl_video")


def trajectory_seed(run_seed: int, step: int, sample_index: Any, rollout_index: int) -> int:
    """A 63-bit seed that depends only on its arguments (not on process, batch or arrival order)."""
    key = f"{int(run_seed)}|{int(step)}|{sample_index}|{int(rollout_index)}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 1


class SeededSingleTurnAgentLoop(SingleTurnAgentLoop):
    """verl's single-turn agent loop; each request carries the seed of its trajectory."""

    _warned = False

    def request_seed(self, kwargs: dict[str, Any]) -> int | None:
        """The trajectory's sampling seed, or None (warned once) when verl passed nothing stable to derive it from."""
        # verl's TransferQueue worker passes the prompt's fields (index, global_steps) and the rollout index
        # (session_id); without them (verl's legacy trainer) there is nothing stable to derive a seed from.
        if all(key in kwargs for key in ("index", "global_steps", "session_id")):
            return trajectory_seed(
                self.rollout_config.seed, kwargs["global_steps"], kwargs["index"], kwargs["session_id"]
            )
        if not SeededSingleTurnAgentLoop._warned:
            SeededSingleTurnAgentLoop._warned = True
            logger.warning("verl-video: rollout requests are not seeded (no index/global_steps/session_id from verl)")
        return None

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any):
        seed = self.request_seed(kwargs)
        if seed is not None:
            sampling_params = {**sampling_params, "seed": seed}
        return await super().run(sampling_params, **kwargs)
