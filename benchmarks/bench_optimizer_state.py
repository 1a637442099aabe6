"""AdamW state with the vision tower frozen vs trained: measured on the tiny model, computed for Qwen2.5-VL-3B/7B.

    python benchmarks/bench_optimizer_state.py [--tiny DIR]

Tiny model: the bytes AdamW actually holds after one step over the trainable parameters (what our engine
hands it). 3B and 7B: parameter counts of the models built on the meta device from their published
configs (no download), times 8 bytes (AdamW keeps two fp32 moments per trainable parameter).
"Frozen" is the default: encoder frozen, projector (merger) and language model trained.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from verl_video.models.vision_tower import VisionSettings, apply_freeze, trainable_parameters

ADAM_BYTES_PER_PARAM = 8
FROZEN = VisionSettings(freeze_encoder=True)
TRAINED = VisionSettings(freeze_encoder=False)

VISION_COMMON = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                     spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                     fullatt_block_indexes=[7, 15, 23, 31])
CONFIGS = {
    "Qwen2.5-VL-3B": dict(
        text=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                  num_key_value_heads=2, vocab_size=151936),
        vision=dict(VISION_COMMON, out_hidden_size=2048), tie_word_embeddings=True),
    "Qwen2.5-VL-7B": dict(
        text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                  num_key_value_heads=4, vocab_size=152064),
        vision=dict(VISION_COMMON, out_hidden_size=3584), tie_word_embeddings=False),
}


def adam_state_bytes(model: torch.nn.Module) -> int:
    """Bytes of AdamW state after one step over the model's trainable parameters."""
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return sum(t.nbytes for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t))


def trainable_count(model: torch.nn.Module) -> int:
    """Parameters left trainable (counted once when tied)."""
    return sum(p.numel() for p in trainable_parameters(model))


def meta_model(spec: dict):
    """A Qwen2.5-VL with this config on the meta device: shapes only, no memory, no download."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(text_config=spec["text"], vision_config=spec["vision"],
                              tie_word_embeddings=spec["tie_word_embeddings"])
    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration._from_config(config)


def gib(n: float) -> str:
    return f"{n / 2**30:8.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", help="tiny model folder (default: build one in a temporary folder)")
    args = parser.parse_args()
    from transformers import Qwen2_5_VLForConditionalGeneration

    with tempfile.TemporaryDirectory() as tmp:
        path = args.tiny
        if path is None:
            from verl_video.tools.tiny_model import make_tiny_model

            path = f"{tmp}/tiny"
            make_tiny_model(__import__("pathlib").Path(path))
        measured = {}
        for name, settings in (("frozen", FROZEN), ("trained", TRAINED)):
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
            apply_freeze(model, settings)
            measured[name] = (trainable_count(model), adam_state_bytes(model))
    print(f"{'model':<15} {'tower':<8} {'trainable params':>17} {'AdamW state':>13}")
    for name in ("trained", "frozen"):
        count, state = measured[name]
        print(f"{'tiny (measured)':<15} {name:<8} {count:>17,} {state / 2**10:>9.1f} KiB")
    for label, spec in CONFIGS.items():
        for name, settings in (("trained", TRAINED), ("frozen", FROZEN)):
            model = meta_model(spec)
            apply_freeze(model, settings)
            count = trainable_count(model)
            print(f"{label:<15} {name:<8} {count:>17,} {gib(count * ADAM_BYTES_PER_PARAM):>13}")


if __name__ == "__main__":
    main()
