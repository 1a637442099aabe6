"""Format reward: does the response follow the prompt's template, with a strictness setting.

Templates (names from `verl_video.tasks.prompts`): `think` = `<think>...</think> <answer>a to b</answer>`,
`think_json` = the same with a JSON answer `{"start_time": a, "end_time": b}`, `answer_only` = the
answer block alone. Whitespace around and between the blocks is allowed; nothing else is.

Strictness (the `content_ok` flag says the answer block holds an answer in the expected form):
- "strict": 1 if the template shape is right AND the answer is in the expected form, else 0
  (the seeds' all-or-nothing reward; unlike Time-R1 an unreadable answer in a well-formed template gets 0);
- "partial" (default): 0.5 for the template shape + 0.5 for a readable answer in the expected form, so
  an answer without `<think>` still earns half: small models get a gradient before they learn the template;
- "lenient": 1 if the answer is readable at all, template ignored.
"""

from __future__ import annotations

import re

STRICTNESS = ("strict", "partial", "lenient")
# Any of the template's tags (one scan of the think text instead of four).
_TAG_RE = re.compile(r"</?(?:think|answer)>")


def template_ok(text: str, think: bool = True) -> bool:
    """True when the response is exactly `[<think>...</think>] <answer>...</answer>` (outer whitespace aside).

    Each block must be one block: text such as `<answer>1 to 6</answer>6.0</answer>` also ends with
    `</answer>`, and the seeds' lazy `<think>.*?</think>\s*<answer>.*?</answer>` full-match accepts it.
    The CPU demo's policy learned to append exactly that kind of tail once it was rewarded.
    """
    stripped = text.strip()
    if not stripped.endswith("</answer>"):
        return False
    start = stripped.rfind("<answer>")
    if start < 0 or "</answer>" in stripped[start + len("<answer>") : -len("</answer>")]:
        return False
    if not think:
        return start == 0
    head = stripped[:start].rstrip()
    # The answer block must directly follow the think block, which must open the response.
    if not (head.startswith("<think>") and head.endswith("</think>") and len(head) >= len("<think></think>")):
        return False
    inner = head[len("<think>") : -len("</think>")]
    return _TAG_RE.search(inner) is None


def format_score(text: str, content_ok: bool, think: bool = True, strictness: str = "partial") -> float:
    """Format reward in [0, 1] for one response (see the module docstring for the strictness levels)."""
    if strictness == "lenient":
        return float(content_ok)
    shape = template_ok(text, think)
    if strictness == "strict":
        return float(shape and content_ok)
    return 0.5 * shape + 0.5 * content_ok
