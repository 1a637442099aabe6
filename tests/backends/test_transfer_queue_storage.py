"""verl's TransferQueue on one machine: the CPU profiles start one storage process where verl starts eight."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir

from verl_video.verl_adapter.driver import CONFIG_DIR


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        return compose(config_name="video_grpo", overrides=list(overrides))


@pytest.mark.parametrize("profile", ["cpu", "cpu_vllm"])
def test_the_cpu_profiles_start_one_transfer_queue_storage_process(profile):
    """TransferQueue started from the composed section, on a Ray of the profile's size (as verl's TaskRunner
    starts it), makes one storage actor."""
    import ray
    import transfer_queue as tq

    config = _compose(f"profile={profile}")
    # Each TransferQueue actor holds a CPU of Ray's count: verl's 8 storage units would fit too.
    ray.init(num_cpus=config.ray_kwargs.ray_init.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        conf = tq.init(config.transfer_queue)
        units = [actor for actor in ray.util.list_named_actors(all_namespaces=True) if "StorageUnit" in str(actor)]
        assert len(units) == 1, units
        assert len(conf.backend.SimpleStorage.zmq_info) == 1
    finally:
        tq.close()
        ray.shutdown()
