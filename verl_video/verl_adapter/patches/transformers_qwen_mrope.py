"""Patch: `get_rope_index` of transformers' Qwen2-VL and Qwen2.5-VL models follows the released checkpoints.

What: `Qwen2VLModel.get_rope_index` and `Qwen2_5_VLModel.get_rope_index` become
`verl_video.models.mrope.released_rope_index` (transformers' own functions are kept in `mrope.TRANSFORMERS_RULES`).
Why: transformers 5.x resumes the text after a video at the block start + max(h, w); the released
checkpoints, vLLM's rollout and verl's own rule resume at the block's largest position + 1, so training
positions after every video disagreed with the rollout's (see models/mrope.py). Must be in place before
verl's agent loop binds the class's function to a processor (it does so when it loads one).
Also installed without verl, by the commands that generate with transformers directly (tools/warm_start.py,
the hf rollout engine), through the same `install_released_mrope_rule`.
Fails without it: tests/data/test_video_mrope.py::test_vllm_and_training_positions_agree_on_every_token.
"""

from __future__ import annotations

from verl_video.models.mrope import install_released_mrope_rule

TARGET = ("transformers", "5.9.0")
TEST = "tests/data/test_video_mrope.py::test_vllm_and_training_positions_agree_on_every_token"
PROCESSES = ("verl",)


def apply() -> bool:
    """Replace `get_rope_index` on both model classes; True when both classes exist to be patched."""
    return len(install_released_mrope_rule()) == 2
