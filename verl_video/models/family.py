"""The model families verl-video can train, keyed by the Hugging Face config's `model_type`.

A family says how its processor turns frames into LLM tokens and how it tells the model *when* a frame
was shown; the numbers themselves (patch size, spatial merge, temporal patch, the video token) are read
from the model's own processor wherever one is at hand (`video_geometry`, `video_token`). A model of
another family is refused at start-up (`require_family`) instead of being trained with wrong token counts
or a wrong time base.

Time encodings:
- `mrope_seconds` (Qwen2.5-VL): the temporal M-RoPE position of a frame group is its time in seconds times
  `tokens_per_second`, computed from `second_per_grid_ts` (2 / sampled fps), which the processor derives
  from the video metadata; see `verl_video/models/rope_time.py`.
- `text_timestamps` (Qwen3-VL): the processor writes `<t seconds>` before each frame group, t computed from
  the video metadata (frame indices / fps, averaged over the temporal patch); positions carry no time.
- `mrope_order` (Qwen2-VL): the temporal position is the frame group's index; the model is told no
  absolute time, only the order (the prompt states the duration).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MROPE_SECONDS = "mrope_seconds"
TEXT_TIMESTAMPS = "text_timestamps"
MROPE_ORDER = "mrope_order"


class UnsupportedModelError(ValueError):
    """A model whose family verl-video cannot handle (token counts or time base would be wrong)."""


@dataclass(frozen=True)
class VideoGeometry:
    """How video pixels become LLM tokens: one token per (merge x patch)^2 pixels per temporal patch of frames."""

    patch_size: int
    merge_size: int
    temporal_patch_size: int

    @property
    def pixels_per_token_side(self) -> int:
        """Side in pixels of the square one LLM token covers (frame sides are multiples of it)."""
        return self.patch_size * self.merge_size

    def num_tokens(self, num_frames: int, height: int, width: int) -> int:
        """LLM tokens of `num_frames` frames of height x width (sides multiples of pixels_per_token_side)."""
        side = self.pixels_per_token_side
        grids = math.ceil(num_frames / self.temporal_patch_size)
        return grids * (height // side) * (width // side)

    def as_item(self) -> dict[str, int]:
        """The fields as a plain dict (what travels inside verl's rows)."""
        return {
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": self.temporal_patch_size,
        }


GEOMETRY_FIELDS = ("patch_size", "merge_size", "temporal_patch_size")


@dataclass(frozen=True)
class ModelFamily:
    """One family of video LMs: what identifies it and how it encodes video time."""

    model_type: str  # the HF config's model_type
    processor_class: str  # transformers class name of its processor
    time_encoding: str
    # The released checkpoints' video processor values: used only where no processor is at hand (a data
    # check or cache fill run without --model); wherever a model is loaded its processor is read instead.
    reference_geometry: VideoGeometry
    sizes: tuple[str, ...] = ()  # released dense sizes (for messages and the README table)
    # vLLM 0.24 drops the metadata of a (frames, metadata) video for Qwen2.5-VL, so the rollout must also send
    # it in the processor kwargs; for Qwen3-VL it keeps the pair's metadata, and a second copy in the kwargs
    # makes its processor call fail.
    metadata_in_processor_kwargs: bool = False


FAMILIES: dict[str, ModelFamily] = {
    family.model_type: family
    for family in (
        ModelFamily("qwen2_vl", "Qwen2VLProcessor", MROPE_ORDER, VideoGeometry(14, 2, 2), ("2B", "7B", "72B")),
        ModelFamily(
            "qwen2_5_vl", "Qwen2_5_VLProcessor", MROPE_SECONDS, VideoGeometry(14, 2, 2), ("3B", "7B", "32B", "72B"), True
        ),
        ModelFamily("qwen3_vl", "Qwen3VLProcessor", TEXT_TIMESTAMPS, VideoGeometry(16, 2, 2), ("2B", "4B", "8B", "32B")),
    )
}
# The family assumed by tools that run without a model (data checks, cache fills): the project's default model.
DEFAULT_FAMILY = "qwen2_5_vl"


def get_family(model_type: str, source: str = "") -> ModelFamily:
    """The family of a config's model_type; refuses unknown ones naming the supported types."""
    family = FAMILIES.get(str(model_type))
    if family is None:
        where = f"{source}: " if source else ""
        raise UnsupportedModelError(
            f"{where}model_type {model_type!r} is not a supported model family; verl-video handles "
            f"{', '.join(sorted(FAMILIES))} (video token counts and the video time base are family-specific)"
        )
    return family


def default_geometry() -> VideoGeometry:
    """The default family's reference geometry (for tools that plan frames without a model)."""
    return FAMILIES[DEFAULT_FAMILY].reference_geometry


def model_type_of(model_path: str | Path) -> str:
    """The `model_type` in a local model folder's config.json (no download, no transformers import)."""
    config_file = Path(model_path) / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModelError(f"{config_file}: cannot read the model config ({exc})") from exc
    model_type = config.get("model_type")
    if not model_type:
        raise UnsupportedModelError(f"{config_file}: field 'model_type' is missing")
    return str(model_type)


def require_family(model_path: str | Path) -> ModelFamily:
    """The family of a model folder (or hub id, through transformers' config cache), refused when unsupported."""
    if (Path(model_path) / "config.json").is_file():
        return get_family(model_type_of(model_path), source=str(Path(model_path) / "config.json"))
    from transformers import AutoConfig

    try:
        model_type = AutoConfig.from_pretrained(str(model_path)).model_type
    except (OSError, ValueError) as exc:
        raise UnsupportedModelError(f"{model_path}: cannot read the model config ({exc})") from exc
    return get_family(model_type, source=str(model_path))


def family_of_processor(processor: Any) -> ModelFamily:
    """The family a loaded processor belongs to (matched by its class); refused when unsupported."""
    name = type(processor).__name__
    for family in FAMILIES.values():
        if family.processor_class == name:
            return family
    supported = ", ".join(f"{f.processor_class} ({f.model_type})" for f in FAMILIES.values())
    raise UnsupportedModelError(f"processor {name} belongs to no supported model family; supported: {supported}")


def video_geometry(processor: Any) -> VideoGeometry:
    """Patch, merge and temporal patch sizes read from the processor's video processor."""
    family = family_of_processor(processor)
    video_processor = getattr(processor, "video_processor", None)
    values = {name: getattr(video_processor, name, None) for name in GEOMETRY_FIELDS}
    missing = [name for name, value in values.items() if not isinstance(value, int) or value <= 0]
    if missing:
        raise UnsupportedModelError(
            f"{type(processor).__name__} ({family.model_type}): the video processor has no positive integer {missing}"
        )
    return VideoGeometry(**values)


def video_token(processor: Any) -> tuple[str, int]:
    """The video placeholder token of a processor and its id."""
    family_of_processor(processor)
    token = getattr(processor, "video_token", None)
    token_id = getattr(processor, "video_token_id", None)
    if token_id is None and token is not None:
        token_id = processor.tokenizer.convert_tokens_to_ids(token)
    if token is None or token_id is None:
        raise UnsupportedModelError(f"{type(processor).__name__} names no video token")
    return str(token), int(token_id)


def prompt_tokens_besides_video(processor: Any, group_seconds: list[float]) -> int:
    """Tokens a video adds to the prompt besides its video tokens, minus its one `<|video_pad|>` placeholder.

    Qwen2-VL and Qwen2.5-VL expand the placeholder into video tokens only (0). Qwen3-VL's processor replaces
    `<|vision_start|><|video_pad|><|vision_end|>` by, per frame group, `<t seconds>` (t with one decimal)
    then vision start, the group's video tokens, vision end.
    """
    if family_of_processor(processor).time_encoding != TEXT_TIMESTAMPS:
        return 0
    tokenizer = processor.tokenizer
    stamps = sum(len(tokenizer(f"<{t:.1f} seconds>", add_special_tokens=False)["input_ids"]) for t in group_seconds)
    return stamps + 2 * len(group_seconds) - 2


def geometry_from_item(item: dict[str, Any], default: VideoGeometry) -> VideoGeometry:
    """A geometry rebuilt from a row's video item; fields it lacks take `default`'s."""
    values = {name: int(item[name]) if item.get(name) is not None else getattr(default, name) for name in GEOMETRY_FIELDS}
    return VideoGeometry(**values)
