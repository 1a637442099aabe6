"""A rollout worker that dies fails the run, instead of leaving the trainer waiting for its samples forever.

verl 0.9.1's V1 trainer hands each batch to its agent-loop workers fire and forget
(`AgentLoopManagerTQ.generate_sequences` returns once the workers have *started* the prompts), then polls
TransferQueue (`ReplayBuffer._wait_for_next_poll`, train and validation alike) until enough groups are
finished. A worker that dies in between (Ray's memory monitor kills the largest process under memory
pressure; a crash in a video decoder) never writes its groups, and nothing watches it: the run waits
forever without an error. That happened in our CI on a loaded 2-core machine.

`watch_replay_buffer` makes each of the buffer's waits also check, at most every `every_s`, that every
worker actor still answers; when Ray reports one dead it raises `RolloutWorkerDied` with Ray's own death
cause (e.g. the memory monitor's message). A worker that is merely busy is never taken for dead: only a
ping that Ray fails counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError

EVERY_S = 5.0


class RolloutWorkerDied(RuntimeError):
    """A rollout worker actor died while the trainer was waiting for its samples."""


class ActorWatch:
    """Pings a set of Ray actors without blocking; `check` raises once Ray reports one of them dead."""

    def __init__(self, actors: Sequence[Any], every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._actors = list(actors)
        self._every_s = every_s
        self._clock = clock
        self._last = float("-inf")
        self._pings: dict[ray.ObjectRef, int] = {}

    def _describe(self, index: int) -> str:
        """`rollout worker i (Ray actor <id>)`, for the error message."""
        actor_id = getattr(self._actors[index], "_actor_id", None)
        return f"rollout worker {index} (Ray actor {actor_id.hex() if actor_id else '?'})"

    def check(self) -> None:
        """Raise RolloutWorkerDied if a watched actor has died; otherwise return at once."""
        if self._pings:
            ready, _ = ray.wait(list(self._pings), num_returns=len(self._pings), timeout=0)
            for ref in ready:
                index = self._pings.pop(ref)
                try:
                    ray.get(ref)
                except ActorUnavailableError:
                    pass  # restarting or unreachable for now: ping again next round
                except ActorDiedError as exc:
                    raise RolloutWorkerDied(
                        f"{self._describe(index)} died while the trainer waited for its rollouts; the run cannot "
                        f"finish this step (Ray's reason follows). If Ray's memory monitor killed it, give the run "
                        f"more memory or smaller batches.\n{exc}"
                    ) from exc
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        waiting = set(self._pings.values())
        for index, actor in enumerate(self._actors):
            if index not in waiting:  # a busy worker keeps its one ping in flight
                self._pings[actor.__ray_ready__.remote()] = index


def watch_replay_buffer(buffer: Any, actors: Sequence[Any], every_s: float = EVERY_S) -> ActorWatch:
    """Make `buffer`'s wait between TransferQueue polls fail when one of `actors` has died."""
    watch = ActorWatch(actors, every_s)
    wait = buffer._wait_for_next_poll

    def watched_wait(partition_id: str, last_debug_time: float) -> float:
        watch.check()
        return wait(partition_id, last_debug_time)

    buffer._wait_for_next_poll = watched_wait
    return watch
