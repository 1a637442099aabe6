"""Checks of the task fields that are not canonical: options with their answer, normalised boxes.

Each returns (field, problem) pairs, empty when the value is usable, so that the validator can print
`file:line: field: problem` like every other record problem.
"""

from __future__ import annotations

import math
from typing import Any

from verl_video.rewards.choice import choice_letter


def options_problems(options: Any, answer: Any) -> list[tuple[str, str]]:
    """Options must be a non-empty list of texts and the answer one of their letters."""
    if not isinstance(options, list | tuple) or not options or not all(isinstance(o, str) and o.strip() for o in options):
        return [("options", f"must be a non-empty list of option texts, got {options!r}")]
    if len(options) > 26:
        return [("options", f"{len(options)} options; at most 26 (A-Z) can be named")]
    letter = choice_letter(answer)
    if letter is None:
        return [("answer", f"must name an option: a letter such as 'B' or '(B)', or a 0-based index; got {answer!r}")]
    if ord(letter) - ord("A") >= len(options):
        return [("answer", f"{answer!r} is not among the {len(options)} options (A-{chr(ord('A') + len(options) - 1)})")]
    return []


def boxes_problems(boxes: Any, name: str = "boxes", minimum: int = 1) -> list[tuple[str, str]]:
    """Boxes must be `minimum` or more [x0, y0, x1, y1] in [0, 1] with x0 <= x1 and y0 <= y1."""
    if not isinstance(boxes, list | tuple) or len(boxes) < minimum:
        return [(name, f"must be a list of at least {minimum} boxes [x0, y0, x1, y1], got {boxes!r}")]
    problems = []
    for i, box in enumerate(boxes):
        where = f"{name}[{i}]"
        if not isinstance(box, list | tuple) or len(box) != 4:
            problems.append((where, f"must be [x0, y0, x1, y1], got {box!r}"))
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            problems.append((where, f"must hold four finite numbers, got {box!r}"))
            continue
        x0, y0, x1, y1 = box
        if not all(0.0 <= v <= 1.0 for v in box):
            problems.append((where, f"{list(box)} lies outside [0, 1] (boxes are normalised to the frame)"))
        elif x1 < x0 or y1 < y0:
            problems.append((where, f"{list(box)} has x1 < x0 or y1 < y0"))
    return problems


def numbered_options(options: list[str]) -> str:
    """Options one per line, each starting with its letter ("(A) text"), as the prompts show them."""
    lines = []
    for i, option in enumerate(options):
        text = str(option).strip()
        letter = chr(ord("A") + i)
        lines.append(text if choice_letter(text.split(" ", 1)[0]) == letter else f"({letter}) {text}")
    return "\n".join(lines)
