"""What the `video_search` loop adds to a prompt, decided once for the loop and for the prompt-length filter.

The loop (`search_agent_loop.py`) shows the video at the overview budget and appends `zoom_instructions`; the
dataset's overlong-prompt filter (`rl_dataset.py`) must count the same tokens, or a prompt at the limit reaches
verl's prompt-length error. Both take the settings from `SearchSettings`, the overview item from
`overview_item`, the paragraph from `zoom_instructions` and its place from `append_instructions`; the filter
asks `search_settings_for` whether the run uses the loop at all (`data.agent_loop`, which video_grpo.yaml
interpolates from `actor_rollout_ref.rollout.agent.default_agent_loop`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verl_video.video.settings import VideoBudget

SEARCH_AGENT_LOOP_NAME = "video_search"
SEARCH_KEYS = ("max_zoom_calls", "overview", "zoom", "answer_tokens", "long_windows", "trace_window", "trace_margin")
# What a call for a window longer than one call's frames at the zoom rate gets.
REFUSE, LOWER_RATE = "refuse", "lower_rate"
LONG_WINDOWS = (REFUSE, LOWER_RATE)
# Where the warm start's scripted zoom lies (verl_adapter/search_sft.py): a window of the zoom's length at a random
# offset around the event, or between the overview's time stamps around it.
RANDOM, OVERVIEW = "random", "overview"
TRACE_WINDOWS = (RANDOM, OVERVIEW)

ZOOM_INSTRUCTIONS = (
    "\nThe video above is an overview of a {duration:.1f} s video, {overview_frames} frames in all. To see a part "
    "of it in detail, write <zoom>start, end</zoom> with the times in seconds and stop: the next message shows "
    "that window at {fps:g} frames per second ({limit}). You may zoom up to {calls} times; then answer as asked above."
)
LIMIT_TEXT = {
    REFUSE: "at most {frames} frames, so at most {seconds:g} s per window",
    LOWER_RATE: "at most {frames} frames: a window longer than {seconds:g} s is shown at a lower rate",
}


@dataclass(frozen=True)
class SearchSettings:
    """The `search:` block of the trainer config (defaults in video_grpo.yaml)."""

    max_zoom_calls: int = 2
    overview: dict[str, Any] = field(default_factory=dict)  # VideoBudget overrides for the overview (None: keep)
    zoom: VideoBudget = VideoBudget(fps=2.0, max_frames=16, min_frames=2)  # the budget of one zoom call
    answer_tokens: int = 64  # response tokens a zoom answer must leave for the model
    long_windows: str = REFUSE  # a window over the zoom budget: refused, or shown at a lower rate
    trace_window: str = RANDOM  # the warm start's scripted window (search_sft.py)
    trace_margin: float = 0.0  # seconds the overview rule keeps between the event and the window's ends

    def __post_init__(self) -> None:
        for name, allowed in (("long_windows", LONG_WINDOWS), ("trace_window", TRACE_WINDOWS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"search.{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")

    @property
    def lower_rate(self) -> bool:
        """Whether a window longer than the zoom budget is shown at a lower rate instead of refused."""
        return self.long_windows == LOWER_RATE

    @classmethod
    def from_config(cls, config: Any) -> SearchSettings:
        """Read `config.search` (missing keys keep the defaults above)."""
        section = dict((config.get("search") if hasattr(config, "get") else None) or {})
        unknown = set(section) - set(SEARCH_KEYS)
        if unknown:
            raise KeyError(f"search: unknown key(s) {sorted(unknown)}; choose from {', '.join(SEARCH_KEYS)}")
        default = cls()
        overview = {k: v for k, v in dict(section.get("overview") or {}).items() if v is not None}
        VideoBudget().with_overrides(overview)  # unknown budget keys fail here, at start-up
        return cls(
            max_zoom_calls=int(section.get("max_zoom_calls", default.max_zoom_calls)),
            overview=overview,
            zoom=default.zoom.with_overrides(dict(section.get("zoom") or {})),
            answer_tokens=int(section.get("answer_tokens", default.answer_tokens)),
            long_windows=str(section.get("long_windows") or default.long_windows),
            trace_window=str(section.get("trace_window") or default.trace_window),
            trace_margin=float(section.get("trace_margin") or default.trace_margin),
        )

    def overview_item(self, part: dict) -> dict:
        """A copy of a video content item with the overview budget."""
        return {**part, **self.overview}

    def zoom_instructions(self, duration: float, overview_frames: int) -> str:
        """The paragraph telling the model the zoom syntax, the window limit and its calls."""
        zoom = self.zoom
        limit = LIMIT_TEXT[self.long_windows].format(frames=zoom.max_frames, seconds=zoom.max_frames / zoom.fps)
        return ZOOM_INSTRUCTIONS.format(
            duration=float(duration), overview_frames=int(overview_frames), fps=zoom.fps, limit=limit,
            calls=self.max_zoom_calls,
        )  # fmt: skip


def append_instructions(messages: list[dict], text: str) -> None:
    """Append `text` to the last user message (as a text part when its content is a list)."""
    user = next(m for m in reversed(messages) if m.get("role") == "user")
    content = user["content"]
    user["content"] = [*content, {"type": "text", "text": text}] if isinstance(content, list) else content + text


def search_settings_for(data_config: Any) -> SearchSettings | None:
    """The search settings when the run's agent loop is `video_search` (`data.agent_loop`), else None."""
    if data_config is None or data_config.get("agent_loop") != SEARCH_AGENT_LOOP_NAME:
        return None
    return SearchSettings.from_config(data_config)
