"""A custom reward in one file: copy this file, edit the function, select it by name in config.

Use it with the `video` reward manager:

    reward.reward_manager.name=video
    '+reward.reward_kwargs.modules=[examples/reward_function/my_reward.py]'
    '+reward.reward_kwargs.components=[{name: tiou, weight: 1.0}, {name: format, weight: 0.5}, {name: early_stop, weight: 0.2}]'

or name it in a presets file (see my_presets.yaml next to this file).
"""

from verl_video.rewards import Sample, register_reward


# `low`/`high` (required) are the bounds your function promises; a value outside them is clamped, a call
# that raises scores `low`, and both are counted in the step metrics (`early_stop/clamped`, `/errors`).
@register_reward("early_stop", low=0.0, high=1.0)
def early_stop(sample: Sample, max_chars: int = 600) -> float:
    """1 for a readable answer in at most `max_chars` characters, decaying linearly to 0 at twice that."""
    # sample.parse is the shared parser's result (interval in seconds + status), computed once per
    # response and reused by every component; sample.windows / sample.duration come from the row.
    if sample.parse.interval is None:
        return 0.0
    extra = max(0, len(sample.response) - max_chars)
    return max(0.0, 1.0 - extra / max_chars)
