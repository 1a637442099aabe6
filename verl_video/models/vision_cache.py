"""Reuse a frozen vision encoder's features within a training step instead of recomputing them per pass.

With GRPO every video appears in n rollouts, and each of them goes through the vision encoder in the
old-log-prob pass, the reference pass and every update pass. With the encoder frozen its output for a video
cannot change during a step, so `install_feature_reuse` replaces the tower's `forward` (on one model
instance) with one that computes each distinct video once and serves later requests from a per-process
store:

- what is stored is the encoder's output before the projector (Qwen's `merger`), one entry per video (a
  forward gets several videos concatenated; they are split by `grid_thw`). Qwen3-VL also projects the
  hidden states of some middle blocks ("deepstack", each with its own merger) for the language model's
  first layers; their inputs are stored beside the last block's. The projectors train by default, so they
  run on every pass, on the stored features, and get their gradients as before. With the projector frozen
  too (`vision.freeze_projector`) the projected outputs are stored and nothing of the tower runs again.
- entries are found by grid and a pixel checksum and confirmed by exact equality of the pixels, so a hit
  is always the same input; the pixels are compared in the dtype the encoder computes in, which lets the
  actor and the reference model (both loaded from the same path, both running the frozen encoder in the
  same dtype) share entries.
- under FSDP the encoder's blocks are sharded, and running one is a collective: if one rank ran the encoder
  and another skipped it, both would hang. Every call all-reduces a "some input missed" flag; when any rank
  missed, the ranks without a miss run the encoder on a 16-patch dummy input (as verl does for text-only
  batches) so every rank joins the same all-gathers.
- memory: the store holds one step's videos (the engine clears it when the actor's update ends) and never
  more than `feature_cache_mb`; beyond it the oldest entries are dropped (a dropped video is recomputed).

Counters for the step's metrics (`vision/*`) are kept whether reuse is on or off.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from transformers.modeling_outputs import BaseModelOutputWithPooling

from verl_video.models.vision_tower import find_vision_tower

logger = logging.getLogger("verl_video")

# Towers whose forward is patch embedding -> blocks -> projectors, each projector (`merger`, and Qwen3-VL's
# `deepstack_merger_list`) taking one block's hidden states per patch: those inputs are all a later pass needs.
SUPPORTED_TOWERS = (
    "Qwen2_5_VisionTransformerPretrainedModel", "Qwen2VisionTransformerPretrainedModel", "Qwen3VLVisionModel",
)
# Keyword arguments a tower call may carry that do not change its output (Hugging Face's Qwen3-VL passes the
# language model's `use_cache` down); any other makes the call run the tower as it is.
OUTPUT_NEUTRAL_KWARGS = {"return_dict", "use_cache"}
# verl's stand-in input for text-only micro-batches (verl/models/transformers/qwen2_vl.py): 16 patches.
DUMMY_GRID = (1, 4, 4)


@dataclass
class _Entry:
    pixels: torch.Tensor
    features: tuple[torch.Tensor, ...]  # one tensor per projector, in `projectors(tower)` order

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + sum(part.nbytes for part in self.features)


@dataclass
class StepCounters:
    """What the vision tower did since the last step boundary, on this process."""

    requests: int = 0  # videos (grid items) asked of the tower
    encoded: int = 0  # of those, run through the encoder
    sync_passes: int = 0  # dummy encoder runs that only kept this rank in step with the others
    peak_bytes: int = 0
    seen: set = field(default_factory=set)  # (grid, checksum, order checksum) of every video asked for


class FeatureStore:
    """One process's stored features, keyed by (model, grid, dtype, checksum) and confirmed by equal pixels."""

    def __init__(self, cap_bytes: int):
        self.cap_bytes = cap_bytes
        self.entries: OrderedDict[tuple, list[_Entry]] = OrderedDict()
        self.nbytes = 0
        self.counters = StepCounters()

    def lookup(self, key: tuple, pixels: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Stored features for exactly these pixels, or None."""
        for entry in self.entries.get(key, ()):
            if torch.equal(entry.pixels, pixels):
                return entry.features
        return None

    def insert(self, key: tuple, pixels: torch.Tensor, features: tuple[torch.Tensor, ...]) -> None:
        """Keep features for these pixels, dropping the oldest entries to stay under the cap."""
        entry = _Entry(pixels.detach().clone(), tuple(part.detach() for part in features))
        if entry.nbytes > self.cap_bytes:
            return
        while self.entries and self.nbytes + entry.nbytes > self.cap_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.nbytes -= sum(e.nbytes for e in dropped)
        self.entries.setdefault(key, []).append(entry)
        self.nbytes += entry.nbytes
        self.counters.peak_bytes = max(self.counters.peak_bytes, self.nbytes)

    def clear(self) -> None:
        """Drop every entry and start new counters (a step boundary)."""
        self.entries.clear()
        self.nbytes = 0
        self.counters = StepCounters()


_STORE: FeatureStore | None = None


def process_store(cap_mb: float = 4096.0) -> FeatureStore:
    """The store shared by every engine of this process (actor and reference); created on first use."""
    global _STORE
    if _STORE is None:
        _STORE = FeatureStore(int(cap_mb * 2**20))
    return _STORE


def _checksums(chunk: torch.Tensor) -> torch.Tensor:
    """A video's pixel sum (the store's key) and its row sums weighted by row index (order-sensitive)."""
    rows = chunk.float().sum(-1)
    return torch.stack([chunk.float().sum(), (rows * torch.arange(len(rows), device=rows.device)).sum()])


def _world(group) -> int:
    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1


def step_metrics(group=None) -> dict[str, float]:
    """This step's `vision/*` metrics summed over the ranks of `group` (a collective: every rank calls it)."""
    counters = process_store().counters
    totals = torch.tensor([counters.requests, counters.encoded, counters.sync_passes], dtype=torch.float64)
    peak = torch.tensor([counters.peak_bytes], dtype=torch.float64)
    seen = set(counters.seen)
    if _world(group) > 1:
        dist.all_reduce(totals, group=group)
        dist.all_reduce(peak, op=dist.ReduceOp.MAX, group=group)
        gathered: list = [None] * _world(group)
        dist.all_gather_object(gathered, seen, group=group)
        seen = set().union(*gathered)
    requests, encoded, sync_passes = totals.tolist()
    unique = len(seen)
    return {
        "vision/encoder_passes": encoded,
        "vision/unique_videos": float(unique),
        "vision/encoder_passes_per_video": encoded / unique if unique else 0.0,
        "vision/feature_reuses": requests - encoded,
        "vision/encoder_sync_passes": sync_passes,
        "vision/feature_cache_peak_mb": peak.item() / 2**20,
    }


def end_step() -> None:
    """Forget this step's features and counters; the next pass starts a new step."""
    process_store().clear()


def projectors(tower: torch.nn.Module) -> list[torch.nn.Module]:
    """The tower's projectors: the `merger` of its last block's output, then Qwen3-VL's deepstack mergers."""
    return [tower.merger, *(getattr(tower, "deepstack_merger_list", None) or ())]


class FeatureReuse:
    """The tower's replacement `forward`: counts every request; with `reuse`, serves repeats from the store."""

    def __init__(self, tower: torch.nn.Module, *, reuse: bool, projector_frozen: bool, model_key: str, cap_mb: float):
        self.tower = tower
        self.original = type(tower).forward
        self.reuse = reuse
        self.projector_frozen = projector_frozen
        self.model_key = model_key
        self.store = process_store(cap_mb)
        self.unit = tower.spatial_merge_size**2
        self.deepstack = hasattr(tower, "deepstack_merger_list")

    def __call__(self, hidden_states: torch.Tensor, grid_thw: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        counters = self.store.counters
        extra = set(kwargs) - OUTPUT_NEUTRAL_KWARGS
        pixels = hidden_states.to(self.tower.patch_embed.proj.weight.dtype)
        sizes = grid_thw.prod(-1).tolist()
        chunks = pixels.split(sizes)
        grids = [tuple(g) for g in grid_thw.tolist()]
        # One sync for all videos of the call; the checksum only narrows the search, equality decides.
        sums, spreads = torch.stack([_checksums(chunk) for chunk in chunks]).T.tolist()
        keys = [(self.model_key, grid, str(pixels.dtype), s) for grid, s in zip(grids, sums)]
        counters.requests += len(chunks)
        # Counted as distinct by both checksums: videos whose patches differ only in order have equal sums
        # (measured: two zoom windows of one demo video), yet the store encodes each.
        counters.seen.update(zip(grids, sums, spreads))
        if not self.reuse or extra or kwargs.get("return_dict") is False:
            counters.encoded += len(chunks)
            return self.original(self.tower, hidden_states, grid_thw, **kwargs)

        found: list[tuple[torch.Tensor, ...] | None] = [self.store.lookup(k, c) for k, c in zip(keys, chunks)]
        # Repeats inside one call (the n rollouts of a video in one micro-batch) are encoded once too.
        missing: list[int] = []
        same_as: dict[int, int] = {}
        for i, feature in enumerate(found):
            if feature is not None:
                continue
            twin = next((j for j in missing if keys[j] == keys[i] and torch.equal(chunks[j], chunks[i])), None)
            if twin is None:
                missing.append(i)
            else:
                same_as[i] = twin
        if self._any_rank_missed(bool(missing), pixels.device):
            if missing:
                encoded = self._encode([chunks[i] for i in missing], grid_thw[missing])
                for i, feature in zip(missing, encoded):
                    found[i] = feature
                    self.store.insert(keys[i], chunks[i], feature)
                counters.encoded += len(missing)
            else:
                self._encode_dummy(pixels)
                counters.sync_passes += 1
        for i, twin in same_as.items():
            found[i] = found[twin]
        parts = [torch.cat(part) for part in zip(*found)]
        if not self.projector_frozen:
            parts = [
                projector(part.reshape(-1, part.shape[-1] // self.unit))
                for projector, part in zip(projectors(self.tower), parts)
            ]
        return self._output(parts)

    def _output(self, parts: list[torch.Tensor]) -> BaseModelOutputWithPooling:
        """The tower's return type: pooled features, plus Qwen3-VL's deepstack features."""
        if not self.deepstack:
            return BaseModelOutputWithPooling(pooler_output=parts[0])
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        return BaseModelOutputWithDeepstackFeatures(pooler_output=parts[0], deepstack_features=parts[1:])

    def _any_rank_missed(self, missed: bool, device: torch.device) -> bool:
        if _world(None) == 1:
            return missed
        flag = torch.tensor([int(missed)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _encode(self, chunks: list[torch.Tensor], grid_thw: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Per-video features in token order, one per projector: projected when the projector is frozen, else
        the projector's input."""
        with torch.no_grad():
            if self.projector_frozen:
                output = self.original(self.tower, torch.cat(chunks), grid_thw)
            else:
                with self._projectors_group_only():
                    output = self.original(self.tower, torch.cat(chunks), grid_thw)
        outputs = [output.pooler_output, *(getattr(output, "deepstack_features", None) or ())]
        tokens = [chunk.shape[0] // self.unit for chunk in chunks]
        return list(zip(*(part.split(tokens) for part in outputs)))

    @contextmanager
    def _projectors_group_only(self) -> Iterator[None]:
        """Within the block each projector returns its input grouped per output token instead of projecting it."""
        # A projector normalises each patch and projects groups of `unit` patches; grouping without projecting
        # gives its input per output token, which the forward then puts in token order.
        saved = [(module, module.__dict__.get("forward")) for module in projectors(self.tower)]
        for module, _ in saved:
            module.forward = lambda x: x.reshape(-1, self.unit * x.shape[-1])
        try:
            yield
        finally:
            for module, previous in saved:
                if previous is None:
                    del module.forward
                else:
                    module.forward = previous

    def _encode_dummy(self, like: torch.Tensor) -> None:
        grid = torch.tensor([DUMMY_GRID], dtype=torch.long, device=like.device)
        dummy = like.new_zeros((int(grid.prod()), like.shape[-1]))
        with torch.no_grad():
            self.original(self.tower, dummy, grid)


def install_feature_reuse(
    model: torch.nn.Module, *, reuse: bool, projector_frozen: bool, model_key: str, cap_mb: float = 4096.0
) -> FeatureReuse | None:
    """Put a counting (and, with `reuse`, caching) forward on the model's vision tower; None if it has none we know."""
    tower = find_vision_tower(model)
    if tower is None:
        return None
    if type(tower).__name__ not in SUPPORTED_TOWERS:
        if reuse:
            logger.info("verl-video: vision feature reuse does not support %s; features computed on every pass",
                        type(tower).__name__)
        return None
    hook = FeatureReuse(tower, reuse=reuse, projector_frozen=projector_frozen, model_key=model_key, cap_mb=cap_mb)
    tower.forward = hook
    return hook
