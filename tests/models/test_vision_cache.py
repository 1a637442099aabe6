"""Vision feature reuse, tiny Qwen2.5-VL and Qwen3-VL: log-probs and projector gradients as without it, fewer
encoder runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from verl_video.models import vision_cache
from verl_video.models.vision_tower import VisionSettings, apply_freeze, find_vision_tower
from verl_video.tools.vl_batches import micro_batches, token_log_probs, video_rows

# Two videos of different sizes (t, h, w in patches); each row of the batch is one rollout of one of them.
# Qwen3-VL writes a timestamp between frame groups, so its synthetic rows hold one group (t = 1).
GRIDS = {"qwen2_5_vl": [(2, 4, 4), (2, 4, 8)], "qwen3_vl": [(1, 4, 4), (1, 4, 8)]}
ROLLOUTS = 3
MICRO_BATCH = 2


@pytest.fixture(params=["qwen2_5_vl", "qwen3_vl"])
def family_model(request) -> tuple[str, Path]:
    """(family, tiny model directory) for each family whose tower reuse supports."""
    fixture = "tiny_model_dir" if request.param == "qwen2_5_vl" else "tiny_qwen3_model_dir"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture(autouse=True)
def fresh_store(monkeypatch):
    """Each test gets its own process store."""
    monkeypatch.setattr(vision_cache, "_STORE", None)
    yield
    vision_cache._STORE = None


def _model(tiny_model_dir, *, reuse: bool, freeze_projector: bool = False):
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    settings = VisionSettings(freeze_encoder=True, freeze_projector=freeze_projector, reuse_features=reuse)
    apply_freeze(model, settings)
    hook = vision_cache.install_feature_reuse(
        model, reuse=reuse, projector_frozen=freeze_projector, model_key=str(tiny_model_dir)
    )
    assert hook is not None
    return model


def _rows(model, family: str) -> list[dict]:
    return video_rows(model.config, GRIDS[family], ROLLOUTS)


def _micro_batches(rows: list[dict], order: list[int]):
    return micro_batches(rows, order, MICRO_BATCH)


def _one_step(model, rows) -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
    """An old-log-prob pass, then an update pass (backward) over the rows in another order, as GRPO does."""
    with torch.no_grad():
        old = [token_log_probs(model, mb) for mb in _micro_batches(rows, list(range(len(rows))))]
    shuffled = [3, 0, 5, 1, 4, 2]
    new = []
    for mb in _micro_batches(rows, shuffled):
        lp = token_log_probs(model, mb)
        lp.sum().backward()
        new.append(lp.detach())
    return old, new, vision_cache.step_metrics()


def _projector_grads(model) -> dict[str, torch.Tensor]:
    return {
        f"{i}.{n}": p.grad.clone()
        for i, projector in enumerate(vision_cache.projectors(find_vision_tower(model)))
        for n, p in projector.named_parameters()
    }


def test_reuse_gives_the_same_log_probs_and_projector_gradients(family_model):
    family, tiny_model_dir = family_model
    plain = _model(tiny_model_dir, reuse=False)
    rows = _rows(plain, family)
    old_plain, new_plain, counts_plain = _one_step(plain, rows)
    grads_plain = _projector_grads(plain)
    vision_cache.end_step()

    cached = _model(tiny_model_dir, reuse=True)
    old_cached, new_cached, counts_cached = _one_step(cached, rows)
    grads_cached = _projector_grads(cached)

    # Tolerance 1e-6 absolute (fp32): a cached video was encoded inside another micro-batch, and matrix
    # products over differently sized batches may round differently. Measured here: identical.
    for a, b in zip(old_plain + new_plain, old_cached + new_cached):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert grads_plain.keys() == grads_cached.keys()
    # Qwen3-VL: the deepstack merger trains through the stored features too.
    assert len({name.split(".")[0] for name in grads_plain}) == (2 if family == "qwen3_vl" else 1)
    for name in grads_plain:
        assert grads_plain[name].abs().sum() > 0, name
        torch.testing.assert_close(grads_cached[name], grads_plain[name], rtol=1e-6, atol=1e-7)

    videos = len(GRIDS[family])
    rows_seen = 2 * len(rows)  # every row goes through two passes
    assert counts_plain["vision/encoder_passes"] == rows_seen
    assert counts_plain["vision/unique_videos"] == videos
    assert counts_cached["vision/encoder_passes"] == videos
    assert counts_cached["vision/encoder_passes_per_video"] == 1.0
    assert counts_cached["vision/feature_reuses"] == rows_seen - videos


def test_frozen_projector_caches_the_projected_output(family_model):
    family, tiny_model_dir = family_model
    plain = _model(tiny_model_dir, reuse=False, freeze_projector=True)
    rows = _rows(plain, family)
    with torch.no_grad():
        expected = [token_log_probs(plain, mb) for mb in _micro_batches(rows, list(range(len(rows))))]
    vision_cache.end_step()
    cached = _model(tiny_model_dir, reuse=True, freeze_projector=True)
    merger_calls = []
    find_vision_tower(cached).merger.register_forward_hook(lambda *args: merger_calls.append(1))
    with torch.no_grad():
        got = [token_log_probs(cached, mb) for mb in _micro_batches(rows, list(range(len(rows))))]
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    # The merger ran only inside the two encoder runs (one per micro-batch holding a new video).
    assert vision_cache.step_metrics()["vision/encoder_passes"] == len(GRIDS[family])
    assert len(merger_calls) == 2


def test_videos_with_equal_pixel_sums_count_as_two(tiny_model_dir):
    # Two zoom windows of one demo video once gave equal grids and equal pixel sums with other pixels: the store
    # encoded both (it compares pixels), the metric counted one video, and read 20 passes for 19 videos.
    model = _model(tiny_model_dir, reuse=True)
    tower = find_vision_tower(model)
    patches, width = 2 * 4 * 4, tower.patch_embed.proj.weight[0].numel()
    first = torch.randint(-3, 4, (patches, width), generator=torch.Generator().manual_seed(0)).float()
    second = first.roll(1, dims=0)  # the same values, rows in another order: the same sum, exactly
    assert first.sum() == second.sum() and not torch.equal(first, second)
    with torch.no_grad():
        tower(torch.cat([first, second]), grid_thw=torch.tensor([[2, 4, 4], [2, 4, 4]]))
    counts = vision_cache.step_metrics()
    assert counts["vision/encoder_passes"] == 2 and counts["vision/unique_videos"] == 2
    assert counts["vision/encoder_passes_per_video"] == 1.0


def test_store_stays_under_its_cap_and_a_step_end_empties_it():
    store = vision_cache.FeatureStore(cap_bytes=3 * 4 * 100)  # room for three entries of 2 x 50 floats
    for i in range(5):
        store.insert(("m", i), torch.full((50,), float(i)), (torch.zeros(50),))
    assert store.nbytes <= store.cap_bytes
    assert store.lookup(("m", 0), torch.full((50,), 0.0)) is None  # the oldest went first
    assert store.lookup(("m", 4), torch.full((50,), 4.0)) is not None
    # Same key, different pixels: never served.
    assert store.lookup(("m", 4), torch.full((50,), 5.0)) is None
    store.insert(("m", 9), torch.zeros(1000), (torch.zeros(1),))  # larger than the cap: not kept
    assert store.lookup(("m", 9), torch.zeros(1000)) is None
    store.clear()
    assert store.nbytes == 0 and not store.entries


def test_reuse_is_ignored_when_the_encoder_trains(caplog):
    config = {"actor_rollout_ref": {"actor": {"freeze_vision_tower": False}}, "vision": {"reuse_features": True}}
    with caplog.at_level("WARNING", logger="verl_video"):
        settings = VisionSettings.from_config(config)
    assert settings.reuse_features is False
    assert "reuse_features=true ignored" in caplog.text
    frozen = {"actor_rollout_ref": {"actor": {"freeze_vision_tower": True}}, "vision": {"reuse_features": None}}
    assert VisionSettings.from_config(frozen).reuse_features is True


def _two_rank_worker(rank: int, init_file: str, model_dir: str, out_dir: str) -> None:
    """One of two gloo ranks: vision blocks sharded with FSDP2, so an encoder run is a collective."""
    import json

    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model = _model(model_dir, reuse=True)
    mesh = init_device_mesh("cpu", (2,))
    for block in find_vision_tower(model).blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    rows = _rows(model, "qwen2_5_vl")
    video_a, video_b = 0, ROLLOUTS  # first rows of the two videos
    # Both ranks miss; then rank 0 hits while rank 1 misses; then both hit.
    schedule = [(video_a, video_a), (video_a, video_b), (video_a, video_b)]
    counts = []
    with torch.no_grad():
        for pair in schedule:
            batch = next(_micro_batches(rows, [pair[rank]]))
            model(**batch, use_cache=False)
            counters = vision_cache.process_store().counters
            counts.append([counters.encoded, counters.sync_passes])
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(counts))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_run_the_sharded_encoder_together(tiny_model_dir, tmp_path):
    import json
    import time

    import torch.multiprocessing as mp

    context = mp.start_processes(
        _two_rank_worker,
        args=(str(tmp_path / "init"), str(tiny_model_dir), str(tmp_path)),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("ranks hung: one ran the sharded encoder while the other skipped it")
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    # [videos encoded, dummy runs] after each call. Rank 0's hit in call 2 still runs the encoder on the dummy
    # input because rank 1 missed; in call 3 both hit and neither runs it.
    assert rank0 == [[1, 0], [1, 1], [1, 1]]
    assert rank1 == [[1, 0], [2, 0], [2, 0]]
