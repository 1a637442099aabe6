"""The `hf` rollout backend: verl's token-in/token-out server contract served by Hugging Face `generate`.

Three pieces, mirroring verl's vLLM backend so the trainer cannot tell them apart:
- `HFServer`, a Ray actor that owns an `HFEngine` and batches concurrent `generate` requests;
- `HFReplica`, the `RolloutReplica` that launches one server per replica;
- `HFServerAdapter`, the `BaseRollout` living in each trainer worker, which forwards the actor's weights
  to its replica's server after every update (checkpoint engine `naive`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Generator, Optional

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine, SamplingSettings, default_num_threads

logger = logging.getLogger(__name__)

SERVER_NAME_PREFIX = "hf_server_"


def server_actor_name(replica_rank: int, node_rank: int = 0) -> str:
    """Ray actor name of a replica's server; the adapter in the trainer worker finds it by this name."""
    return f"{SERVER_NAME_PREFIX}{replica_rank}_{node_rank}"


def _split_videos(video_data: Optional[list[Any]]) -> Optional[list[Any]]:
    """verl sends each video as (frames, metadata); keep that pairing for the processor."""
    if not video_data:
        return None
    return [tuple(v) if isinstance(v, (list, tuple)) and len(v) == 2 else v for v in video_data]


class HFServer:
    """Serves `generate` for one rollout replica; concurrent requests are gathered into batches."""

    def __init__(
        self, config: Any, model_config: Any, replica_rank: int = 0, batch_wait_s: float = 0.02,
        engine: Optional[HFEngine] = None,
    ) -> None:  # fmt: skip
        """`engine`: serve an engine loaded already (evaluation runs the agent loop in its own process)."""
        self.config = config
        self.replica_rank = replica_rank
        if engine is None:
            torch.set_num_threads(default_num_threads())
            model_path = model_config.local_path if hasattr(model_config, "local_path") else model_config["path"]
            engine = HFEngine(model_path, device="cpu", seed=int(getattr(config, "seed", 0) or 0))
        self.engine = engine
        self.max_batch = max(1, int(getattr(config, "max_num_seqs", 0) or 64))
        self.batch_wait_s = batch_wait_s
        self.global_steps: Optional[int] = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._worker: Optional[asyncio.Task] = None
        self._in_flight = 0
        self.stats = {"batches": 0, "requests": 0, "max_batch": 0}  # batching counters, read by tests

    # ------------------------------------------------------------------ generation
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> TokenOutput:
        """verl's server contract: one request in, its tokens and log-probs out (batched behind the scenes)."""
        if audio_data:
            raise NotImplementedError("the hf rollout backend does not take audio")
        prompt_ids = [int(t) for t in prompt_ids]
        budget = self.config.prompt_length + self.config.response_length - len(prompt_ids)
        default_max = max(1, min(self.config.response_length, budget))
        settings = SamplingSettings.from_verl(dict(sampling_params), default_max)
        seed = sampling_params.get("seed")
        request = GenerationRequest(
            prompt_ids,
            videos=_split_videos(video_data),
            images=image_data or None,
            seed=int(seed) if seed is not None else None,
        )
        future = asyncio.get_running_loop().create_future()
        self._in_flight += 1
        await self._queue.put((settings, request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve())
        try:
            result = await future
        finally:
            self._in_flight -= 1
        return TokenOutput(
            token_ids=result.token_ids,
            log_probs=result.log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def _serve(self) -> None:
        """Drain the queue into batches: wait briefly so requests sent together are generated together."""
        while True:
            first = await self._queue.get()
            await asyncio.sleep(self.batch_wait_s)
            pending = [first]
            while not self._queue.empty() and len(pending) < self.max_batch:
                pending.append(self._queue.get_nowait())
            groups: dict[SamplingSettings, list] = {}
            for item in pending:
                groups.setdefault(item[0], []).append(item)
            for settings, items in groups.items():
                await self._run_batch(settings, items)

    async def _run_batch(self, settings: SamplingSettings, items: list) -> None:
        """Generate one batch off the event loop so new requests keep arriving meanwhile."""
        requests = [item[1] for item in items]
        self.stats["batches"] += 1
        self.stats["requests"] += len(items)
        self.stats["max_batch"] = max(self.stats["max_batch"], len(items))
        try:
            results = await asyncio.to_thread(self.engine.generate, requests, settings)
        except Exception as exc:  # one failing batch fails its requests, not the server
            logger.exception("hf rollout: batch of %d failed", len(items))
            for _, _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(items, results):
            if not future.done():
                future.set_result(result)

    # ------------------------------------------------------------------ weights and lifecycle
    async def update_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: Optional[int] = None):
        """Load the actor's latest weights (called by `HFServerAdapter` between rollouts)."""
        loaded = await asyncio.to_thread(self.engine.load_weights, named_tensors)
        if global_steps is not None:
            self.global_steps = global_steps
        return loaded

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def wait_for_requests_to_drain(self) -> None:
        while self._in_flight:
            await asyncio.sleep(0.01)

    # CPU generation holds no device memory or KV cache between calls, so these are no-ops.
    async def wake_up(self, tags: Optional[list[str]] = None) -> None: ...

    async def sleep(self) -> None: ...

    async def clear_kv_cache(self) -> None: ...

    async def release_kv_cache(self) -> None: ...

    async def resume_kv_cache(self) -> None: ...

    async def resume_generation(self) -> None: ...

    async def start_profile(self, **kwargs: Any) -> None: ...

    async def stop_profile(self) -> None: ...

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        # Batches run to completion (they are short on CPU); nothing is left to abort.
        return {"aborted_count": 0, "request_ids": []}

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict:
        return {"aborted": False, "request_id": request_id}

    def get_server_address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), 0


class HFReplica(RolloutReplica):
    """One HF server per replica, scheduled on the node of the replica's first trainer worker."""

    async def launch_servers(self) -> None:
        if self.nnodes != 1:
            raise ValueError("the hf rollout backend serves a replica from one node; set tensor_model_parallel_size<=8")
        node_id = ray.get_runtime_context().get_node_id()
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        name = server_actor_name(self.replica_rank) + self.name_suffix
        server = (
            ray.remote(HFServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id, soft=False),
                runtime_env={"env_vars": {"OMP_NUM_THREADS": str(default_num_threads())}},
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        self.servers = [server]
        self._server_handle = server
        address, port = await server.get_server_address.remote()
        self._server_address = f"{address}:{port}"

    def rollout_worker_use_gpu(self) -> bool:
        return False


class HFServerAdapter(BaseRollout):
    """Lives in each trainer worker; the replica's first rank forwards the actor's weights to the server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, *args: Any, replica_rank: int = -1, **kwargs):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.is_leader = rank % world == 0
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def update_weights(
        self, weights: Generator[tuple[str, torch.Tensor], None, None], wire_format: str = "named_tensors", **kwargs
    ):
        """Gather the weights on CPU (every rank iterates: FSDP gathers collectively) and push them once."""
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout: weight wire format {wire_format!r} is not supported")
        named = []
        for name, tensor in weights:
            if hasattr(tensor, "full_tensor"):
                tensor = tensor.full_tensor()
            if self.is_leader:
                named.append((name, tensor.detach().to("cpu", copy=True)))
        if self.is_leader:
            await self._server_handle().update_weights.remote(named, kwargs.get("global_steps"))

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None
