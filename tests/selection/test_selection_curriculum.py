"""The curriculum sampler: order by difficulty, learn from rewards, resume through the dataloader's state."""

from __future__ import annotations

import json

import torch
from omegaconf import OmegaConf
from torchdata.stateful_dataloader import StatefulDataLoader

from verl_video.selection.curriculum import DifficultyCurriculumSampler

N = 12


class Records(torch.utils.data.Dataset):
    """Index i is record `r{i}` of dataset `demo`, shaped like the training dataset's row source."""

    class _Item:
        def __init__(self, i):
            self.dataset = "demo"
            self.record = type("R", (), {"id": f"r{i}"})()

    def __init__(self):
        self.dataframe = type("RowSource", (), {"items": [self._Item(i) for i in range(N)]})()

    def __len__(self):
        return N

    def __getitem__(self, i):
        return i


def config(**sampler):
    return OmegaConf.create({"seed": 7, "sampler": {"class_path": "pkg://verl_video.selection.curriculum",
                                                    "class_name": "DifficultyCurriculumSampler", **sampler}})


def loader(sampler):
    return StatefulDataLoader(Records(), batch_size=2, sampler=sampler, num_workers=0, drop_last=True,
                              collate_fn=lambda rows: rows)


def reward_of(index: int) -> float:
    return (index * 7 % N) / N  # a fixed "skill" per record, unrelated to the index order


def test_stats_order_easy_records_first(tmp_path):
    stats = tmp_path / "stats.jsonl"
    ious = {i: (i * 5 % N) / N for i in range(N)}
    stats.write_text("".join(json.dumps({"id": f"r{i}", "dataset": "demo", "record": {"id": f"r{i}"},
                                         "ious": [iou], "greedy_iou": iou}) + "\n" for i, iou in ious.items()))
    sampler = DifficultyCurriculumSampler(Records(), config(stats=str(stats)))
    order = [i for batch in loader(sampler) for i in batch]
    assert [ious[i] for i in order] == sorted(ious.values(), reverse=True)
    hard = DifficultyCurriculumSampler(Records(), config(stats=str(stats), order="hard_first"))
    assert [ious[i] for batch in loader(hard) for i in batch] == sorted(ious.values())


def run(steps, sampler, dl=None, it=None):
    """Draw `steps` batches, feeding each batch's rewards back as the trainer does after every step."""
    dl = dl or loader(sampler)
    it = it or iter(dl)
    drawn = []
    for _ in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(dl)
            batch = next(it)
        drawn.extend(batch)
        sampler.update({"index": batch, "score": [reward_of(i) for i in batch]})
    return drawn, dl, it


def test_running_rewards_reorder_the_next_epoch():
    sampler = DifficultyCurriculumSampler(Records(), config())
    drawn, _, _ = run(2 * N // 2, sampler)
    first, second = drawn[:N], drawn[N:]
    assert sorted(first) == sorted(second) == list(range(N))  # each epoch visits every record once
    assert [reward_of(i) for i in second] == sorted((reward_of(i) for i in range(N)), reverse=True)


def test_a_resumed_run_continues_the_same_curriculum(tmp_path):
    reference = DifficultyCurriculumSampler(Records(), config())
    straight, _, _ = run(15, reference)

    sampler = DifficultyCurriculumSampler(Records(), config())
    head, dl, _ = run(8, sampler)  # into the second epoch
    torch.save(dl.state_dict(), tmp_path / "data.pt")  # what verl's checkpoint stores

    resumed = DifficultyCurriculumSampler(Records(), config())
    dl2 = loader(resumed)
    dl2.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    tail, _, _ = run(7, resumed, dl2)
    assert head + tail == straight
    assert resumed.state_dict() == reference.state_dict()
