"""The one answer parser: turns a model response into a time interval in seconds plus a parse status.

Training rewards and evaluation both call `parse_interval`, so an answer can never score differently
in the two places. The status says why a response yields no interval, so failures can be counted.

Rules, in order:
1. Where to look: the content of the LAST `<answer>` block (case-insensitive; an unclosed final
   `<answer>` runs to the end of the text, since a truncated answer still states its interval).
   Without a block: status `no_answer`, unless `fallback="whole_text"` parses the whole response.
2. What to read, inside that text:
   - JSON-like keys `start_time`/`end_time` or `start`/`end` (quoted or bare numbers, single or
     double quotes, `"12.5"` and `12.5` alike);
   - otherwise a pair `a <sep> b` with sep one of `to`, `and`, `-`, `–`, `—`, `~`, `,`, `until`, `till`,
     each value optionally followed by a unit (`s`, `sec`, `secs`, `second(s)`); this covers
     `a to b`, `a - b`, `[a, b]`, `(a, b)` and "from a seconds to b seconds".
   Values are plain numbers (`12`, `12.5`, `.5`, `-3`, `1e2`) or clock times `mm:ss(.ff)` / `hh:mm:ss(.ff)`.
   Several pairs: `match="last"` (default, as the seeds' training parser) or `"first"`.
   A value that is not finite (`1e400`) makes the pair unusable: `unparseable`.
3. Normalised answers (`normalized=True`): values are fractions of the video and are multiplied by
   `duration` (kept as fractions when the duration is unknown).
4. Reversed pairs (start > end): `reversed="swap"` (default) returns the swapped interval,
   `"reject"` returns no interval; the status is `reversed` either way.
5. Range: a value below 0 or above `duration` gives status `out_of_range`; with `clip=True`
   (default) the interval is clipped to [0, duration] (to [0, inf) without a duration), else it is
   returned as written. A reversed pair reports `reversed` even if it is also out of range.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

# Stable status values (others import and count these).
OK = "ok"
NO_ANSWER = "no_answer"
UNPARSEABLE = "unparseable"
REVERSED = "reversed"
OUT_OF_RANGE = "out_of_range"
# Boxes were read, but not one per asked frame: scored 0 (VideoChat-R1's rule) and counted apart.
WRONG_COUNT = "wrong_count"
STATUSES = (OK, NO_ANSWER, UNPARSEABLE, REVERSED, OUT_OF_RANGE, WRONG_COUNT)


@dataclass(frozen=True)
class ParserConfig:
    """How to find and repair an interval; defaults suit training and evaluation alike."""

    fallback: str = "none"  # "none" | "whole_text": where to look when there is no <answer> block
    match: str = "last"  # "last" | "first": which interval when the text holds several
    reversed: str = "swap"  # "swap" | "reject"
    clip: bool = True  # clip to [0, duration]
    normalized: bool = False  # values are fractions of the duration

    def __post_init__(self) -> None:
        for name, allowed in (("fallback", ("none", "whole_text")), ("match", ("last", "first")),
                              ("reversed", ("swap", "reject"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ParserConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ParseResult:
    """An interval in seconds (None when there is none to score) and why."""

    interval: tuple[float, float] | None
    status: str
    raw: tuple[float, float] | None = None  # the pair as written, before normalising, swapping, clipping

    @property
    def ok(self) -> bool:
        """True when there is an interval to score."""
        return self.interval is not None


DEFAULT_CONFIG = ParserConfig()

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_CLOCK = r"\d+(?::\d{1,2}){1,2}(?:\.\d+)?"
# Atomic groups, possessive spaces and the look-behind keep matching linear on long digit or space runs.
_VALUE = rf"(?<![\d.])(?>{_CLOCK}|{NUMBER})"
_UNIT = r"(?:\s*+(?:seconds?|secs?|s)\b)?"
_SEP = r"\s*+(?:to|and|until|till|-|–|—|~|,)\s*+"
_PAIR_RE = re.compile(rf"({_VALUE}){_UNIT}{_SEP}({_VALUE}){_UNIT}", re.IGNORECASE)
_KEY_RE = re.compile(
    rf"""(?<![A-Za-z_])["']?(start_time|end_time|start|end)["']?\s*:\s*["']?({_VALUE})""", re.IGNORECASE
)


@functools.lru_cache(maxsize=64)
def _tag_re(tag: str) -> re.Pattern:
    return re.compile(re.escape(tag), re.IGNORECASE)


def answer_block(text: str, tag: str = "answer", closed: bool = False) -> str | None:
    """Content of the last `<tag>` block, or None; an unclosed final block runs to the end unless `closed`."""
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    start = text.rfind(open_tag)
    if start < 0:
        # Upper/mixed-case tags are rare: only then pay for a case-insensitive scan.
        last = None
        for last in _tag_re(open_tag).finditer(text):
            pass
        if last is None:
            return None
        start = last.start()
    start += len(open_tag)
    end = text.find(close_tag, start)
    if end < 0:
        found = _tag_re(close_tag).search(text, start)
        if found is None:
            return None if closed else text[start:]
        end = found.start()
    return text[start:end]


def as_duration(value: object) -> float | None:
    """A usable video duration in seconds (finite, > 0) or None; never raises."""
    try:
        duration = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return duration if math.isfinite(duration) and duration > 0 else None


def to_seconds(value: str) -> float:
    """A number or `mm:ss(.ff)` / `hh:mm:ss(.ff)` clock time, in seconds (may be inf or nan)."""
    if ":" not in value:
        return float(value)
    seconds = 0.0
    for part in value.split(":"):
        seconds = seconds * 60.0 + float(part)
    return seconds


def find_pairs(text: str) -> list[tuple[float, float]]:
    """Every (a, b) pair the text states, in order of appearance, as written (no repairs)."""
    if ":" in text:
        keyed = _keyed_pairs(text)
        if keyed:
            return keyed
    return [(to_seconds(m.group(1)), to_seconds(m.group(2))) for m in _PAIR_RE.finditer(text)]


def answer_style(content: str) -> str | None:
    """"json" for a `{...}` object with start/end keys, "interval" for a plain pair, else None."""
    stripped = content.strip()
    if stripped.startswith("{") and stripped.endswith("}") and _keyed_pairs(stripped):
        return "json"
    return "interval" if _PAIR_RE.search(content) else None


def _keyed_pairs(text: str) -> list[tuple[float, float]]:
    # JSON-ish objects without json.loads: tolerant of quotes, and 20x faster on the hot path.
    # Keys may come in either order; a pair is complete once both have been seen.
    pairs, pending = [], {}
    for key, value in _KEY_RE.findall(text):
        pending[key.lower().startswith("start")] = to_seconds(value)
        if len(pending) == 2:
            pairs.append((pending[True], pending[False]))
            pending = {}
    return pairs


def repair(pair: tuple[float, float], duration: float | None, config: ParserConfig = DEFAULT_CONFIG) -> ParseResult:
    """Apply the normalising, reversed-pair and range rules to one pair as written."""
    duration = as_duration(duration)
    start, end = pair
    if config.normalized and duration is not None:
        start, end = start * duration, end * duration
    if not (math.isfinite(start) and math.isfinite(end)):
        return ParseResult(None, UNPARSEABLE, pair)
    status = OK
    if start > end:
        if config.reversed == "reject":
            return ParseResult(None, REVERSED, pair)
        start, end, status = end, start, REVERSED
    upper = duration if duration is not None else (1.0 if config.normalized else math.inf)
    if start < 0 or end > upper:
        status = status if status != OK else OUT_OF_RANGE
        if config.clip:
            start, end = min(max(start, 0.0), upper), min(max(end, 0.0), upper)
    return ParseResult((start, end), status, pair)


def answer_text(text: str, config: ParserConfig = DEFAULT_CONFIG) -> str | None:
    """The text the parser reads: the last answer block, or the whole text under the fallback."""
    if not isinstance(text, str):
        return None
    block = answer_block(text)
    if block is None and config.fallback == "whole_text":
        return text
    return block


def parse_interval(text: str, duration: float | None = None, config: ParserConfig | None = None) -> ParseResult:
    """Parse one interval (seconds) and a status from a model response; never raises."""
    config = config or DEFAULT_CONFIG
    content = answer_text(text, config)
    if content is None:
        return ParseResult(None, NO_ANSWER)
    pairs = find_pairs(content)
    if not pairs:
        return ParseResult(None, UNPARSEABLE)
    return repair(pairs[-1] if config.match == "last" else pairs[0], duration, config)


def parse_intervals(text: str, duration: float | None = None, config: ParserConfig | None = None) -> list[ParseResult]:
    """Parse every interval of a multi-segment answer (same rules as `parse_interval`)."""
    config = config or DEFAULT_CONFIG
    content = answer_text(text, config)
    if content is None:
        return []
    return [repair(pair, duration, config) for pair in find_pairs(content)]
