"""The settings of the video data path, with their defaults read from the trainer YAML.

One decider (docs/settings.md): `settings_from_config` over the `data.video` block of the config hydra
composed (video_grpo.yaml, then the profile, the experiment and the command line); training, its rollout
workers and every command read their settings through it (verl_video/pipeline/run_settings.py). The
dataclasses below take their field defaults from the same block of video_grpo.yaml (read once at import), so
`VideoBudget()` means "the YAML's budget" for callers without a config; tests/data/test_run_settings.py
checks that they equal the composed defaults. A data_config dataset entry may override the budget fields
(fps, max_frames, ...) for its own videos: the one documented override, applied in pipeline/items.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

# The trainer YAML whose `data.video` block holds every video and prompt default.
DEFAULTS_FILE = Path(__file__).resolve().parents[1] / "config" / "video_grpo.yaml"


@lru_cache(maxsize=4)
def read_video_defaults(path: str | Path = DEFAULTS_FILE) -> dict[str, Any]:
    """The `data.video` block of a trainer YAML, interpolations (e.g. `${trainer.seed}`) resolved."""
    try:
        from omegaconf import OmegaConf
    except ImportError:  # a bare torch + transformers machine (benchmarks/gpu_check.py): plain YAML suffices
        return _read_plain_video_defaults(path)

    root = OmegaConf.load(str(path))
    section = OmegaConf.select(root, "data.video")
    if section is None:
        raise KeyError(f"{path}: no data.video block; it holds the video and prompt defaults")
    return OmegaConf.to_container(section, resolve=True)


def _read_plain_video_defaults(path: str | Path) -> dict[str, Any]:
    """`data.video` read with PyYAML; a value that is exactly one `${a.b}` reference takes that key's value."""
    import yaml

    root = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    section = (root.get("data") or {}).get("video")
    if section is None:
        raise KeyError(f"{path}: no data.video block; it holds the video and prompt defaults")

    def resolve(value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith("${") and value.endswith("}")):
            return value
        target: Any = root
        for part in value[2:-1].split("."):
            target = target[part]
        return resolve(target)

    return {key: resolve(value) for key, value in section.items()}


_DEFAULTS = read_video_defaults()


def _default(name: str) -> Any:
    if name not in _DEFAULTS:
        raise KeyError(f"{DEFAULTS_FILE}: data.video.{name} is missing; every video setting needs a default there")
    return _DEFAULTS[name]


@dataclass(frozen=True)
class VideoBudget:
    """How a video is sampled: rate, frame count and pixels (defaults: data.video in video_grpo.yaml)."""

    # Wanted sampling rate; the rate used is the largest 2/k (k = 1, 2, ...) not above it, so that
    # Qwen2.5-VL's seconds-per-grid (2 / fps) stays an integer (transformers 5.9 truncates it).
    fps: float = float(_default("fps"))
    # More frames than this lowers the rate further (2/k with a larger k); never exceeded.
    max_frames: int = int(_default("max_frames"))
    # Short videos are padded (last frame repeated in time) up to this many frames.
    min_frames: int = int(_default("min_frames"))
    # Pixel budget of the whole video: at most total_pixels / 784 video tokens.
    total_pixels: int = int(_default("total_pixels"))
    # Per-frame pixel bounds; keep them inside the model's video processor size range so that the
    # processor (here and in vLLM) does not resize the frames again.
    min_pixels: int = int(_default("min_pixels"))
    max_pixels: int = int(_default("max_pixels"))

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
    """Run-wide settings of the video data path: `data.video` of the trainer config (defaults: video_grpo.yaml)."""

    budget: VideoBudget = VideoBudget()
    # "auto" (decord, then PyAV when decord fails), "decord" or "pyav".
    decoder: str = str(_default("decoder"))
    # In-process LRU of decoded videos (shared by the n rollouts of a prompt, the multimodal
    # recompute and later epochs), bounded by bytes of uint8 frames.
    memory_cache_mb: int = int(_default("memory_cache_mb"))
    # Optional persistent cache of decoded frames (`verl-video cache`); null disables it.
    cache_dir: str | None = _default("cache_dir")
    cache_max_gb: float = float(_default("cache_max_gb"))
    # Prompt template name (see verl_video.tasks.prompts) unless a dataset entry names one.
    prompt_template: str = str(_default("prompt_template"))
    # Replace a record whose video is missing or unreadable by the next good one instead of failing.
    skip_bad_samples: bool = bool(_default("skip_bad_samples"))
    # Seed of sampling strategies (random:N) and mixture weights.
    seed: int = int(_default("seed"))


    def as_section(self) -> dict[str, Any]:
        """The settings as a flat `data.video` block (budget fields beside the others)."""
        return {**asdict(self.budget), **{name: getattr(self, name) for name in SETTINGS_FIELDS}}


SETTINGS_FIELDS = tuple(f.name for f in fields(VideoDataSettings) if f.name != "budget")
_UNKNOWN_DEFAULTS = sorted(set(_DEFAULTS) - set(BUDGET_FIELDS) - set(SETTINGS_FIELDS))
if _UNKNOWN_DEFAULTS:
    raise KeyError(f"{DEFAULTS_FILE}: data.video has unknown key(s) {_UNKNOWN_DEFAULTS}")


def settings_from_config(config: Any) -> VideoDataSettings:
    """Read `config.video` (a hydra DictConfig or dict of the data config); missing keys keep defaults."""
    section = _get(config, "video") or {}
    section = dict(section.items()) if hasattr(section, "items") else {}
    unknown = set(section) - set(BUDGET_FIELDS) - set(SETTINGS_FIELDS)
    if unknown:
        raise KeyError(
            f"data.video: unknown key(s) {sorted(unknown)}; choose from {', '.join(BUDGET_FIELDS + SETTINGS_FIELDS)}"
        )
    key = tuple(sorted(section.items()))
    try:
        hash(key)
    except TypeError:
        return _settings_from_section(section)
    # The rollout workers ask for every request: the same block resolves once per process.
    return _cached_settings(key)


@lru_cache(maxsize=64)
def _cached_settings(key: tuple) -> VideoDataSettings:
    return _settings_from_section(dict(key))


def _settings_from_section(section: dict[str, Any]) -> VideoDataSettings:
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
