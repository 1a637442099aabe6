"""A dead rollout worker fails verl's wait for its samples, instead of hanging the trainer; a busy one does not.

Real Ray actors and verl's own sync ReplayBuffer: its `sample` loop polls TransferQueue until enough groups
are finished. TransferQueue is replaced by an empty listing, so the loop waits as it does for groups that a
dead worker will never write.
"""

from __future__ import annotations

import tempfile
import threading
import time

import pytest
import ray
from omegaconf import OmegaConf
from verl.trainer.ppo.v1 import replay_buffer as replay_buffer_module
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from verl_video.verl_adapter.worker_watch import ActorWatch, RolloutWorkerDied, watch_replay_buffer

# A death must end the wait within a few pings (every 0.2 s here), not after a timeout of minutes.
FAIL_WITHIN_S = 20.0


@ray.remote
class Worker:
    """Stands in for an agent-loop worker: it can be kept busy, so that its pings wait."""

    def busy(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.fixture(scope="module")
def local_ray():
    with tempfile.TemporaryDirectory(prefix="vv-watch-") as tmp:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, log_to_driver=False)
        yield
        ray.shutdown()


def _waiting_buffer(monkeypatch) -> ReplayBuffer:
    """verl's sync replay buffer over a TransferQueue that never gets a finished group."""
    monkeypatch.setattr(replay_buffer_module.tq, "kv_list", lambda *args, **kwargs: None)
    return ReplayBuffer("sync", OmegaConf.create({}), None, "drop", OmegaConf.create({}), poll_interval=0.05)


def _sample_in_thread(buffer: ReplayBuffer) -> tuple[threading.Thread, dict]:
    """Start verl's `sample`; the returned dict gets its exception when it ends."""
    outcome: dict = {}

    def run() -> None:
        try:
            buffer.sample(global_steps=1, partition_id="train", batch_size=4)
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever ended the wait
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_killed_worker_ends_verls_wait_with_its_death(local_ray, monkeypatch):
    workers = [Worker.remote(), Worker.remote()]
    ray.get([w.__ray_ready__.remote() for w in workers])
    buffer = _waiting_buffer(monkeypatch)
    watch_replay_buffer(buffer, workers, every_s=0.2)
    thread, outcome = _sample_in_thread(buffer)
    time.sleep(1.0)
    assert thread.is_alive(), f"the wait ended while both workers were alive: {outcome}"

    ray.kill(workers[1], no_restart=True)
    killed_at = time.monotonic()
    thread.join(FAIL_WITHIN_S)
    assert not thread.is_alive(), "verl's wait went on after a worker died"
    assert isinstance(outcome.get("error"), RolloutWorkerDied), outcome
    assert "rollout worker 1" in str(outcome["error"])
    assert time.monotonic() - killed_at < FAIL_WITHIN_S


def test_a_busy_worker_is_not_taken_for_dead(local_ray):
    worker = Worker.remote()
    ray.get(worker.__ray_ready__.remote())
    job = worker.busy.remote(3.0)  # its pings queue behind this call
    watch = ActorWatch([worker], every_s=0.1)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        watch.check()
        time.sleep(0.05)
    ray.get(job)

    ray.kill(worker, no_restart=True)
    deadline = time.monotonic() + FAIL_WITHIN_S
    with pytest.raises(RolloutWorkerDied, match="died while the trainer waited"):
        while time.monotonic() < deadline:
            watch.check()
            time.sleep(0.05)
