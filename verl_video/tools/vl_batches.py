"""Synthetic GRPO-shaped batches for a Qwen2.5-VL or Qwen3-VL model: n rollouts per video, random pixels, no processor.

Used by the vision-reuse tests and benchmark: every row is `<vision_start> <video_pad> x tokens <vision_end>
response`, where the rollouts of one video share its pixels and differ in their random response.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

# Response tokens are drawn from here: clear of the special tokens at the start of our tiny vocabulary.
RESPONSE_TOKENS = (100, 400)


def video_rows(
    config, grids: list[tuple[int, int, int]], rollouts: int, response_len: int = 6, seed: int = 1
) -> list[dict]:
    """`rollouts` rows per video grid (t, h, w in patches), grouped by video."""
    vision = config.vision_config
    patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    merge = vision.spatial_merge_size**2
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for grid in grids:
        patches = grid[0] * grid[1] * grid[2]
        pixels = torch.randn(patches, patch_dim, generator=generator)
        for _ in range(rollouts):
            response = torch.randint(*RESPONSE_TOKENS, (response_len,), generator=generator)
            ids = torch.cat([
                torch.tensor([config.vision_start_token_id]),
                torch.full((patches // merge,), config.video_token_id),
                torch.tensor([config.vision_end_token_id]),
                response,
            ])
            # What the processor returns beside the ids: 2 marks video tokens (Qwen3-VL's M-RoPE needs it).
            types = (ids == config.video_token_id).long() * 2
            rows.append({"ids": ids, "types": types, "pixels": pixels.clone(), "grid": grid})
    return rows


def micro_batches(rows: list[dict], order: list[int], size: int) -> Iterator[dict]:
    """Left-padded model inputs of `size` rows taken in `order`, videos concatenated in row order."""
    for start in range(0, len(order), size):
        chunk = [rows[i] for i in order[start : start + size]]
        width = max(len(r["ids"]) for r in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        types = torch.zeros(len(chunk), width, dtype=torch.long)
        for b, r in enumerate(chunk):
            ids[b, width - len(r["ids"]) :] = r["ids"]
            mask[b, width - len(r["ids"]) :] = 1
            types[b, width - len(r["ids"]) :] = r["types"]
        yield {
            "input_ids": ids,
            "attention_mask": mask,
            "mm_token_type_ids": types,
            "pixel_values_videos": torch.cat([r["pixels"] for r in chunk]),
            "video_grid_thw": torch.tensor([r["grid"] for r in chunk]),
        }


def token_log_probs(model, batch: dict) -> torch.Tensor:
    """Log-probability of each next token (0 at padding), as the actor's log-prob pass computes it."""
    logits = model(**batch, use_cache=False).logits[:, :-1].float()
    labels = batch["input_ids"][:, 1:]
    picked = torch.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return picked * batch["attention_mask"][:, 1:]
