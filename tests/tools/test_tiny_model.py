"""The tiny model loads offline through every loader the project uses, and its ids and token counts are right."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from verl_video.tools.tiny_model import SPECIAL_TOKENS, make_tiny_model


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid hub access for the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    """(processor, model) loaded with the Auto classes, as the trainer does."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    return AutoProcessor.from_pretrained(tiny_model_dir), model


def video_inputs(processor, num_frames: int, height: int, width: int, fps: float = 2.0):
    """Processor inputs for one random video described by metadata at `fps`."""
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (num_frames, 3, height, width), dtype=np.uint8))
    metadata = {"total_num_frames": num_frames, "fps": fps, "frames_indices": list(range(num_frames))}
    messages = [{"role": "user", "content": [{"type": "video", "video": "x.mp4"}, {"type": "text", "text": "When?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(
        text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt"
    )


def test_loads_offline_with_every_loader(tiny_model_dir, offline) -> None:
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from verl.utils.tokenizer import hf_processor, hf_tokenizer

    assert isinstance(AutoProcessor.from_pretrained(tiny_model_dir), Qwen2_5_VLProcessor)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    assert model.dtype == torch.float32 and model.config._attn_implementation == "sdpa"
    assert hf_tokenizer(str(tiny_model_dir)).eos_token == "<|im_end|>"
    assert type(hf_processor(str(tiny_model_dir))).__name__ == "Qwen2_5_VLProcessor"


def test_special_token_ids_match_config(tiny_model_dir, loaded) -> None:
    processor, model = loaded
    tok, config = processor.tokenizer, model.config
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS)
    assert all(i < config.text_config.vocab_size for i in ids.values())
    assert config.video_token_id == ids["<|video_pad|>"] == processor.video_token_id
    assert config.image_token_id == ids["<|image_pad|>"] == processor.image_token_id
    assert config.vision_start_token_id == ids["<|vision_start|>"]
    assert config.vision_end_token_id == ids["<|vision_end|>"]
    assert tok.eos_token_id == config.text_config.eos_token_id == ids["<|im_end|>"]
    assert tok.pad_token_id == config.text_config.pad_token_id == ids["<|endoftext|>"]
    assert config.vision_config.out_hidden_size == config.text_config.hidden_size


def test_tokenizer_is_small_and_digits_are_single_tokens(loaded) -> None:
    tok = loaded[0].tokenizer
    assert 256 < len(tok) <= 2048
    answer = "<answer>12.54 to 17.83</answer>"
    pieces = tok.convert_ids_to_tokens(tok(answer)["input_ids"])
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("12541783")
    assert tok.decode(tok(answer)["input_ids"]) == answer


def test_chat_template_renders_video_placeholder(loaded) -> None:
    processor = loaded[0]
    messages = [{"role": "user", "content": [{"type": "video", "video": "v.mp4"}, {"type": "text", "text": "\nWhen?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>\nWhen?<|im_end|>\n" in text
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("num_frames,height,width", [(16, 112, 112), (8, 224, 112), (4, 56, 84)])
def test_video_token_count(loaded, num_frames: int, height: int, width: int) -> None:
    processor, model = loaded
    inputs = video_inputs(processor, num_frames, height, width)
    expected = (num_frames // 2) * (height // 28) * (width // 28)
    assert int((inputs["input_ids"] == model.config.video_token_id).sum()) == expected
    assert inputs["video_grid_thw"].tolist() == [[num_frames // 2, height // 14, width // 14]]
    # 2 fps in the metadata: one temporal patch is one second, so time positions advance 2 per second.
    assert inputs["second_per_grid_ts"].tolist() == [1.0]


def test_forward_and_generate_with_video(loaded) -> None:
    processor, model = loaded
    inputs = video_inputs(processor, 8, 112, 112)
    with torch.no_grad():
        logits = model(**inputs).logits
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert logits.shape[-1] == model.config.text_config.vocab_size and torch.isfinite(logits).all()
    assert out.shape[1] > inputs["input_ids"].shape[1]
    positions, _ = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"],
    )
    video = inputs["input_ids"][0] == model.config.video_token_id
    times = positions[0, 0, video].unique().tolist()
    assert [t - times[0] for t in times] == [0, 2, 4, 6]


def test_build_is_idempotent_and_deterministic(tmp_path, tiny_model_dir) -> None:
    out = tmp_path / "again"
    assert make_tiny_model(out, seed=0) is True
    assert make_tiny_model(out, seed=0) is False
    digest = lambda d: hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(out) == digest(tiny_model_dir)
    assert (out / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()
    with pytest.raises(FileExistsError, match="--force"):
        make_tiny_model(out, seed=1)
    assert make_tiny_model(out, seed=1, force=True) is True
    assert digest(out) != digest(tiny_model_dir)
