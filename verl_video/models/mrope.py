"""Qwen2-VL / Qwen2.5-VL M-RoPE positions by the rule the released checkpoints were trained with.

Each vision token gets a (t, h, w) position; each text token the same position on all three axes. The
rule for where text resumes after an image or video is Qwen's: at 1 + the block's largest position on
any axis. It is what Qwen2.5-VL's own fine-tuning code (`qwen-vl-finetune/qwenvl/data/rope2d.py`), the
Qwen team's transformers port (PR #35569, kept through transformers 4.5x, whose docstring says "the text
start position_ids as the max vision position_ids plus 1"), vLLM 0.24 (`get_mrope_input_positions`) and
verl's own `verl.models.transformers.qwen2_vl.get_rope_index` compute. transformers 5.x's rewrite resumes
at the block start + max(h, w) instead. That agrees for images, but a video's temporal axis usually
reaches further ((T - 1) x seconds per grid x tokens_per_second), so every token after a video got other
positions in training than in vLLM's rollout and in pre-training (0.2-0.5 nats/token of rollout/actor
log-prob difference on the tiny model).

`install_released_mrope_rule()` puts `released_rope_index` in place of `get_rope_index` on transformers'
Qwen2-VL and Qwen2.5-VL model classes, the one function every caller reaches: verl's agent loop (it binds
the class's function to the processor when it loads one, after our verl plugin applied the patch
`verl_adapter/patches/transformers_qwen_mrope.py`), and the models' own forward and generate (our hf
rollout, evaluation, warm start, which call it themselves where verl is not imported). Everything else follows transformers 5.9:
the signature, zeros at padded positions, deltas against the unpadded length.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

import torch

TEXT, IMAGE, VIDEO = 0, 1, 2
MODEL_CLASSES = (
    ("transformers.models.qwen2_vl.modeling_qwen2_vl", "Qwen2VLModel"),
    ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLModel"),
)
# transformers' own get_rope_index of each class replaced, by class name (for comparisons).
TRANSFORMERS_RULES: dict[str, Callable] = {}


def vision_block_positions(
    grid_thw: tuple[int, int, int], temporal_step: float, start: int, device: torch.device | None = None
) -> torch.Tensor:
    """(3, t*h*w) positions of one merged vision grid: time index x step (floored), row, column; plus start."""
    t, h, w = grid_thw
    # float64 and truncation, as vLLM computes it, so that fractional steps (4 fps: 0.5 s a grid) agree too.
    times = (torch.arange(t, dtype=torch.float64, device=device) * temporal_step).long()
    grid = torch.stack(
        torch.meshgrid(times, torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    )
    return grid.reshape(3, -1) + start


def _token_types(config: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """Text 0, image 1, video 2 per token, from the placeholder ids (for callers that pass no types)."""
    types = torch.zeros_like(input_ids)
    types[input_ids == config.image_token_id] = IMAGE
    types[input_ids == config.video_token_id] = VIDEO
    return types


def released_rope_index(
    self: Any,
    input_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor | None = None,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' `get_rope_index` with Qwen's rule: text after a vision block starts at its max + 1."""
    vision = self.config.vision_config
    merge = vision.spatial_merge_size
    # Qwen2.5-VL spaces temporal grids by their seconds; Qwen2-VL (no tokens_per_second) by one.
    tokens_per_second = getattr(vision, "tokens_per_second", None)
    if mm_token_type_ids is None:
        mm_token_type_ids = _token_types(self.config, input_ids)
    grids = {IMAGE: iter(image_grid_thw if image_grid_thw is not None else ()),
             VIDEO: iter(video_grid_thw if video_grid_thw is not None else ())}
    seconds = iter(second_per_grid_ts.tolist() if second_per_grid_ts is not None else ())

    position_ids = torch.zeros(3, *input_ids.shape, dtype=input_ids.dtype, device=input_ids.device)
    deltas = []
    for row in range(input_ids.shape[0]):
        keep = attention_mask[row].bool() if attention_mask is not None else torch.ones_like(input_ids[row]).bool()
        pieces: list[torch.Tensor] = []
        next_position = 0
        for kind, run in itertools.groupby(mm_token_type_ids[row][keep].tolist()):
            length = len(list(run))
            if kind == TEXT:
                piece = torch.arange(length, device=input_ids.device).expand(3, -1) + next_position
            else:
                t, h, w = (int(n) for n in next(grids[kind]))
                step = 0.0 if kind == IMAGE else 1.0
                if kind == VIDEO and tokens_per_second is not None:
                    step = float(next(seconds, 1.0)) * tokens_per_second
                piece = vision_block_positions((t, h // merge, w // merge), step, next_position, input_ids.device)
                if piece.shape[1] != length:
                    raise ValueError(
                        f"M-RoPE: a run of {length} vision placeholder tokens in row {row} does not match its grid "
                        f"{(t, h, w)} ({piece.shape[1]} tokens after the {merge}x{merge} merge)"
                    )
            pieces.append(piece)
            next_position = int(piece.max()) + 1
        positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)
        position_ids[:, row, keep] = positions.to(position_ids)
        deltas.append(next_position - int(keep.sum()))
    return position_ids, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def install_released_mrope_rule() -> list[str]:
    """Replace `get_rope_index` on transformers' Qwen2-VL and Qwen2.5-VL models; the classes patched."""
    patched = []
    for module_name, class_name in MODEL_CLASSES:
        try:
            model_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        if model_class.get_rope_index is not released_rope_index:
            TRANSFORMERS_RULES[class_name] = model_class.get_rope_index
            model_class.get_rope_index = released_rope_index
        patched.append(class_name)
    return patched
