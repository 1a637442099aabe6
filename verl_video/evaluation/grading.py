"""Grade one sample: a response (parsed by the training parser) or a given interval, against its windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from verl_video.rewards.iou import best_iou
from verl_video.rewards.parser import NO_ANSWER, OK, REVERSED, UNPARSEABLE, ParserConfig, parse_interval


@dataclass(frozen=True)
class Grade:
    """The interval scored (None when there is none), the parse status and the best IoU."""

    prediction: tuple[float, float] | None
    status: str
    iou: float

    @property
    def parsed(self) -> bool:
        """Whether there was an interval to score; False counts as a parse failure."""
        return self.prediction is not None


def _score(interval: tuple[float, float] | None, status: str, windows: Sequence[Sequence[float]]) -> Grade:
    if interval is None:
        return Grade(None, status, 0.0)
    return Grade((float(interval[0]), float(interval[1])), status, float(best_iou(interval, windows)))


def grade_response(response: str | None, windows: Sequence[Sequence[float]], duration: float | None,
                   config: ParserConfig | None = None) -> Grade:
    """Parse a raw model response exactly as the training reward does, then score it."""
    if response is None:
        return Grade(None, NO_ANSWER, 0.0)
    result = parse_interval(response, duration, config)
    return _score(result.interval, result.status, windows)


def grade_prediction(prediction: Sequence[float] | None, windows: Sequence[Sequence[float]],
                     config: ParserConfig | None = None) -> Grade:
    """Score an interval someone else already extracted, as given (not clipped).

    Clipping another system's prediction to the video would change its published numbers
    (Time-R1's own predictions: R1@0.5 21.24 as given, 21.48 clipped); only reversed pairs follow
    the parser's `reversed` rule so that they are not silently scored as empty.
    """
    if prediction is None:
        return Grade(None, NO_ANSWER, 0.0)
    start, end = float(prediction[0]), float(prediction[1])
    if not (math.isfinite(start) and math.isfinite(end)):
        return Grade(None, UNPARSEABLE, 0.0)
    if start > end:
        if (config or ParserConfig()).reversed == "reject":
            return Grade(None, REVERSED, 0.0)
        return _score((end, start), REVERSED, windows)
    return _score((start, end), OK, windows)
