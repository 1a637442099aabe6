"""verl's vLLM rollout adapter with weight syncs that fail when the vLLM side fails (see weight_sync.py).

Registered for `actor_rollout_ref.rollout.name=vllm` on every device (GPU runs hang the same way). It is
verl's `ServerAdapter` except that the receiver RPC it starts for each weight sync is handed to the
sender, whose waits then end with the receiver's error instead of blocking forever.
"""

from __future__ import annotations

from typing import Any

from verl.workers.rollout.vllm_rollout import vllm_rollout as verl_vllm_rollout

from verl_video.verl_adapter.weight_sync import RECEIVERS, WatchedWeightSender

# The vLLM worker method that receives a weight sync (verl's worker extension).
RECEIVER_METHOD = "update_weights_from_ipc"


class VLLMServerAdapter(verl_vllm_rollout.ServerAdapter):
    """verl's vLLM server adapter; each weight sync's receiver RPC is registered for its sender."""

    async def _execute_method(self, method: str, non_block: bool = False, **options: Any) -> Any:
        """verl's RPC into the vLLM workers; a non-blocking weight receiver is recorded by its ZMQ address."""
        result = await super()._execute_method(method, non_block=non_block, **options)
        if method == RECEIVER_METHOD and non_block and result is not None:
            RECEIVERS[self.zmq_handle] = result.future()
        return result


# verl's update_weights builds its sender by this module-level name, after starting the receiver.
verl_vllm_rollout.BucketedWeightSender = WatchedWeightSender
