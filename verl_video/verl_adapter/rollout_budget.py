"""vLLM's context and batch budgets sized from the data lengths, and the longest prompt a video budget yields.

verl 0.9.1 leaves `actor_rollout_ref.rollout.max_model_len` null and then takes the model's
`max_position_embeddings` (128,000 for Qwen2.5-VL, 262,144 for Qwen3-VL); with chunked prefill off it raises
`max_num_batched_tokens` to that too (verl/workers/rollout/vllm_rollout/vllm_async_server.py,
`_validate_configs`, lines 1102-1119). vLLM then profiles memory for one sequence of that length, while our
prompts plus responses are `data.max_prompt_length + data.max_response_length` tokens at most: the dataset
drops longer prompts (filter_overlong_prompts) and the agent loop caps the response at
`min(response_length, prompt_length + response_length - len(prompt))` (same file, lines 593-613).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from verl_video.models.family import prompt_tokens_besides_video, video_geometry
from verl_video.video.sampling_plan import plan_sampling
from verl_video.video.settings import VideoBudget

# Rollout backends whose engine reads the two keys (vLLM's server args, vllm_async_server.py lines 332-335).
BUDGETED_ROLLOUTS = ("vllm",)


def model_context_length(model_path: str) -> int | None:
    """The model's `max_position_embeddings` (top level or text_config) from a local config.json; None if unknown."""
    path = Path(str(model_path)) / "config.json"
    if not path.is_file():
        return None
    with open(path) as f:
        config = json.load(f)
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get("max_position_embeddings")
    return int(value) if value else None


def apply_rollout_budget(config: DictConfig) -> str | None:
    """Fill rollout.max_model_len / max_num_batched_tokens the user left null from the data lengths; print them.

    max_model_len: prompt + response (capped at the model's context when its config.json is local: verl refuses
    a larger value). max_num_batched_tokens: max_model_len when null, and never below max_model_len with chunked
    prefill off, where vLLM must prefill a whole prompt in one batch (verl would raise it there anyway).
    """
    rollout = config.actor_rollout_ref.rollout
    if rollout.name not in BUDGETED_ROLLOUTS:
        return None
    wanted = int(config.data.max_prompt_length) + int(config.data.max_response_length)
    context = model_context_length(config.actor_rollout_ref.model.path)
    with open_dict(rollout):
        derived = rollout.get("max_model_len") is None
        if derived:
            rollout.max_model_len = min(wanted, context) if context else wanted
        batched = rollout.get("max_num_batched_tokens")
        if batched is None or (not rollout.enable_chunked_prefill and batched < rollout.max_model_len):
            rollout.max_num_batched_tokens = int(rollout.max_model_len)
    source = "data.max_prompt_length + data.max_response_length" if derived else "set"
    line = (
        f"verl-video: rollout budget max_model_len={rollout.max_model_len} ({source}), "
        f"max_num_batched_tokens={rollout.max_num_batched_tokens} (chunked prefill "
        f"{'on' if rollout.enable_chunked_prefill else 'off'})"
    )
    print(line)
    return line


def video_prompt_tokens(processor: Any, budget: VideoBudget, duration: float, height: int, width: int) -> int:
    """Tokens that take the place of one video's placeholder under `budget` (video tokens, Qwen3-VL's time stamps).

    As the dataset's prompt-length filter counts them (VideoRLDataset.estimate_prompt_length).
    """
    plan = plan_sampling(duration, height, width, budget, geometry=video_geometry(processor))
    return plan.num_video_tokens + prompt_tokens_besides_video(processor, plan.group_seconds)


def budget_from_config(config: DictConfig) -> VideoBudget:
    """The default video budget of a composed config (`data.video`)."""
    video = OmegaConf.to_container(config.data.video, resolve=True)
    fields = VideoBudget.__dataclass_fields__
    return VideoBudget(**{key: value for key, value in video.items() if key in fields})
