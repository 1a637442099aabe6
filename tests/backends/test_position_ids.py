"""M-RoPE position ids fetched from TransferQueue reach the actor update per sample, equal lengths or not.

TransferQueue nests a worker's samples ragged on their rope rows when every sample has the same length; verl's
fix-up then misreads them (`split_with_sizes` in the actor update, found by a soak run with 2 prompts a step).
"""

from __future__ import annotations

import pickle

import pytest
import torch
from tensordict import TensorDict
from transfer_queue.storage.managers.simple_storage_manager import AsyncSimpleStorageManager
from verl.utils.tensordict_utils import make_iterator, nested_tensor_from_tensor_list

ROWS = 4  # Qwen3-VL: the text row and the three rope rows


def _samples(lengths: list[int]) -> dict[str, list[torch.Tensor]]:
    """Per-sample token ids and (ROWS, length) position ids, every value distinct."""
    position_ids = [torch.arange(ROWS * n).view(ROWS, n) + 10_000 * i for i, n in enumerate(lengths)]
    return {"input_ids": [torch.arange(n) + 10_000 * i for i, n in enumerate(lengths)], "position_ids": position_ids}


def _from_transfer_queue(samples: dict[str, list[torch.Tensor]]) -> TensorDict:
    """The batch a worker gets: TransferQueue's storage manager packs each field's samples as it does in get_data."""
    fields = {name: AsyncSimpleStorageManager._pack_field_values(values) for name, values in samples.items()}
    return TensorDict(fields, batch_size=len(samples["input_ids"]))


def _pickled_verl_batch(samples: dict[str, list[torch.Tensor]]) -> TensorDict:
    """verl's own nesting (ragged on the sequence), consolidated and pickled: the case verl's fix-up exists for."""
    fields = {name: nested_tensor_from_tensor_list(values) for name, values in samples.items()}
    batch = TensorDict(fields, batch_size=len(samples["input_ids"]))
    return pickle.loads(pickle.dumps(batch.consolidate()))


def _actor_update_view(batch: TensorDict, mini_batch_size: int) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
    """What verl's update_actor does with the batch (engine_workers.py:252, 289-290): per mini-batch, each
    sample's position ids and the packed values the engine feeds the model."""
    from verl.workers import engine_workers

    engine_workers.maybe_fix_3d_position_ids(batch)
    seen = []
    for mini_batch in make_iterator(batch, mini_batch_size=mini_batch_size, epochs=1):
        engine_workers.maybe_fix_3d_position_ids(mini_batch)
        position_ids = mini_batch["position_ids"]
        seen.append((list(position_ids.unbind()), position_ids.values()))
    return seen


def _assert_per_sample(seen: list, expected: list[torch.Tensor]) -> None:
    """Mini-batches in order hold the samples unchanged, and their values are (ROWS, tokens of the mini-batch)."""
    got = [sample for samples, _ in seen for sample in samples]
    assert len(got) == len(expected)
    for sample, want in zip(got, expected):
        assert torch.equal(sample, want)
    start = 0
    for samples, values in seen:
        assert torch.equal(values, torch.cat(expected[start:start + len(samples)], dim=1))
        start += len(samples)


@pytest.mark.parametrize("lengths, mini_batch_size", [
    ([1273, 1273], 1),  # the soak run: 2 samples cut at max_response_length, one a mini-batch
    ([37, 37, 37, 37], 2),
    ([8, 8], 1),  # values (8, 8): square, told apart by the token ids' lengths
    ([5], 1),
])
def test_a_worker_updates_on_equal_length_samples_from_transfer_queue(lengths, mini_batch_size):
    samples = _samples(lengths)
    batch = _from_transfer_queue(samples)
    assert batch["position_ids"].values().shape == (ROWS * len(lengths), lengths[0])  # ragged on the rows
    _assert_per_sample(_actor_update_view(batch, mini_batch_size), samples["position_ids"])


@pytest.mark.parametrize("source, lengths", [
    (_from_transfer_queue, [30, 41, 30, 52]),  # unequal lengths: TransferQueue nests them on the sequence
    (_pickled_verl_batch, [30, 41, 30, 52]),
    (_pickled_verl_batch, [2, 2]),  # values (4, 4): square, told apart by the token ids' lengths
])
def test_batches_verl_already_handles_come_back_as_verl_makes_them(source, lengths):
    from verl.utils import tensordict_utils

    samples = _samples(lengths)
    ours = _actor_update_view(source(samples), mini_batch_size=2)
    _assert_per_sample(ours, samples["position_ids"])
    # verl's own fix-up, alone, gives the same tensors: the patch leaves these batches to it.
    verl_fix = tensordict_utils.maybe_fix_3d_position_ids.verl_original
    batch = source(samples)
    verl_fix(batch)
    assert batch["position_ids"]._ragged_idx == 2
    for (mine, _), mini_batch in zip(ours, make_iterator(batch, mini_batch_size=2, epochs=1)):
        verl_fix(mini_batch)
        assert all(torch.equal(a, b) for a, b in zip(mine, mini_batch["position_ids"].unbind()))
