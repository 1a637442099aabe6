"""One-GPU check of verl-video's model-side code on full-size random-weight Qwen2.5-VL-3B and Qwen3-VL-4B.

What it checks, per family (each prints `CHECK family.name: PASS|FAIL|SKIP detail`):
  vision_reuse  vision-feature reuse (verl_video/models/vision_cache.py) gives the tower's own features on a
                miss and on a hit, and the same projector gradients (bf16 on GPU: max |diff| <= 1e-2 x max |ref|;
                fp32 on CPU: 1e-5 x max |ref|)
  mrope         for a synthetic 60 s 1280x720 video at the default budget (data.video of video_grpo.yaml:
                2 fps, max_frames 768, total_pixels ...): the processor's video token count and grid equal the
                sampling plan's, the prompt length equals the family's count (Qwen3-VL's text timestamps
                included, their text equal to the plan's seconds) and the model's M-RoPE positions equal Qwen's
                released rule (verl_video/models/mrope.py) at the plan's seconds
  flash_attn    token log-probs of padded video rows with sdpa and flash_attention_2 agree (bf16: mean |diff|
                <= 0.02, max <= 1.0 nats; eager vs sdpa printed beside as the rounding-noise reference); SKIP
                with the reason when flash_attn does not import or there is no GPU
  actor_step    one actor forward+backward of that video's prompt plus a 512-token response, vision tower frozen
                (verl_video/models/vision_tower.py), gradient checkpointing on: peak memory
                (torch.cuda.max_memory_allocated; on CPU the process's peak RSS) and tokens/s
A table (family, check, value, seconds) and `N passed, M failed` end the output; the exit status is 1 on any FAIL.
Nothing here imports verl, Ray or vLLM (`--report-modules` prints the top-level modules the process loaded).

On a lent GPU machine (torch + transformers only: no verl, Ray, vLLM or omegaconf needed), from the repository
root; only the repository travels (no `carry`: no model, no data, no virtualenv):

    python benchmarks/gpu_check.py --device cuda --report-modules

About 2-4 minutes on one H100 (two random-weight models, 3.75B and 4.44B parameters, built in bf16 on the GPU
one after the other; no download; all inputs synthetic); give it timeout_s 600. Paste the whole output (the
CHECK lines, the table, MODULES and the count line) with the card the run reports into the project's note on the
GPU issue; a FAIL line says what differed, a traceback above it where a check raised.

    python benchmarks/gpu_check.py --device cpu

runs the same checks on tiny models of both families (verl_video/tools/tiny_model.py) in well under a minute
(tests/test_gpu_check.py runs it).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verl_video.models import vision_cache  # noqa: E402
from verl_video.models.family import (  # noqa: E402
    MROPE_SECONDS,
    get_family,
    prompt_tokens_besides_video,
    video_geometry,
    video_token,
)
from verl_video.models.mrope import install_released_mrope_rule, vision_block_positions  # noqa: E402
from verl_video.models.vision_tower import VisionSettings, apply_freeze, find_vision_tower  # noqa: E402
from verl_video.tools.tiny_model import build_config, build_model, build_processor, build_tokenizer  # noqa: E402
from verl_video.tools.vl_batches import RESPONSE_TOKENS, micro_batches, token_log_probs, video_rows  # noqa: E402
from verl_video.video.decode import video_metadata  # noqa: E402
from verl_video.video.sampling_plan import SamplingPlan, plan_sampling  # noqa: E402
from verl_video.video.settings import VideoBudget  # noqa: E402

FAMILY_NAMES = ("qwen2_5_vl", "qwen3_vl")
VIDEO_SECONDS = 60.0
VIDEO_HEIGHT, VIDEO_WIDTH = 720, 1280
RESPONSE_LEN = 512
# Two videos per tower call (t, h, w in patches; h and w multiples of the 2x2 merge). Qwen3-VL's synthetic LM
# rows hold one frame group (t = 1) because its processor writes a timestamp between groups.
REUSE_GRIDS = [(2, 8, 8), (2, 8, 12)]
LM_GRIDS = {"qwen2_5_vl": [(2, 8, 8), (2, 8, 12)], "qwen3_vl": [(1, 8, 8), (1, 8, 12)]}
# Relative tolerance of the reuse check: bf16 keeps 8 significant bits (2^-8 ~ 4e-3 per rounding).
REUSE_TOLERANCE = {torch.bfloat16: 1e-2, torch.float32: 1e-5}
# Tolerances of sdpa vs flash-attention log-probs in bf16: the kernels round differently, and a token whose
# logits are nearly tied can move by a few tenths of a nat (eager vs sdpa on the tiny bf16 model: max 0.30),
# so the mean carries the verdict and the max only catches a broken kernel.
FLASH_MEAN_NATS, FLASH_MAX_NATS = 0.02, 1.0

# The published config.json values of Qwen/Qwen2.5-VL-3B-Instruct and Qwen/Qwen3-VL-4B-Instruct (architecture
# only). The special-token ids come from the offline tokenizer instead of the published 151643-151656: they
# only name which embedding rows the placeholders use, so the architecture and the compute are the same.
PUBLISHED = {
    "qwen2_5_vl": {
        "text": {
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "hidden_act": "silu",
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            "use_sliding_window": False,
        },
        "vision": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "in_chans": 3,
            "out_hidden_size": 2048,
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
    },
    "qwen3_vl": {
        "text": {
            "vocab_size": 151936,
            "hidden_size": 2560,
            "intermediate_size": 9728,
            "num_hidden_layers": 36,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "max_position_embeddings": 262144,
            "rms_norm_eps": 1e-6,
            "hidden_act": "silu",
            "attention_bias": False,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5000000.0,
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        },
        "vision": {
            "depth": 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "in_channels": 3,
            "out_hidden_size": 2560,
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17],
        },
    },
}
TOKEN_FIELDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


@dataclass
class Result:
    """One check's outcome for one family."""

    family: str
    check: str
    status: str  # PASS, FAIL or SKIP
    value: str
    seconds: float


def published_config(tokenizer, family: str):
    """The family's full-size config (published values), special-token ids from the offline tokenizer."""
    tiny = build_config(tokenizer, family=family)
    ids = {name: getattr(tiny.text_config, name) for name in ("bos_token_id", "eos_token_id", "pad_token_id")}
    config = type(tiny)(
        text_config={**PUBLISHED[family]["text"], **ids},
        vision_config=PUBLISHED[family]["vision"],
        tie_word_embeddings=True,
        **{name: getattr(tiny, name) for name in TOKEN_FIELDS},
    )
    config._attn_implementation = "sdpa"
    return config


def load_model(tokenizer, family: str, device: torch.device):
    """Full-size bf16 random weights built on the GPU, or the tiny fp32 model on the CPU."""
    if device.type == "cpu":
        return build_model(build_config(tokenizer, family=family), seed=0)
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: a CPU init of 3-4B parameters takes minutes
        model = AutoModelForImageTextToText.from_config(
            published_config(tokenizer, family), attn_implementation="sdpa", dtype=torch.bfloat16
        )
    return model.eval()


def model_dtype(model) -> torch.dtype:
    """The dtype the model computes in."""
    return next(model.parameters()).dtype


def tower_parts(output) -> list[torch.Tensor]:
    """A tower call's projected features: the merger's, then Qwen3-VL's deepstack ones."""
    return [output.pooler_output, *(getattr(output, "deepstack_features", None) or ())]


def projector_grads(tower) -> dict[str, torch.Tensor]:
    """Current gradients of every projector parameter, detached copies; clears them."""
    grads = {}
    for i, projector in enumerate(vision_cache.projectors(tower)):
        for name, param in projector.named_parameters():
            grads[f"{i}.{name}"] = param.grad.detach().clone()
            param.grad = None
    return grads


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (0 for two zero tensors)."""
    scale = want.float().abs().max().item()
    return (got.float() - want.float()).abs().max().item() / (scale or 1.0)


def check_vision_reuse(family: str, model, context: dict) -> tuple[bool, str]:
    """Features and projector gradients through FeatureReuse (miss, then hit) equal the tower's own."""
    device, dtype = context["device"], model_dtype(model)
    tower = find_vision_tower(model)
    apply_freeze(model, VisionSettings(freeze_encoder=True, reuse_features=True))
    vision = model.config.vision_config
    patch_dim = vision.temporal_patch_size * vision.patch_size**2 * 3
    generator = torch.Generator().manual_seed(2)
    patches = sum(t * h * w for t, h, w in REUSE_GRIDS)
    pixels = torch.randn(patches, patch_dim, generator=generator).to(device, dtype)
    grid = torch.tensor(REUSE_GRIDS, device=device)

    def run() -> list[torch.Tensor]:
        parts = tower_parts(tower(pixels, grid_thw=grid))
        # A fixed random direction per output gives a scalar loss whose gradient reaches every projector weight.
        weights = [torch.randn(p.shape, generator=torch.Generator().manual_seed(3 + i)).to(p) for i, p in
                   enumerate(parts)]
        sum((p.float() * w.float()).sum() for p, w in zip(parts, weights)).backward()
        return [p.detach() for p in parts]

    want = run()
    want_grads = projector_grads(tower)
    vision_cache.end_step()
    hook = vision_cache.install_feature_reuse(model, reuse=True, projector_frozen=False, model_key=family)
    if hook is None:
        return False, f"{type(tower).__name__}: feature reuse not installed"
    tolerance = REUSE_TOLERANCE[dtype]
    details, ok = [], True
    try:
        for label in ("miss", "hit"):
            got = run()
            grads = projector_grads(tower)
            feature_error = max(relative_error(g, w) for g, w in zip(got, want, strict=True))
            grad_error = max(relative_error(grads[name], want_grads[name]) for name in want_grads)
            ok &= feature_error <= tolerance and grad_error <= tolerance and len(grads) == len(want_grads)
            details.append(f"{label} features {feature_error:.1e} grads {grad_error:.1e}")
        counters = vision_cache.process_store().counters
        ok &= counters.encoded == len(REUSE_GRIDS) and counters.requests == 2 * len(REUSE_GRIDS)
        details.append(f"encoder ran {counters.encoded}x for {counters.requests} requests")
    finally:
        del tower.forward  # the instance attribute the hook set; later checks run the tower itself
        vision_cache.end_step()
    return ok, f"max rel err (tol {tolerance:g}): " + ", ".join(details)


def video_inputs(family: str, processor) -> tuple[SamplingPlan, dict, int]:
    """The processor's inputs for a synthetic default-budget video, the plan, and the prompt's length without it."""
    plan = plan_sampling(
        VIDEO_SECONDS, VIDEO_HEIGHT, VIDEO_WIDTH, VideoBudget(), geometry=video_geometry(processor)
    )
    generator = torch.Generator().manual_seed(4)
    frames = torch.randint(0, 256, (plan.num_frames, 3, plan.height, plan.width), dtype=torch.uint8,
                           generator=generator)
    messages = [{"role": "user", "content": [{"type": "video", "video": "synthetic.mp4"},
                                             {"type": "text", "text": "When does the scene change?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=[frames], video_metadata=[video_metadata(plan, "synthetic")],
                       do_sample_frames=False, return_tensors="pt")
    bare = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    return plan, dict(inputs), bare


def expected_positions(input_ids: torch.Tensor, video_id: int, grid: tuple[int, int, int], merge: int,
                       temporal_step: float) -> torch.Tensor:
    """(3, L) positions by Qwen's rule: text counts on, each run of video tokens is a grid of (runs' frames, h, w)
    merged tokens whose times advance by temporal_step, the text after it resumes at its max + 1."""
    tokens_per_frame = grid[1] * grid[2] // merge**2
    pieces, next_position, start = [], 0, 0
    is_video = (input_ids == video_id).tolist()
    while start < len(is_video):
        end = start
        while end < len(is_video) and is_video[end] == is_video[start]:
            end += 1
        if is_video[start]:
            frames = (end - start) // tokens_per_frame
            piece = vision_block_positions((frames, grid[1] // merge, grid[2] // merge), temporal_step, next_position)
        else:
            piece = torch.arange(end - start).expand(3, -1) + next_position
        pieces.append(piece)
        next_position = int(piece.max()) + 1
        start = end
    return torch.cat(pieces, dim=1)


def check_mrope(family: str, model, context: dict) -> tuple[bool, str]:
    """Token counts and M-RoPE positions of the processor's output equal the sampling plan's and Qwen's rule."""
    processor = build_processor(context["tokenizer"], family)
    plan, inputs, bare = video_inputs(family, processor)
    context["video"] = (plan, inputs)
    ids = inputs["input_ids"][0]
    _, video_id = video_token(processor)
    grid = tuple(int(n) for n in inputs["video_grid_thw"][0])
    geometry = plan.geometry
    problems = []
    tokens = int((ids == video_id).sum())
    if tokens != plan.num_video_tokens:
        problems.append(f"{tokens} video tokens, plan {plan.num_video_tokens}")
    planned_grid = (plan.num_frames // geometry.temporal_patch_size, plan.height // geometry.patch_size,
                    plan.width // geometry.patch_size)
    if grid != planned_grid:
        problems.append(f"grid {grid}, plan {planned_grid}")
    length = bare - 1 + plan.num_video_tokens + prompt_tokens_besides_video(processor, plan.group_seconds)
    if len(ids) != length:
        problems.append(f"prompt {len(ids)} tokens, counted {length}")

    time_encoding = get_family(family).time_encoding
    merge = geometry.merge_size
    step = 0.0
    if time_encoding == MROPE_SECONDS:
        seconds = float(inputs["second_per_grid_ts"][0])
        if seconds != plan.seconds_per_grid:
            problems.append(f"second_per_grid_ts {seconds}, plan {plan.seconds_per_grid}")
        step = plan.seconds_per_grid * model.config.vision_config.tokens_per_second
    else:
        # Text timestamps: what stands between the frame groups' video tokens must be the plan's seconds.
        text = processor.tokenizer.decode(ids)
        stamps = [f"<{t:.1f} seconds>" for t in plan.group_seconds]
        if [s for s in stamps if s not in text] or text.count(" seconds>") != len(stamps):
            problems.append(f"timestamps differ from the plan's {stamps[:3]}...")
    rope_kwargs = {key: inputs[key] for key in ("mm_token_type_ids", "video_grid_thw", "second_per_grid_ts",
                                                 "attention_mask") if key in inputs}
    positions, _ = model.model.get_rope_index(inputs["input_ids"], **rope_kwargs)
    want = expected_positions(ids, video_id, grid, merge, step)
    if not torch.equal(positions[:, 0].cpu(), want):
        differ = int((positions[:, 0].cpu() != want).any(0).sum())
        problems.append(f"M-RoPE positions differ at {differ} of {len(ids)} tokens")
    detail = (f"{plan.num_frames} frames at {plan.fps:g} fps, {plan.width}x{plan.height}, grid {list(grid)}, "
              f"{tokens} video tokens, prompt {len(ids)} tokens, last position {int(positions.max())}")
    return not problems, "; ".join(problems) if problems else detail


def check_flash_attention(family: str, model, context: dict) -> tuple[bool | None, str]:
    """Log-probs of padded video rows with sdpa and with flash_attention_2 agree; None (SKIP) without flash-attn."""
    if context["device"].type != "cuda":
        return None, "flash_attention_2 needs a CUDA device"
    try:
        import flash_attn  # noqa: F401
    except ImportError as exc:
        return None, f"flash_attn does not import ({exc})"
    rows = video_rows(model.config, LM_GRIDS[family], rollouts=2, response_len=32)
    batch = next(micro_batches(rows, list(range(len(rows))), len(rows)))
    batch = {k: v.to(context["device"]) for k, v in batch.items()}
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(model_dtype(model))
    mask = batch["attention_mask"][:, 1:].bool()
    log_probs = {}
    try:
        # eager vs sdpa is printed beside as the size of bf16 rounding noise between two correct kernels.
        for implementation in ("sdpa", "eager", "flash_attention_2"):
            model.set_attn_implementation(implementation)
            with torch.no_grad():
                log_probs[implementation] = token_log_probs(model, batch)[mask].float()
    finally:
        model.set_attn_implementation("sdpa")
    diff = (log_probs["flash_attention_2"] - log_probs["sdpa"]).abs()
    noise = (log_probs["eager"] - log_probs["sdpa"]).abs()
    mean, worst = diff.mean().item(), diff.max().item()
    ok = mean <= FLASH_MEAN_NATS and worst <= FLASH_MAX_NATS
    return ok, (f"|log-prob diff| mean {mean:.2e} max {worst:.2e} nats over {int(mask.sum())} tokens "
                f"(tol {FLASH_MEAN_NATS}/{FLASH_MAX_NATS}; eager vs sdpa: mean {noise.mean().item():.2e} "
                f"max {noise.max().item():.2e})")


def peak_memory(device: torch.device) -> tuple[float, str]:
    """GiB of the device's peak allocation (CUDA) or of the process's peak resident set (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process peak RSS"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_actor_step(family: str, model, context: dict) -> tuple[bool, str]:
    """One actor forward+backward on the default-budget video: peak memory and tokens/s, frozen tower, checkpointing."""
    device = context["device"]
    if "video" not in context:
        return False, "needs the video inputs of the mrope check, which failed"
    plan, inputs = context["video"]
    counts = apply_freeze(model, VisionSettings(freeze_encoder=True))
    generator = torch.Generator().manual_seed(5)
    response = torch.randint(*RESPONSE_TOKENS, (1, RESPONSE_LEN), generator=generator)
    batch = {
        "input_ids": torch.cat([inputs["input_ids"], response], dim=1),
        "attention_mask": torch.cat([inputs["attention_mask"], torch.ones_like(response)], dim=1),
        **{k: inputs[k] for k in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts") if k in inputs},
    }
    if "mm_token_type_ids" in inputs:  # the response is text (type 0)
        batch["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(response)], dim=1)
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(model_dtype(model))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    tower = find_vision_tower(model)
    try:
        timings = []
        # On the GPU the first pass pays one-time kernel selection and the second is timed; the CPU run only
        # proves the path, so it makes one.
        for _ in range(2 if device.type == "cuda" else 1):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            synchronize(device)
            started = time.perf_counter()
            loss = -token_log_probs(model, batch)[:, -RESPONSE_LEN:].mean()
            loss.backward()
            synchronize(device)
            timings.append(time.perf_counter() - started)
            encoder_grads = [n for n, p in tower.named_parameters() if "merger" not in n and p.grad is not None]
            llm_grad = model.get_output_embeddings().weight.grad
            ok = torch.isfinite(loss).item() and not encoder_grads and llm_grad is not None
            model.zero_grad(set_to_none=True)
        peak, what = peak_memory(device)
    finally:
        model.gradient_checkpointing_disable()
        model.eval()
    length = batch["input_ids"].shape[1]
    return bool(ok), (f"{length} tokens ({plan.num_video_tokens} video), {length / timings[-1]:.0f} tokens/s "
                      f"({timings[-1]:.2f} s), peak {peak:.2f} GiB ({what}), frozen encoder "
                      f"{counts['frozen'] / 1e6:.1f}M params, loss {loss.item():.3f}")


CHECKS: list[tuple[str, Callable]] = [
    ("vision_reuse", check_vision_reuse),
    ("mrope", check_mrope),
    ("flash_attn", check_flash_attention),
    ("actor_step", check_actor_step),
]


def run_family(family: str, context: dict) -> list[Result]:
    """Build the family's model and run every check on it; an exception fails that check only."""
    results = []
    started = time.perf_counter()
    try:
        model = load_model(context["tokenizer"], family, context["device"])
    except Exception as exc:  # e.g. a config field another transformers version renamed
        traceback.print_exc()
        print(f"CHECK {family}.build: FAIL {type(exc).__name__}: {exc}", flush=True)
        return [Result(family, "build", "FAIL", f"{type(exc).__name__}: {exc}", time.perf_counter() - started)]
    params = sum(p.numel() for p in model.parameters())
    print(f"# {family}: {params / 1e6:.1f}M parameters, {model_dtype(model)}, built in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            ok, detail = check(family, model, context)
        except Exception as exc:  # a broken check must not hide the others' results
            ok, detail = False, f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        status = "SKIP" if ok is None else "PASS" if ok else "FAIL"
        result = Result(family, name, status, detail, time.perf_counter() - started)
        print(f"CHECK {family}.{name}: {status} {detail}", flush=True)
        results.append(result)
    context.pop("video", None)
    del model
    gc.collect()
    if context["device"].type == "cuda":
        torch.cuda.empty_cache()
    return results


def loaded_top_level_modules() -> list[str]:
    """Top-level names of the non-standard-library modules this process imported."""
    names = {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
    return sorted(n for n in names if n not in sys.stdlib_module_names and not n.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    """Run every check for both families; 1 when any fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cuda: full-size bf16 models; cpu: tiny fp32 models of the same families")
    parser.add_argument("--family", choices=FAMILY_NAMES, action="append", help="only this family (repeatable)")
    parser.add_argument("--report-modules", action="store_true", help="print the top-level modules loaded")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        # The tiny models gain nothing from threads; on a shared CPU spinning OpenMP threads made it ~5x slower.
        torch.set_num_threads(1)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is visible")
        print(f"# {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    import transformers

    print(f"# transformers {transformers.__version__}, default video budget {VideoBudget()}", flush=True)
    install_released_mrope_rule()  # as the verl plugin does in every training process
    tokenizer = build_tokenizer()
    families = args.family or list(FAMILY_NAMES)
    context = {"device": device, "tokenizer": tokenizer}
    results = [result for family in families for result in run_family(family, context)]

    print(f"\n{'family':11s} {'check':13s} {'status':6s} {'seconds':>8s}  value")
    for r in results:
        print(f"{r.family:11s} {r.check:13s} {r.status:6s} {r.seconds:8.2f}  {r.value}")
    passed = sum(r.status == "PASS" for r in results)
    failed = sum(r.status == "FAIL" for r in results)
    if args.report_modules:
        print("MODULES: " + " ".join(loaded_top_level_modules()))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
