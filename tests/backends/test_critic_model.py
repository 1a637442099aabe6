"""A Qwen2.5-VL critic: verl's critic engine loads it through our loader and its values depend on the video."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoConfig, AutoProcessor

from verl_video.verl_adapter.fsdp_engine import vision_language_critics


def test_a_vision_language_critic_loads_and_its_values_read_the_video(tiny_model_dir):
    from verl.utils import model as verl_model

    config = AutoConfig.from_pretrained(tiny_model_dir)
    with vision_language_critics():
        # What verl's FSDPEngineWithValueHead._build_module calls (it imports the loader at call time).
        critic = verl_model.load_valuehead_model(str(tiny_model_dir), torch.float32, config, False)
    assert verl_model.load_valuehead_model.__module__ == "verl.utils.model"  # restored afterwards
    assert critic.lm_head.out_features == 1 and critic.lm_head.weight.requires_grad

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "when?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(2):
        frames = rng.integers(0, 255, size=(4, 112, 112, 3), dtype=np.uint8)
        inputs = processor(text=[text], videos=[frames], return_tensors="pt",
                           videos_kwargs={"do_sample_frames": False, "fps": 2.0})
        with torch.no_grad():
            output = critic(**inputs)
        assert output.logits.shape == (*inputs["input_ids"].shape, 1)
        values.append(output.logits[0, -1, 0])
    # Same text, other frames: the value of the last token differs, so the video reached the critic.
    assert not torch.isclose(values[0], values[1])
