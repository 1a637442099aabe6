"""A verl custom reward function (`reward.custom_reward_function.path=...`), built on the project's parser.

    reward.reward_manager.name=naive
    reward.custom_reward_function.path=examples/reward_function/compute_score.py
    reward.custom_reward_function.name=compute_score

verl calls it once per response; every key of the returned dict except "score" is logged as a metric
(per data source at validation). Keep the keys the same for every row.
"""

from verl_video.rewards.iou import best_iou
from verl_video.rewards.parser import parse_interval
from verl_video.rewards.sample import read_windows


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """IoU of the parsed answer with the ground truth, plus a bonus for a clean parse."""
    extra_info = extra_info or {}
    truth = ground_truth if isinstance(ground_truth, dict) else {"timestamps": ground_truth}
    duration = truth.get("duration", extra_info.get("duration"))
    parsed = parse_interval(solution_str, duration)  # same parser as training rewards and evaluation
    iou = best_iou(parsed.interval, read_windows(truth.get("timestamps"))) if parsed.interval else 0.0
    return {"score": iou + 0.1 * (parsed.status == "ok"), "iou": iou, "parse_ok": float(parsed.ok)}
