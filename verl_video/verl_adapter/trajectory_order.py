"""One trajectory order whatever rollout finished first, so the same run computes the same update.

verl 0.9.1 names prompts with random uuids and hands the trainer its batch in completion order; the order
decides the micro-batches and so the float sums of the update. `numbered_uids` prefixes each prompt's uid
with (step, position in the dataloader order); `trajectory_order` sorts a batch's TransferQueue keys
(`{uid}_{rollout}_{turn}`) by that uid, then rollout, then turn. The trainer numbers the prompts it fetches
and reorders each batch before verl balances it across data-parallel ranks.
"""

from __future__ import annotations


def numbered_uids(uids: list, step: int, start: int) -> list[str]:
    """`{step}-{start + i}-{uid}` for each uid: zero-padded, so string order is (step, position) order."""
    return [f"{step:09d}-{start + i:09d}-{uid}" for i, uid in enumerate(uids)]


def trajectory_order(keys: list[str]) -> list[int]:
    """Positions of TransferQueue keys (`{uid}_{rollout}_{turn}`) sorted by prompt, then rollout, then turn."""

    def sort_key(position: int) -> tuple:
        uid, _, rest = str(keys[position]).partition("_")
        numbers = tuple(int(part) if part.isdigit() else -1 for part in rest.split("_"))
        return (uid, numbers)

    return sorted(range(len(keys)), key=sort_key)
