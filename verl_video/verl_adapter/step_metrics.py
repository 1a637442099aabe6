"""The metrics our trainer adds to each training step, as plain functions of the trained batch.

Each reads what it needs of the batch (a verl `KVBatchMeta`: keys, tags, partition) back from TransferQueue
(`tq`, verl's client module) and returns a dict of metrics:
- `reward_metrics`: `reward/<data_source>/<component>`, reward extras per data source (verl logs them only at
  validation);
- `data_metrics`: `data/unreadable_at_start` (records dropped at start-up because their video header could not
  be read), `data/replaced_total` (records skipped so far because their video had become missing or
  unreadable, each replaced by the next good record), `data/decode_failed_total` (samples so far whose video
  failed to decode in the agent loop: their trajectories were masked out of the advantage and the loss);
- `rollout_vs_reference_metrics` (with a reference policy): verl's rollout-vs-actor log-perplexity difference,
  taken against the reference policy instead; a rollout engine that never received the actor's updates stays
  at the reference, so this stays ~0 while `rollout_corr/log_ppl_abs_diff` grows;
- `video_metrics`: `video/*`, what video input the actor's batch carried (share of samples with a video grid,
  video tokens per sample, and how many samples' placeholders disagree with their grid: always 0 unless frames
  and tokens were built from different decodes). Placeholders are counted over prompt AND response: the
  `video_search` loop's zoom windows are videos of the response, and their grids are in the sample's grid;
- `group_metrics`: `groups/zero_variance_fraction`, share of the batch's prompt groups whose rewards all
  agree (GRPO gives them zero advantage);
- `zoom_metrics` (the `video_search` agent loop only; none otherwise): per trajectory, averaged over the
  batch: `zoom/calls`, `zoom/used` (share that saw a window), `zoom/invalid_calls`, `zoom/refused/<reason>`,
  `zoom/visual_tokens`, and `zoom/window_contains_gt` (over the trajectories that saw a window of a sample with
  ground-truth intervals: share where a window held one whole).
`step_metrics` runs them all; a family that fails is logged and left out, never stopping training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.rollout_corr_helper import compute_offpolicy_metrics

from verl_video.models.family import video_geometry, video_token
from verl_video.rewards.metrics import transfer_queue_batch_metrics
from verl_video.verl_adapter.agent_loop import DECODE_FAILED_FIELD
from verl_video.verl_adapter.search_agent_loop import (
    ZOOM_CALLS, ZOOM_HIT, ZOOM_INVALID, ZOOM_REFUSALS, ZOOM_USED, ZOOM_VISUAL_TOKENS,
)

logger = logging.getLogger("verl_video")


def is_padding(tag: dict | None) -> bool:
    """Whether a trajectory's tag marks a padding row (verl pads the batch to a multiple of the DP size)."""
    return bool((tag or {}).get("is_padding", False))


def prompt_uid(key: str) -> str:
    """The prompt's uid of a TransferQueue key `{uid}_{rollout}_{turn}`."""
    return str(key).rsplit("_", 2)[0]


def video_input_metrics(sequences: list[torch.Tensor], mm_inputs: list[Any], video_token_id: int, merge: int) -> dict:
    """`video/*` metrics for one batch from each sample's token ids (prompt and response) and multimodal inputs."""
    with_grid, tokens, mismatched = 0, [], 0
    for sequence, inputs in zip(sequences, mm_inputs):
        grid = (inputs or {}).get("video_grid_thw") if isinstance(inputs, dict) else None
        placeholders = int((torch.as_tensor(sequence) == video_token_id).sum())
        expected = 0
        if grid is not None:
            with_grid += 1
            expected = int(torch.as_tensor(grid).reshape(-1, 3).prod(dim=-1).sum()) // (merge * merge)
        tokens.append(placeholders)
        mismatched += int(placeholders != expected)
    count = max(1, len(tokens))
    return {
        "video/with_grid_fraction": with_grid / count,
        "video/tokens_per_sample": float(np.mean(tokens)) if tokens else 0.0,
        "video/placeholder_grid_mismatches": float(mismatched),
    }


ZERO_VARIANCE_KEY = "groups/zero_variance_fraction"


def zero_variance_fraction(groups: Iterable[list[float]]) -> float:
    """Fraction of groups (lists of rewards) with more than one reward, all equal."""
    sized = [g for g in groups if len(g) > 1]
    return sum(float(np.std(g)) == 0.0 for g in sized) / len(sized) if sized else 0.0


@dataclass
class RunningTotals:
    """The `data/*_total` counters, summed over the run's steps (carried across a restart by the trainer)."""

    replaced: int = 0
    decode_failed: int = 0


def data_metrics(tq: Any, batch: Any, totals: RunningTotals, unreadable_at_start: int) -> dict:
    """Add the batch's replaced records and failed decodes to `totals`, once per prompt (its n trajectories
    share the prompt), and return the `data/*` metrics."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_info", "extra_fields"])
    replaced_by_prompt, failed_prompts = {}, set()
    for key, info, fields in zip(batch.keys, list(data["extra_info"]), list(data["extra_fields"])):
        uid = prompt_uid(key)
        replaced_by_prompt[uid] = int((info or {}).get("data_replaced", 0) or 0)
        if isinstance(fields, dict) and fields.get(DECODE_FAILED_FIELD):
            failed_prompts.add(uid)
    totals.replaced += sum(replaced_by_prompt.values())
    totals.decode_failed += len(failed_prompts)
    return {
        "data/replaced_total": float(totals.replaced),
        "data/unreadable_at_start": float(unreadable_at_start),
        "data/decode_failed_total": float(totals.decode_failed),
    }


def rollout_vs_reference_metrics(tq: Any, batch: Any) -> dict:
    """How far the rollout engine's log-probs are from the reference policy's (empty without reference log-probs)."""
    fields = ["response_mask", "rollout_log_probs", "ref_log_prob"]
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
    if any(field not in data.keys() for field in fields):
        return {}
    padded = data.to_padded_tensor()
    diff = compute_offpolicy_metrics(padded["ref_log_prob"], padded["rollout_log_probs"], padded["response_mask"])
    return {"rollout_vs_ref/log_ppl_abs_diff": diff["log_ppl_abs_diff"]}


def group_metrics(tq: Any, batch: Any) -> dict:
    """Share of the batch's prompt groups whose rewards are all equal (no GRPO signal)."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["rm_scores"])
    groups: dict[str, list[float]] = {}
    for key, tag, score in zip(batch.keys, batch.tags, list(data["rm_scores"])):
        if not is_padding(tag):
            groups.setdefault(str(key).split("_")[0], []).append(float(torch.as_tensor(score).sum()))
    return {ZERO_VARIANCE_KEY: zero_variance_fraction(groups.values())}


def video_metrics(tq: Any, batch: Any, processor: Any) -> dict:
    """`video/*` of the batch's real samples (empty without a multimodal processor)."""
    if processor is None:
        return {}
    _, video_token_id = video_token(processor)
    merge = video_geometry(processor).merge_size
    fields = ["prompts", "responses", "multi_modal_inputs"]
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
    keep = [i for i, tag in enumerate(batch.tags) if not is_padding(tag)]
    sequences = [torch.cat([torch.as_tensor(data["prompts"][i]), torch.as_tensor(data["responses"][i])]) for i in keep]
    return video_input_metrics(sequences, [data["multi_modal_inputs"][i] for i in keep], video_token_id, merge)


def zoom_trajectory_metrics(fields: list[Any]) -> dict:
    """`zoom/*` means over the trajectories whose extra fields carry zoom facts (empty when none does)."""
    rows = [f for f in fields if isinstance(f, dict) and ZOOM_CALLS in f]
    if not rows:
        return {}
    metrics = {
        "zoom/calls": float(np.mean([r[ZOOM_CALLS] for r in rows])),
        "zoom/used": float(np.mean([r[ZOOM_USED] for r in rows])),
        "zoom/invalid_calls": float(np.mean([r[ZOOM_INVALID] for r in rows])),
        "zoom/visual_tokens": float(np.mean([r[ZOOM_VISUAL_TOKENS] for r in rows])),
    }
    for reason in sorted({reason for r in rows for reason in (r.get(ZOOM_REFUSALS) or {})}):
        counts = [(r.get(ZOOM_REFUSALS) or {}).get(reason, 0) for r in rows]
        metrics[f"zoom/refused/{reason}"] = float(np.mean(counts))
    hits = [r[ZOOM_HIT] for r in rows if r.get(ZOOM_HIT) is not None]
    if hits:
        metrics["zoom/window_contains_gt"] = float(np.mean(hits))
    return metrics


def zoom_metrics(tq: Any, batch: Any) -> dict:
    """`zoom/*` of the batch's real trajectories (see `zoom_trajectory_metrics`)."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    fields = list(data["extra_fields"])
    return zoom_trajectory_metrics([f for f, tag in zip(fields, batch.tags) if not is_padding(tag)])


def cannot_learn_warning(metrics: dict) -> str | None:
    """A plain warning when no prompt group of the step has a reward spread (GRPO learns nothing), else None."""
    share = metrics.get(ZERO_VARIANCE_KEY)
    if share is None or share < 1.0:
        return None
    parsed = [value for key, value in metrics.items() if key.startswith("reward/") and key.endswith("/parse_ok")]
    clipped = metrics.get("response_length/clip_ratio")
    facts = [f"{share:.0%} of the prompt groups got equal rewards for all their rollouts"]
    if parsed:
        facts.append(f"answers parsed: {min(parsed):.0%}")
    if clipped is not None:
        facts.append(f"responses cut at the length limit: {clipped:.0%}")
    return (
        "verl-video: this step cannot learn (" + "; ".join(facts) + "). Likely causes: a prompt template the model "
        "was not trained to answer (data.video.prompt_template vs the warm start's), responses cut short "
        "(data.max_response_length), or a task too easy or too hard for every rollout (see groups/ and reward/ metrics)"
    )


def step_metrics(
    tq: Any, batch: Any, *, processor: Any, totals: RunningTotals, unreadable_at_start: int, with_reference: bool
) -> dict:
    """Every family above for one trained batch; one that raises is logged and left out."""
    families = (
        ("reward", lambda: transfer_queue_batch_metrics(tq, batch)),
        ("video", lambda: video_metrics(tq, batch, processor)),
        ("data", lambda: data_metrics(tq, batch, totals, unreadable_at_start)),
        ("rollout_vs_ref", lambda: rollout_vs_reference_metrics(tq, batch) if with_reference else {}),
        ("groups", lambda: group_metrics(tq, batch)),
        ("zoom", lambda: zoom_metrics(tq, batch)),
    )
    metrics: dict = {}
    for name, compute in families:
        try:
            metrics.update(compute())
        except Exception as exc:  # a metric must never stop training
            logger.warning("verl-video: %s metrics failed: %s: %s", name, type(exc).__name__, exc)
    warning = cannot_learn_warning(metrics)
    if warning:
        logger.warning(warning)
    return metrics
