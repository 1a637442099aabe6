"""Object tracking (GOT-10k in VideoChat-R1): the first frame's box is given, the answer is the other boxes.

Which frame each annotated box belongs to is one setting, `box_frames` (a data_config entry key), because
VideoChat-R1's files do not say it (docs/data.md gives the evidence):

    videochat_r1  box 0 is the prompt box (frame 0); boxes 1..k-1 are frames int(i * (n - 1) / (k - 2)),
                  i = 0..k-2, of the n frames: for k = 8, the 7 frames VideoChat-R1's loader shows
                  (first, int(i * (n - 1) / 6) for i = 1..5, last). The model sees those k - 1 frames.
    uniform       box j is frame int(j * (n - 1) / (k - 1)), j = 0..k-1; the model sees all k frames.

Either way the prompt gives box 0 and the answer is boxes 1..k-1, one per frame in the order shown, so a
predicted box is always scored against the box of the frame it was asked about.
"""

from __future__ import annotations

from typing import Any

from verl_video.video.probe import VideoError
from verl_video.annotations.records import BOX_FRAMES, DEFAULT_BOX_FRAMES, Record
from verl_video.rewards.components import box_iou_reward, parse_ok

from .base import Task
from .fields import boxes_problems
from .registry import register_task

SUCCESS_IOU = 0.5
_PROMPT = (
    '<video>\nTrack the "{query}" in the video. Its box in the first frame is {first_box}. Give its box '
    "[x0, y0, x1, y1] (coordinates normalised to [0, 1]) in each of {which_frames}: a list of {num_boxes} boxes"
)
_ANSWER = " inside <answer></answer>, for example <answer>[[0.1, 0.5, 0.3, 0.55], [0.12, 0.48, 0.33, 0.57], ...]</answer>."


def box_frame_indices(total_frames: int, num_boxes: int, mapping: str = DEFAULT_BOX_FRAMES) -> list[int]:
    """The frame index (0-based, of `total_frames`) of each of `num_boxes` annotated boxes under `mapping`."""
    if mapping not in BOX_FRAMES:
        raise ValueError(f"unknown box_frames {mapping!r}; choose from {', '.join(BOX_FRAMES)}")
    last = total_frames - 1
    if mapping == "uniform":
        return [int(j * last / (num_boxes - 1)) for j in range(num_boxes)]
    return [0] + [int(i * last / (num_boxes - 2)) for i in range(num_boxes - 1)]


def shown_box_indices(num_boxes: int, mapping: str = DEFAULT_BOX_FRAMES) -> list[int]:
    """Which boxes' frames the model sees, in order (the prompt box's frame is shown only under `uniform`)."""
    return list(range(num_boxes)) if mapping == "uniform" else list(range(1, num_boxes))


@register_task
class Tracking(Task):
    """The object's name (`query`) and its normalised boxes (`boxes`, box 0 in the first frame)."""

    name = "tracking"
    fields = ("query", "boxes")
    default_preset = "tracking"
    exact_frames = True
    metric_keys = ("box_iou", "box_success@0.5", "parse_ok")
    prompts = {
        "think": _PROMPT + ". Reason about it inside <think></think>. Then give the list" + _ANSWER,
        "no_think": _PROMPT + _ANSWER,
    }

    def validate(self, record: Record) -> list[tuple[str, str]]:
        """Presence, at least two boxes (one given, one asked), each in [0, 1] and ordered; a known box_frames."""
        problems = super().validate(record)
        if problems:
            return problems
        mapping = record.extra.get("box_frames", DEFAULT_BOX_FRAMES)
        if mapping not in BOX_FRAMES:
            return [("box_frames", f"unknown mapping {mapping!r}; choose from {', '.join(BOX_FRAMES)}")]
        return boxes_problems(record.extra["boxes"], minimum=3 if mapping == DEFAULT_BOX_FRAMES else 2)

    def frames_needed(self, record: Record) -> int:
        """The fewest frames the video must have so that every box has its own frame."""
        boxes = len(record.extra["boxes"])
        return boxes - 1 if record.extra.get("box_frames", DEFAULT_BOX_FRAMES) == DEFAULT_BOX_FRAMES else boxes

    def video_problems(self, record: Record, num_frames: int) -> list[tuple[str, str]]:
        """A video with fewer frames than the boxes name."""
        needed = self.frames_needed(record)
        if 0 < num_frames < needed:
            return [("boxes", f"{len(record.extra['boxes'])} boxes need {needed} frames, the video has {num_frames}")]
        return []

    def frame_indices(self, record: Record, total_frames: int) -> list[int]:
        """The source frames the model sees, in order; VideoError when the video has too few frames (the
        dataset then replaces the sample, as for any unusable video)."""
        mapping = record.extra.get("box_frames", DEFAULT_BOX_FRAMES)
        boxes = len(record.extra["boxes"])
        if total_frames < self.frames_needed(record):
            raise VideoError(f"{record.video}: {boxes} boxes need {self.frames_needed(record)} frames, the video has {total_frames}")
        frames = box_frame_indices(total_frames, boxes, mapping)
        return [frames[j] for j in shown_box_indices(boxes, mapping)]

    def ground_truth(self, record: Record, duration: float | None) -> dict[str, Any]:
        """Boxes 1..k-1 (one per asked frame, in order) and the given first box."""
        boxes = [list(map(float, box)) for box in record.extra["boxes"]]
        return {"answer_kind": "boxes", "boxes": boxes[1:], "first_box": boxes[0]}

    def prompt_values(self, record: Record, duration: float | None) -> dict[str, str]:
        """Object name, first box, how many boxes and for which frames."""
        boxes = record.extra["boxes"]
        mapping = record.extra.get("box_frames", DEFAULT_BOX_FRAMES)
        which = "the frames you see, from the first to the last" if mapping == DEFAULT_BOX_FRAMES else "the frames after the first"
        first = "[" + ", ".join(f"{float(v):.3f}" for v in boxes[0]) + "]"
        return {**super().prompt_values(record, duration), "first_box": first, "which_frames": which, "num_boxes": str(len(boxes) - 1)}

    def reference_answer(self, record: Record, duration: float | None) -> str:
        """The asked boxes, three decimals."""
        boxes = ", ".join("[" + ", ".join(f"{float(v):.3f}" for v in box) + "]" for box in record.extra["boxes"][1:])
        return f"<answer>[{boxes}]</answer>"

    def metrics(self, sample: Any) -> dict[str, float]:
        """Mean per-frame box IoU (0 when the box count is wrong), success rate at IoU 0.5, parse rate."""
        asked = len(sample.truth.get("boxes") or [])
        exact = asked > 0 and len(sample.predicted_boxes) == asked
        success = sum(iou >= SUCCESS_IOU for iou in sample.box_ious) / asked if exact else 0.0
        return {"box_iou": box_iou_reward(sample, exact=True), "box_success@0.5": success, "parse_ok": parse_ok(sample)}
