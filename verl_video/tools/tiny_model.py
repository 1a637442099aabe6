"""`verl-video make-tiny-model OUT [--family F]`: a random-weight Qwen2.5-VL, Qwen3-VL or Qwen2-VL small enough
to train on a CPU, built offline.

The tokenizer is a byte-level BPE trained on text the demo produces (prompt templates, demo queries,
answers), with Qwen's pre-tokenizer, so digits are single tokens and any text still encodes. The
special tokens and the chat template follow the Qwen-VL models' (the three families share them), so every
code path that handles the real model (processor, verl's tokenizer helpers, M-RoPE, Qwen3-VL's text
timestamps) handles this one unchanged. Each family keeps its released vision geometry (patch 14 or 16,
merge 2, temporal patch 2); only widths and depths shrink.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from verl_video.tasks.prompts import TEMPLATES, build_messages
from verl_video.models.family import DEFAULT_FAMILY, FAMILIES, get_family

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
DEFAULT_SYSTEM = "You are a helpful assistant."
DEFAULT_VOCAB_SIZE = 1024
# Bumped when the construction changes, so an old directory is rebuilt rather than reused.
BUILDER_VERSION = 2  # 2: the family is part of the build
MARKER = "verl_video_tiny.json"

# Renders string content verbatim and content lists with Qwen's vision placeholders; every literal is a
# quoted Jinja string so no template whitespace leaks into the prompt.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'video' or 'video' in item -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'image' or 'image' in item -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in item -%}"
    "{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)


def tokenizer_corpus() -> list[str]:
    """Text the tiny model will meet: every template over every demo query, plus answers and numbers."""
    from verl_video.tools.demo_data import all_queries, explain

    lines = [DEFAULT_SYSTEM, "system", "user", "assistant", "0 1 2 3 4 5 6 7 8 9"]
    for query in all_queries():
        for name in TEMPLATES:
            lines.extend(m["content"] for m in build_messages(query, name, duration=12.0))
        lines.append(f"<think>{explain(query)}</think>")
    for start in range(0, 30):
        for length in (2, 3, 4, 5, 6):
            s, e = start + 0.5, start + 0.5 + length
            lines.append(f"<answer>{s:.2f} to {e:.2f}</answer>")
            lines.append(f'<answer>{{"start_time": {s:.2f}, "end_time": {e:.2f}}}</answer>')
    return lines


def build_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE):
    """Train a byte-level BPE on the corpus and wrap it as a Qwen2 tokenizer with Qwen's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2TokenizerFast

    # Train with exactly the pre-tokenizer Qwen2TokenizerFast rebuilds on load: then merges learnt here apply
    # identically after a reload, and Qwen's regex isolates each digit.
    reference = Qwen2TokenizerFast(vocab={"<|endoftext|>": 0}, merges=[])
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = reference.backend_tokenizer.normalizer
    bpe.pre_tokenizer = reference.backend_tokenizer.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2TokenizerFast(
        vocab=model["vocab"],
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]}
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_processor(tokenizer, family: str = DEFAULT_FAMILY):
    """The family's processor, its image and video processors keeping small frames small."""
    import transformers
    from transformers import Qwen2VLImageProcessor

    geometry = get_family(family).reference_geometry
    side = geometry.pixels_per_token_side
    if family == "qwen3_vl":
        from transformers import Qwen3VLVideoProcessor

        # Qwen3-VL bounds the pixels of the whole clip (frames x height x width); these are the released
        # checkpoints' bounds (4 frames of 32x32 up to 768 frames of 1024x1024 tokens' worth of pixels).
        video_size = {"shortest_edge": 4 * side * side, "longest_edge": 768 * side * side * side}
        video_processor = Qwen3VLVideoProcessor(size=video_size, patch_size=geometry.patch_size)
    else:
        from transformers import Qwen2VLVideoProcessor

        # The video default floor (128 tokens' worth of pixels per frame) would upscale a 112x112 demo frame
        # about 8x; keep one merged patch per token side instead, so token counts follow the decoded size.
        video_size = {"shortest_edge": 4 * side * side, "longest_edge": 768 * side * side}
        video_processor = Qwen2VLVideoProcessor(size=video_size, patch_size=geometry.patch_size)
    image_size = {"shortest_edge": 4 * side * side, "longest_edge": 768 * side * side}
    processor_class = getattr(transformers, get_family(family).processor_class)
    return processor_class(
        image_processor=Qwen2VLImageProcessor(size=image_size, patch_size=geometry.patch_size),
        video_processor=video_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) in Qwen2.5-VL's 2:3:3 ratio."""
    half = head_dim // 2
    time = max(1, half // 4)
    height = (half - time) // 2
    return [time, height, half - time - height]


def interleaved_mrope_section(head_dim: int) -> list[int]:
    """Qwen3-VL's interleaved (time, height, width) split: height and width take every third frequency."""
    half = head_dim // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def build_config(tokenizer, hidden_size: int = 64, layers: int = 2, family: str = DEFAULT_FAMILY):
    """The family's config sized for CPU, its special-token ids taken from the tokenizer."""
    import transformers

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads = max(1, hidden_size // 32)
    if hidden_size % heads:
        raise ValueError(f"--hidden-size {hidden_size} must be a multiple of 32 (or below 32)")
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        # A lower base than Qwen's 1e6: with a 32-wide head, the slow frequencies would otherwise carry no
        # position information over the few hundred positions a demo prompt spans.
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": mrope_section(hidden_size // heads),
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "use_sliding_window": False,
    }
    geometry = get_family(family).reference_geometry
    tokens = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    vision = {
        "depth": 2,
        "hidden_size": hidden_size,
        "num_heads": heads,
        "patch_size": geometry.patch_size,
        "spatial_merge_size": geometry.merge_size,
        "temporal_patch_size": geometry.temporal_patch_size,
    }
    if family == "qwen3_vl":
        text["head_dim"] = hidden_size // heads
        text["rope_parameters"]["mrope_section"] = interleaved_mrope_section(hidden_size // heads)
        text["rope_parameters"]["mrope_interleaved"] = True
        vision.update(
            intermediate_size=2 * hidden_size,
            out_hidden_size=hidden_size,
            num_position_embeddings=576,  # a 24x24 learned grid, interpolated to each frame's size
            deepstack_visual_indexes=[0],  # the first block's features also feed the language model
        )
    elif family == "qwen2_vl":
        vision.update(embed_dim=hidden_size, mlp_ratio=2)
    else:
        vision.update(
            intermediate_size=2 * hidden_size,
            out_hidden_size=hidden_size,
            # Sampling at 2 fps makes one temporal patch one second, i.e. 2 position steps per second.
            tokens_per_second=2,
            window_size=112,
            fullatt_block_indexes=[1],
        )
    config_class = {"qwen3_vl": "Qwen3VLConfig", "qwen2_vl": "Qwen2VLConfig"}.get(family, "Qwen2_5_VLConfig")
    # Untied: the output head can specialise on the few answer tokens without disturbing the input embedding.
    config = getattr(transformers, config_class)(
        text_config=text, vision_config=vision, tie_word_embeddings=False, **tokens
    )
    config._attn_implementation = "sdpa"
    config.dtype = "float32"
    return config


def build_model(config, seed: int):
    """The config's image-text-to-text model in float32 with seeded random weights."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    model.generation_config.eos_token_id = [config.text_config.eos_token_id, config.text_config.bos_token_id]
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    return model.eval()


def is_valid(out: Path, expected: dict) -> bool:
    """Whether OUT holds a finished tiny model built with these options."""
    marker = out / MARKER
    needed = ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json")
    if not marker.is_file() or not all((out / name).is_file() for name in needed):
        return False
    return json.loads(marker.read_text()) == expected


def make_tiny_model(
    out: Path,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    force: bool = False,
    family: str = DEFAULT_FAMILY,
) -> bool:
    """Build and save tokenizer, processor and model under OUT; return False when a valid one was kept."""
    get_family(family)
    expected = {
        "builder_version": BUILDER_VERSION,
        "family": family,
        "seed": seed,
        "hidden_size": hidden_size,
        "layers": layers,
    }
    if is_valid(out, expected) and not force:
        return False
    if (out / MARKER).exists() and not force:
        raise FileExistsError(f"{out}/{MARKER} records other options; pass --force to rebuild")
    if force and out.exists():
        shutil.rmtree(out)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, family)
    model = build_model(build_config(tokenizer, hidden_size, layers, family), seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / MARKER).write_text(json.dumps(expected, indent=2) + "\n")  # last: marks a finished build
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video make-tiny-model`."""
    parser.add_argument("out", type=Path, help="output directory (a Hugging Face model folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--hidden-size", type=int, default=64, help="text and vision width")
    parser.add_argument("--layers", type=int, default=2, help="text decoder layers")
    parser.add_argument("--force", action="store_true", help="rebuild even if OUT holds a valid model")
    parser.add_argument("--family", choices=sorted(FAMILIES), default=DEFAULT_FAMILY, help="model family (HF model_type)")


def run(args: argparse.Namespace) -> int:
    """Build the tiny model."""
    built = make_tiny_model(args.out, args.seed, args.hidden_size, args.layers, args.force, args.family)
    print(f"make-tiny-model: {'wrote' if built else f'kept the existing {args.family} model in'} {args.out}")
    return 0
