"""verl's vLLM rollout adapter with weight syncs that fail when the vLLM side fails (see weight_sync.py).

Registered for `actor_rollout_ref.rollout.name=vllm` on every device (GPU runs hang the same way). It is
verl's `ServerAdapter` except that the receiver RPC it starts for each weight sync is handed to the
sender, whose waits then end with the receiver's error instead of blocking forever. verl builds that sender
from `weight_sync.WatchedWeightSender` once the patch `patches/verl_vllm_weight_sender.py` is applied, which
this adapter's construction does.
"""

from __future__ import annotations

from typing import Any

from verl.workers.rollout.vllm_rollout import vllm_rollout as verl_vllm_rollout

from verl_video.verl_adapter.patches import apply_all
from verl_video.verl_adapter.weight_sync import RECEIVERS

# The vLLM worker method that receives a weight sync (verl's worker extension).
RECEIVER_METHOD = "update_weights_from_ipc"


class VLLMServerAdapter(verl_vllm_rollout.ServerAdapter):
    """verl's vLLM server adapter; each weight sync's receiver RPC is registered for its sender."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # verl's vLLM rollout module is loaded now: its weight sender can be replaced (patches/verl_vllm_weight_sender.py).
        apply_all()
        super().__init__(*args, **kwargs)

    async def _execute_method(self, method: str, non_block: bool = False, **options: Any) -> Any:
        """verl's RPC into the vLLM workers; a non-blocking weight receiver is recorded by its ZMQ address."""
        result = await super()._execute_method(method, non_block=non_block, **options)
        if method == RECEIVER_METHOD and non_block and result is not None:
            RECEIVERS[self.zmq_handle] = result.future()
        return result

