"""Multiple-choice answers: extract the option letter and score accuracy.

The letter is read from the last `<answer>` block (the whole text when `fallback=True`). Accepted,
in order: a bare letter (`B`, `(B)`, `B.`, `b`), "answer/option (is) B", a leading `B.` / `B)` /
`B:` before the option text, a parenthesised `(B)` anywhere; the last match wins. Only capital letters
count outside the bare form, because "a" is usually an article.
"""

from __future__ import annotations

import re

from .parser import answer_block

_BARE_RE = re.compile(r"\s*[(\[]?\s*([A-Za-z])\s*[)\].:]?\s*")
_PATTERNS = (
    re.compile(r"\b(?i:answer|option|choice)\s*(?i:is|:)?\s*[(\[]?([A-Z])\b"),
    re.compile(r"^\s*[(\[]?([A-Z])[)\].:](?:\s|$)"),
    re.compile(r"\(([A-Z])\)"),
)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def extract_choice(text: str, num_options: int = 26, fallback: bool = False) -> str | None:
    """The chosen option letter (upper case, within the first `num_options`), or None."""
    if not isinstance(text, str):
        return None
    content = answer_block(text)
    if content is None:
        if not fallback:
            return None
        content = text
    return read_choice(content, num_options)


def read_choice(content: str, num_options: int = 26) -> str | None:
    """The option letter stated in an answer's content (no tag handling), or None."""
    valid = _LETTERS[: max(1, min(int(num_options), 26))]
    bare = _BARE_RE.fullmatch(content)
    if bare:
        letter = bare.group(1).upper()
        return letter if letter in valid else None
    for pattern in _PATTERNS:
        found = [m.group(1).upper() for m in pattern.finditer(content)]
        found = [letter for letter in found if letter in valid]
        if found:
            return found[-1]
    return None


def choice_letter(answer: object) -> str | None:
    """Ground-truth option as a letter: "B", "(B) text" or a 0-based index (1 -> "B")."""
    if isinstance(answer, str):
        return read_choice(answer)
    try:
        index = int(answer)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return _LETTERS[index] if 0 <= index < 26 else None


def choice_accuracy(text: str, answer: object, num_options: int = 26) -> float:
    """1.0 when the response's option letter equals the ground truth's, else 0.0."""
    expected = choice_letter(answer)
    return float(expected is not None and extract_choice(text, num_options) == expected)
