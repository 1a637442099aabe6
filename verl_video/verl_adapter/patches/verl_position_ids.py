"""Patch: verl's `maybe_fix_3d_position_ids` also mends M-RoPE position ids nested on their rope rows.

What: `verl.utils.tensordict_utils.maybe_fix_3d_position_ids` (and its by-name copies in verl's engine and
worker modules) becomes `fix_3d_position_ids`: where a batch's (rows, seq) position ids are nested ragged on the
rows, it rebuilds them ragged on the sequence; every other batch goes to verl's function (kept as `verl_original`).
Why: TransferQueue packs a worker's samples with `torch.nested.as_nested_tensor(..., layout=torch.jagged)`
(transfer_queue 0.1.11, storage/managers/simple_storage_manager.py:574), and torch puts the ragged dimension on
the first one whose sizes differ. When every sample of a batch has the same length, that is the rope rows: values
(batch*rows, seq). verl 0.9.1 (utils/tensordict_utils.py:915) then sets `_ragged_idx = 2` blindly, and the next
`unbind` splits the sequence by the row counts: `split_with_sizes expects split_sizes to sum exactly to <seq>`
in the actor update (a soak run with 2 prompts a step, step 15). The rebuilt tensor is what verl builds itself
(values (rows, total tokens)), so the engine's `position_ids.values()` is right too. Batches of unequal lengths
are untouched. Must run before verl's engine modules import the function by name (they are rebound if loaded).
Fails without it: tests/backends/test_position_ids.py::test_a_worker_updates_on_equal_length_samples_from_transfer_queue.
"""

from __future__ import annotations

import sys

import torch
from tensordict import TensorDict

TARGET = ("verl", "0.9.1")
TEST = "tests/backends/test_position_ids.py::test_a_worker_updates_on_equal_length_samples_from_transfer_queue"
PROCESSES = ("verl",)
# verl's modules that import the function by name (`from verl.utils.tensordict_utils import ...`).
BOUND_IN = ("verl.workers.engine_workers", "verl.workers.engine.base", "verl.workers.engine_workers_tinker")


def ragged_on_rows(position_ids: torch.Tensor, token_ids: torch.Tensor | None = None) -> bool:
    """Whether position ids are 3-D jagged ones laid out ragged on their rope rows: values (batch*rows, seq).

    verl's layout is values (rows, total tokens). The two read alike only when the values are square; then the
    token ids' offsets (the sequence lengths), where given as a jagged tensor, tell them apart.
    """
    if not (position_ids.is_nested and position_ids.layout == torch.jagged and position_ids.dim() == 3):
        return False
    values, total = position_ids.values(), int(position_ids.offsets()[-1])
    if values.dim() != 2 or values.shape[0] != total:
        return False
    if values.shape[1] != total:
        return True
    if token_ids is not None and token_ids.is_nested and token_ids.layout == torch.jagged:
        return not torch.equal(token_ids.offsets().cpu(), position_ids.offsets().cpu())
    return False


def apply() -> bool:
    """Replace verl's position-id fix-up, and its copies in loaded engine modules, once per process; True."""
    from verl.utils import tensordict_utils

    current = tensordict_utils.maybe_fix_3d_position_ids
    if not getattr(current, "mends_rows_ragged", False):

        def fix_3d_position_ids(data: TensorDict) -> None:
            """verl's fix-up of nested 3-D position ids, which first re-nests ids ragged on their rope rows."""
            position_ids = data.get("position_ids", None)
            if isinstance(position_ids, torch.Tensor) and ragged_on_rows(position_ids, data.get("input_ids", None)):
                # Split on the rows by the offsets directly: unbind would follow a _ragged_idx already set to 2.
                rows = torch.split(position_ids.values(), position_ids.offsets().diff().tolist(), dim=0)
                data["position_ids"] = tensordict_utils.nested_tensor_from_tensor_list(list(rows), ragged_idx=2)
                return
            current(data)

        fix_3d_position_ids.mends_rows_ragged = True
        fix_3d_position_ids.verl_original = current
        tensordict_utils.maybe_fix_3d_position_ids = fix_3d_position_ids
    for name in BOUND_IN:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "maybe_fix_3d_position_ids"):
            module.maybe_fix_3d_position_ids = tensordict_utils.maybe_fix_3d_position_ids
    return True
