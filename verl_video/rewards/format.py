"""Format reward: does the response follow the prompt's template, with a strictness setting.

Templates (names from `verl_video.data.prompts`): `think` = `<think>...</think> <answer>a to b</answer>`,
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

STRICTNESS = ("strict", "partial", "lenient")


def template_ok(text: str, think: bool = True) -> bool:
    """True when the response is exactly `[<think>...</think>] <answer>...</answer>` (outer whitespace aside)."""
    stripped = text.strip()
    if not stripped.endswith("</answer>"):
        return False
    start = stripped.rfind("<answer>")
    if start < 0:
        return False
    if not think:
        return start == 0
    head = stripped[:start].rstrip()
    # The last answer block must directly follow the think block, which must open the response.
    return head.startswith("<think>") and head.endswith("</think>") and len(head) >= len("<think></think>")


def format_score(text: str, content_ok: bool, think: bool = True, strictness: str = "partial") -> float:
    """Format reward in [0, 1] for one response (see the module docstring for the strictness levels)."""
    if strictness == "lenient":
        return float(content_ok)
    shape = template_ok(text, think)
    if strictness == "strict":
        return float(shape and content_ok)
    return 0.5 * shape + 0.5 * content_ok
