"""The built-in rewards. Each is one plain function of a `Sample`: copy one to start your own.

All return a finite float in [0, 1] (their registered bounds) and never raise.
The predicted interval is the parser's (`sample.parse`); with several ground-truth windows the
best-matching one counts.
"""

from __future__ import annotations

from collections.abc import Callable

from verl_video.rewards.grounding_metrics import per_sample_metrics

from .choice import choice_letter, read_choice
from .format import format_score
from .iou import best_iou, multi_iou, normalized_iou, timestamp_iou
from .parser import NO_ANSWER, OK, UNPARSEABLE, WRONG_COUNT, answer_block, answer_style, find_pairs, repair
from .registry import register_reward
from .sample import Sample


def _best(sample: Sample, overlap: Callable[..., float]) -> float:
    pred = sample.parse.interval
    if pred is None:
        return 0.0
    return max((overlap(pred, gt, sample.duration) for gt in sample.windows), default=0.0)


@register_reward("iou", low=0.0, high=1.0)
def iou(sample: Sample) -> float:
    """IoU in seconds (VideoChat-R1; Time-R1 fine-tuning)."""
    return best_iou(sample.parse.interval, sample.windows) if sample.parse.interval else 0.0


@register_reward("tiou", low=0.0, high=1.0)
def tiou(sample: Sample) -> float:
    """Time-R1's timestamp-aware IoU, on the clipped prediction so it stays in [0, 1]."""
    return _best(sample, timestamp_iou)


@register_reward("iou_normalized", low=0.0, high=1.0)
def iou_normalized(sample: Sample) -> float:
    """IoU on normalised time (Temporal-R1): prediction / duration, clipped to [0, 1]."""
    return _best(sample, normalized_iou)


@register_reward("multi_iou", low=0.0, high=1.0)
def multi_segment_iou(sample: Sample) -> float:
    """IoU of the merged predicted intervals with the merged ground-truth intervals."""
    return multi_iou(sample.intervals, sample.windows)


@register_reward("parse_ok", low=0.0, high=1.0)
def parse_ok(sample: Sample) -> float:
    """1 when the task's answer can be scored (an interval, even swapped or clipped; a letter; boxes)."""
    if sample.answer_kind in _CONTENT_OK:
        return float(answer_status(sample) == OK)
    return float(sample.parse.interval is not None)


@register_reward("format", low=0.0, high=1.0)
def format_reward(
    sample: Sample, strictness: str = "partial", style: str | None = None, think: bool | None = None,
    evidence_tag: str | None = None,
) -> float:
    """Template reward; `style`/`think` default to the row's prompt template (see format.py for strictness)."""
    if strictness == "lenient":
        return format_score(sample.response, bool(parse_ok(sample)), strictness=strictness)
    think = sample.think if think is None else bool(think)
    content = answer_block(sample.response, closed=True)
    content_ok = content is not None and _CONTENT_OK.get(sample.answer_kind, _interval_ok)(sample, content, style)
    text = sample.response
    if sample.answer_kind == "choice" and sample.windows:
        # Grounded QA: the evidence block may sit anywhere; the template shape is judged without it.
        text = _drop_block(text, _evidence_tag(sample, evidence_tag))
    return format_score(text, content_ok, think, strictness)


@register_reward("accuracy", low=0.0, high=1.0)
def accuracy(sample: Sample, num_options: int | None = None) -> float:
    """Multiple-choice accuracy: the answer's option letter equals the ground truth's (VideoChat-R1's `answer_reward`).

    A letter beyond the row's options (`num_options` in the ground truth, else 26) is no answer.
    """
    expected = choice_letter(sample.truth.get("answer"))
    return float(expected is not None and _chosen(sample, _num_options(sample, num_options)) == expected)


def _chosen(sample: Sample, num_options: int) -> str | None:
    # The letter of the last answer block, read once per sample (accuracy, format and the task metric ask).
    memo = sample.__dict__.setdefault("_chosen", {})
    if num_options not in memo:
        content = answer_block(sample.response)
        memo[num_options] = None if content is None else read_choice(content, num_options)
    return memo[num_options]


@register_reward("evidence_iou", low=0.0, high=1.0)
def evidence_iou(sample: Sample, tag: str | None = None) -> float:
    """Grounded QA (VideoChat-R1's `iou_glue_reward`): IoU of the merged evidence intervals in `<tag>` (default:
    the row's `evidence_tag`, else `glue`) with the merged ground-truth windows."""
    tag = _evidence_tag(sample, tag)
    memo = sample.__dict__.setdefault("_evidence_iou", {})  # the reward, the monitor and the task metric share it
    if tag not in memo:
        memo[tag] = multi_iou(_evidence(sample, tag), sample.windows)
    return memo[tag]


def _evidence_tag(sample: Sample, tag: str | None) -> str:
    return str(tag or sample.truth.get("evidence_tag") or "glue")


@register_reward("box_iou", low=0.0, high=1.0)
def box_iou_reward(sample: Sample, exact: bool = True) -> float:
    """Tracking: mean box IoU over the asked frames, 0 unless one box per frame (VideoChat-R1's rule;
    `exact=False` scores a missing box 0 and ignores extra ones instead)."""
    truth = sample.truth_boxes
    if not truth or (exact and len(sample.predicted_boxes) != len(truth)):
        return 0.0
    return sum(sample.box_ious) / len(truth)


def _evidence(sample: Sample, tag: str) -> list:
    content = answer_block(sample.response, tag)
    if content is None:
        return []
    results = (repair(pair, sample.duration, sample.parser_config) for pair in find_pairs(content))
    return [r.interval for r in results if r.interval]


def _drop_block(text: str, tag: str) -> str:
    start, end = text.rfind(f"<{tag}>"), text.rfind(f"</{tag}>")
    return text[:start] + text[end + len(tag) + 3 :] if 0 <= start < end else text


def _interval_ok(sample: Sample, content: str, style: str | None) -> bool:
    return answer_style(content) == (style or sample.answer_style)


def _num_options(sample: Sample, num_options: int | None) -> int:
    if num_options is not None:
        return int(num_options)
    try:
        return int(sample.truth.get("num_options") or 26)
    except (TypeError, ValueError):
        return 26


def _choice_ok(sample: Sample, content: str, style: str | None) -> bool:
    # `content` is the last answer block, closed: the block `_chosen` reads.
    return _chosen(sample, _num_options(sample, None)) is not None


def _boxes_ok(sample: Sample, content: str, style: str | None) -> bool:
    # `content` is the last answer block, closed: the block `predicted_boxes` already read.
    return len(sample.predicted_boxes) == len(sample.truth_boxes)


# How to tell, per answer kind, that an answer's content can be scored ("interval" rows use the parser).
_CONTENT_OK = {"choice": _choice_ok, "boxes": _boxes_ok}


def register_answer_kind(kind: str, readable: Callable[[Sample, str], bool]) -> None:
    """Teach `format`, `parse_ok` and the parse status a new answer kind (a user task's `answer_kind`):
    `readable(sample, content)` says whether an answer block's content can be scored."""
    if kind == "interval" or (kind in _CONTENT_OK and _CONTENT_OK[kind] in (_choice_ok, _boxes_ok)):
        raise ValueError(f"answer kind {kind!r} is built in; choose another name")
    _CONTENT_OK[kind] = lambda sample, content, style: bool(readable(sample, content))


def answer_status(sample: Sample) -> str:
    """The parse status of the row's main answer: an interval, an option letter, or one box per asked frame."""
    memo = sample.__dict__  # the reward, parse_ok, the diagnostics and the task metric all ask: read once
    if "_answer_status" not in memo:
        memo["_answer_status"] = _answer_status(sample)
    return memo["_answer_status"]


def _answer_status(sample: Sample) -> str:
    if sample.answer_kind not in _CONTENT_OK:
        return sample.parse.status
    if sample.answer_kind == "boxes":  # the same block the reward reads, parsed once
        boxes = sample.predicted_boxes
        if boxes:
            return OK if len(boxes) == len(sample.truth_boxes) else WRONG_COUNT
        return NO_ANSWER if answer_block(sample.response) is None else UNPARSEABLE
    content = answer_block(sample.response)
    if content is None:
        return NO_ANSWER
    return OK if _CONTENT_OK[sample.answer_kind](sample, content, None) else UNPARSEABLE


def overlap_metrics(sample: Sample) -> dict[str, float]:
    """The row's diagnostics `iou` (its `main_overlap`), `parse_ok` and `r1@m`, computed once per sample."""
    memo = sample.__dict__
    if "_overlap_metrics" not in memo:
        memo["_overlap_metrics"] = per_sample_metrics(main_overlap(sample), bool(parse_ok(sample)))
    return memo["_overlap_metrics"]


def main_overlap(sample: Sample) -> float:
    """The row's localisation quality for monitoring: temporal IoU, evidence IoU, mean box IoU (0 for a bare choice)."""
    if sample.answer_kind == "boxes":
        return box_iou_reward(sample)
    if sample.answer_kind == "choice":
        return evidence_iou(sample) if sample.windows else 0.0
    return iou(sample)
