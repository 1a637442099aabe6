"""Every default of the video data path in one place, and how hydra's `data.video.*` overrides them.

The trainer YAML holds a `data.video` block whose keys are the field names below; a data_config
dataset entry may override the budget fields (fps, max_frames, ...) for its own videos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class VideoBudget:
    """How a video is sampled: rate, frame count and pixels (same defaults as Time-R1 / VideoChat-R1)."""

    # Wanted sampling rate; the rate used is the largest 2/k (k = 1, 2, ...) not above it, so that
    # Qwen2.5-VL's seconds-per-grid (2 / fps) stays an integer (transformers 5.9 truncates it).
    fps: float = 2.0
    # More frames than this lowers the rate further (2/k with a larger k); never exceeded.
    max_frames: int = 768
    # Short videos are padded (last frame repeated in time) up to this many frames.
    min_frames: int = 4
    # Pixel budget of the whole video: at most total_pixels / 784 video tokens.
    total_pixels: int = 3584 * 28 * 28
    # Per-frame pixel bounds; keep them inside the model's video processor size range so that the
    # processor (here and in vLLM) does not resize the frames again.
    min_pixels: int = 16 * 28 * 28
    max_pixels: int = 768 * 28 * 28

    def with_overrides(self, overrides: dict[str, Any] | None) -> VideoBudget:
        """A copy with the given (non-None) fields replaced, numbers coerced to the field type."""
        if not overrides:
            return self
        known = {f.name: f for f in fields(self)}
        changes = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise KeyError(f"unknown video budget field {key!r}; choose from {', '.join(known)}")
            changes[key] = float(value) if key == "fps" else int(value)
        return replace(self, **changes)

    def as_key(self) -> tuple:
        """A hashable identity of the sampling parameters (for caches)."""
        return tuple(asdict(self).values())


BUDGET_FIELDS = tuple(f.name for f in fields(VideoBudget))


@dataclass(frozen=True)
class VideoDataSettings:
    """Run-wide settings of the video data path, read from `data.video` in the trainer config."""

    budget: VideoBudget = VideoBudget()
    # "auto" (decord, then PyAV when decord fails), "decord" or "pyav".
    decoder: str = "auto"
    # In-process LRU of decoded videos (shared by the n rollouts of a prompt, the multimodal
    # recompute and later epochs), bounded by bytes of uint8 frames.
    memory_cache_mb: int = 4096
    # Optional persistent cache of decoded frames (`verl-video cache`); null disables it.
    cache_dir: str | None = None
    cache_max_gb: float = 50.0
    # Prompt template name (see verl_video.data.prompts) unless a dataset entry names one.
    prompt_template: str = "think"
    # Replace a record whose video is missing or unreadable by the next good one instead of failing.
    skip_bad_samples: bool = True
    # Seed of sampling strategies (random:N) and mixture weights.
    seed: int = 42


SETTINGS_FIELDS = tuple(f.name for f in fields(VideoDataSettings) if f.name != "budget")


def settings_from_config(config: Any) -> VideoDataSettings:
    """Read `config.video` (a hydra DictConfig or dict of the data config); missing keys keep defaults."""
    section = _get(config, "video") or {}
    section = dict(section.items()) if hasattr(section, "items") else {}
    unknown = set(section) - set(BUDGET_FIELDS) - set(SETTINGS_FIELDS)
    if unknown:
        raise KeyError(
            f"data.video: unknown key(s) {sorted(unknown)}; choose from {', '.join(BUDGET_FIELDS + SETTINGS_FIELDS)}"
        )
    budget = VideoBudget().with_overrides({k: section.get(k) for k in BUDGET_FIELDS})
    others = {k: section[k] for k in SETTINGS_FIELDS if section.get(k) is not None}
    return VideoDataSettings(budget=budget, **others)


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, dict):
        return config.get(key)
    getter = getattr(config, "get", None)
    return getter(key) if getter else getattr(config, key, None)
