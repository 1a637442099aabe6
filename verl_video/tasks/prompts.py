"""Prompt templates for temporal grounding: small, named, and overridable per dataset.

A template is plain text with `{query}` (the event sentence) and optionally `{duration}`
(seconds, two decimals). `<video>` marks where the video goes, as in verl's RLHFDataset.
A data_config entry may name a template (`prompt_template: think`) or give its own text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptTemplate:
    """A user prompt (and optional system prompt) plus the answer style its reward expects."""

    name: str
    user: str
    system: str | None = None
    # What the <answer> block holds: "interval" ("12.54 to 17.83") or "json" ({"start_time": .., "end_time": ..}).
    answer_style: str = "interval"
    # Whether the response must open with a <think> block.
    think: bool = True


JSON_ANSWER_SYSTEM = (
    "You first think about the question inside <think></think>, then give the final answer "
    "inside <answer></answer> as JSON."
)

TEMPLATES: dict[str, PromptTemplate] = {
    "think": PromptTemplate(
        name="think",
        user=(
            "<video>\nWhen does this happen in the video: \"{query}\"?\n"
            "Reason about it inside <think></think>. Then give the start and end time in seconds, "
            "with two decimals, inside <answer></answer> as \"start to end\", "
            "for example <answer>12.54 to 17.83</answer>."
        ),
    ),
    "answer_only": PromptTemplate(
        name="answer_only",
        user=(
            "<video>\nWhen does this happen in the video: \"{query}\"?\n"
            "Give only the start and end time in seconds, with two decimals, inside <answer></answer> "
            "as \"start to end\", for example <answer>12.54 to 17.83</answer>."
        ),
        think=False,
    ),
    "think_json": PromptTemplate(
        name="think_json",
        system=JSON_ANSWER_SYSTEM,
        user=(
            "<video>\nWhen does this happen in the video: \"{query}\"? Answer with "
            '{{"start_time": start, "end_time": end}} in seconds.'
        ),
        answer_style="json",
    ),
    # Temporal-R1 records carry the whole question in `problem`; it is the user text as is.
    "temporal_r1": PromptTemplate(
        name="temporal_r1",
        system=JSON_ANSWER_SYSTEM,
        user="<video>\n{query}",
        answer_style="json",
    ),
}

DEFAULT_TEMPLATE = "think"


def register_template(template: PromptTemplate, *, override: bool = False) -> PromptTemplate:
    """Add a named template (e.g. from a user file named in `modules`) that `prompt_template: NAME` selects."""
    if "{query}" not in template.user:
        raise ValueError(f"prompt template {template.name!r}: its user text needs '{{query}}'")
    if template.name in TEMPLATES and TEMPLATES[template.name] != template and not override:
        raise ValueError(f"prompt template {template.name!r} is already defined; rename it, or pass override=True")
    TEMPLATES[template.name] = template
    return template


def get_template(name_or_text: str | None) -> PromptTemplate:
    """Return a named template, or wrap inline text (containing `{query}`) as a template."""
    if not name_or_text:
        return TEMPLATES[DEFAULT_TEMPLATE]
    if name_or_text in TEMPLATES:
        return TEMPLATES[name_or_text]
    if "{query}" not in name_or_text:
        raise ValueError(
            f"prompt template {name_or_text!r} is neither a known name ({', '.join(TEMPLATES)}) "
            "nor a text containing '{query}'"
        )
    text = name_or_text if "<video>" in name_or_text else "<video>\n" + name_or_text
    return PromptTemplate(name="custom", user=text)


def build_messages(query: str, template: str | PromptTemplate | None = None, duration: float | None = None) -> list[dict]:
    """Chat messages (verl RLHFDataset style, `<video>` inline) for one grounding query."""
    tpl = template if isinstance(template, PromptTemplate) else get_template(template)
    query = " ".join(str(query).split())
    user = tpl.user.format(query=query, duration=f"{duration:.2f}" if duration is not None else "")
    messages = [{"role": "system", "content": tpl.system}] if tpl.system else []
    messages.append({"role": "user", "content": user})
    return messages


def chat_content(messages: list[dict]) -> list[dict]:
    """Messages with `<video>` in their text turned into content lists, as verl's RLHFDataset does."""
    converted = []
    for message in messages:
        parts = [part for part in re.split("(<video>)", message["content"]) if part]
        content = [{"type": "video"} if part == "<video>" else {"type": "text", "text": part} for part in parts]
        converted.append({**message, "content": content})
    return converted


def render_prompt(processor, messages: list[dict]) -> str:
    """The prompt text the model sees (chat template, generation prompt added) for `build_messages` output."""
    return processor.apply_chat_template(chat_content(messages), add_generation_prompt=True, tokenize=False)
