"""`verl-video warm-start MODEL_DIR DATA OUT`: a short supervised fine-tune that teaches a tiny model the answer format.

A random-weight model practically never writes `<think>...</think><answer>a to b</answer>`, so every
GRPO sample would score the same and the advantages would all be zero. The default 150 steps on the
demo's training split teach the format halfway (greedy: always; sampled at T=1: about half the time)
and stop well before the model uses the video (intervals about the best constant guess), so GRPO has
both the format and the localisation left to improve; measured on the demo's validation split with the
loop: 60 steps format 0 at T=1, 150 steps 0.44-0.53, 300 steps 0.91 (greedy IoU 0.43), 2000 steps 0.94
(IoU 0.62); with verl's trainer, 150 steps: 0.66 at T=1, greedy format 1.0, greedy IoU 0.41.
`--noise` jitters the target intervals for an even rougher start.

It trains through verl's SFT trainer (tools/verl_sft.py: `python -m verl_video.sft`, CPU profile, our
`VideoSFTDataset`, the same settings). `--trainer loop` is this module's single-process loop instead, kept
for `--noise` (jittered targets, which verl's dataset does not draw) and as the reference that
benchmarks/bench_sft_step.py times verl's trainer against; both train on the same ids, labels and positions.
Under a run whose agent loop is `video_search` (`--set experiment=tiny_tvg_search_cpu`) either trainer takes the
search loop's traces instead (verl_adapter/search_sft.py: two videos each, loss on both model turns).
With verl's trainer the console shows a progress bar and the loss about every tenth of the steps; verl's
own output (a metrics line per step) goes to OUT/warm_start.log.

Records, prompt and video go through the pipeline training uses (`verl_video.pipeline.items`), under
the settings training will use: video_grpo.yaml composed with `--set` overrides (e.g.
`--set experiment=tiny_tvg_cpu`), or a run's (`--run`). The prompt is rendered by the model's chat
template, the frames carry their true rate in `video_metadata` (`do_sample_frames=False`), and the loss
covers the response tokens only: the same inputs the RL rollout sees.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from verl_video.annotations.data_config import DataConfigError
from verl_video.pipeline.issues import NoUsableData
from verl_video.pipeline.items import load_items
from verl_video.tasks.prompts import get_template
from verl_video.annotations.records import DEFAULT_TASK
from verl_video.pipeline.run_settings import add_settings_arguments, settings_from_args
from verl_video.video.settings import VideoDataSettings
from verl_video.pipeline.sft_dataset import SFTExample, answer_text, encode, load_example, processor_inputs
from verl_video.models.mrope import install_released_mrope_rule
from verl_video.tools.demo_data import explain

IGNORE_INDEX = -100


def load_examples(
    processor,
    data: Path,
    max_samples: int | None = None,
    template: str | None = None,
    settings: VideoDataSettings | None = None,
) -> list[SFTExample]:
    """Read DATA through the training pipeline under `settings` (default: the YAML's) and decode each video once."""
    from tqdm import tqdm

    settings = settings or VideoDataSettings()
    if template is not None:
        settings = replace(settings, prompt_template=template)
    items = load_items([str(data)], settings)[:max_samples]
    if not items:
        raise ValueError(f"{data}: no usable records")
    return [load_example(processor, item, index, settings)
            for index, item in enumerate(tqdm(items, desc="decode", unit="video", leave=False))]


def target_text(example: SFTExample, rng: torch.Generator | None = None, noise: float = 0.0) -> str:
    """The supervised response; `noise` (seconds) jitters the interval so the warm start stays imperfect.

    Records of other tasks get their task's reference answer (letter, evidence, boxes) in the same form.
    """
    record = example.item.record
    interval = None
    if record.task == DEFAULT_TASK:
        start, end = record.timestamps[0]
        if noise > 0 and rng is not None:
            start += noise * float(torch.randn((), generator=rng))
            end += noise * float(torch.randn((), generator=rng))
            # Keep half-second granularity and an ordered, in-range pair: the model should learn the form.
            start, end = sorted(min(max(round(2 * x) / 2, 0.0), example.duration) for x in (start, end))
        interval = (start, end)
    # The example's own template decides the form (answer only, JSON, think); a think template without the
    # record's reasoning gets the demo's one-line explanation of its query.
    return answer_text(record, example.item.template, interval, default_reasoning=explain(record.query))


def model_inputs(processor, examples: list[SFTExample], texts: list[str]) -> dict:
    """Processor outputs for texts with the examples' videos, sampled rate given by the metadata."""
    return processor_inputs(processor, texts, [ex.frames for ex in examples], [ex.metadata for ex in examples])


def encode_batch(processor, examples: list[SFTExample], responses: list[str]) -> dict:
    """Processor inputs for prompt+response (right padded) with labels on the response tokens only."""
    return with_labels(encode(processor, examples, responses))


def with_labels(batch: dict) -> dict:
    """The batch with `labels` (the ids where `loss_mask` is set, IGNORE_INDEX elsewhere) for its loss mask."""
    mask = batch.pop("loss_mask").bool()
    batch["labels"] = torch.where(mask, batch["input_ids"], torch.full_like(batch["input_ids"], IGNORE_INDEX))
    return batch


def response_loss(model, batch: dict) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled (response) tokens."""
    # The text after the video must sit at the positions the GRPO actor and rollout give it (Qwen's rule),
    # or the warm start teaches the answer at positions RL never uses.
    install_released_mrope_rule()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )


def train(
    model,
    processor,
    examples: list[SFTExample],
    steps: int,
    batch_size: int = 4,
    lr: float = 3e-3,
    noise: float = 0.0,
    seed: int = 0,
    batch_of: Callable[[list[Any]], dict] | None = None,
) -> list[float]:
    """Run `steps` AdamW steps on shuffled examples (batched by `batch_of`, default `encode_batch` of their
    targets); return the loss of each step."""
    from tqdm import tqdm

    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    # Linear decay to zero: the last steps settle instead of bouncing around at full rate.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / max(1, steps))
    model.train()
    losses, order = [], []
    bar = tqdm(range(steps), desc="warm-start", unit="step")
    for _ in bar:
        if len(order) < batch_size:
            order += torch.randperm(len(examples), generator=rng).tolist()
        chosen = [examples[order.pop()] for _ in range(min(batch_size, len(examples)))]
        if batch_of is not None:
            batch = batch_of(chosen)
        else:
            batch = encode_batch(processor, chosen, [target_text(ex, rng, noise) for ex in chosen])
        loss = response_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def evaluate(
    model, processor, examples: list[SFTExample], temperature: float = 0.0, max_new_tokens: int = 48, seed: int = 0
) -> dict:
    """Format rate, parse rate and mean IoU of generated answers (greedy when temperature is 0)."""
    install_released_mrope_rule()  # generate at the positions training and the rollout use
    from verl_video.rewards.format import template_ok
    from verl_video.rewards.iou import best_iou
    from verl_video.rewards.parser import parse_interval

    torch.manual_seed(seed)
    tokenizer = processor.tokenizer
    formatted = parsed = 0
    ious, samples = [], []
    for ex in examples:
        inputs = model_inputs(processor, [ex], [ex.prompt])
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature <= 0:
            sampling = {"do_sample": False}
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        result = parse_interval(text, ex.duration)
        formatted += template_ok(text, get_template(ex.item.template).think) and result.ok
        parsed += result.ok
        ious.append(best_iou(result.interval, ex.item.record.timestamps) if result.ok else 0.0)
        samples.append(text)
    n = max(1, len(examples))
    return {
        "format_rate": formatted / n,
        "parse_rate": parsed / n,
        "mean_iou": sum(ious) / n,
        "iou_at_0.5": sum(i >= 0.5 for i in ious) / n,
        "examples": samples[:3],
    }


def search_examples(
    processor, data: Path, max_samples: int | None, template: str | None, settings: VideoDataSettings | None,
    search: dict, seed: int,
) -> tuple[list[Any], Callable[[list[Any]], dict]]:
    """The search loop's traces of DATA (verl_adapter/search_sft.py) and the function that batches them."""
    from verl_video.verl_adapter.search_prompt import SearchSettings
    from verl_video.verl_adapter.search_sft import encode_traces, load_traces

    settings = settings or VideoDataSettings()
    if template is not None:
        settings = replace(settings, prompt_template=template)

    def target(item) -> str | None:
        return answer_text(item.record, item.template, default_reasoning=explain(item.record.query))

    traces = load_traces(processor, str(data), settings, SearchSettings.from_config({"search": search}),
                         max_samples, seed, target)  # fmt: skip
    return traces, lambda chosen: with_labels(encode_traces(processor, chosen))


def _train_by_hand(model_dir: Path, data: Path, out: Path, steps: int, batch_size: int, lr: float, noise: float,
                   seed: int, template: str | None, max_samples: int | None,
                   settings: VideoDataSettings | None = None,
                   search: dict | None = None) -> tuple[list[float], float, int]:
    """The single-process loop (`train`): (losses, seconds, samples); saves to `out`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    batch_of = None
    if search is not None:
        examples, batch_of = search_examples(processor, data, max_samples, template, settings, search, seed)
    else:
        examples = load_examples(processor, data, max_samples, template, settings)
    began = time.perf_counter()
    losses = train(model, processor, examples, steps, batch_size, lr, noise, seed, batch_of)
    seconds = time.perf_counter() - began
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)
    return losses, seconds, len(examples)


def warm_start(
    model_dir: Path,
    data: Path,
    out: Path,
    steps: int = 150,
    batch_size: int = 4,
    lr: float = 3e-3,
    noise: float = 0.0,
    seed: int = 0,
    template: str | None = None,
    max_samples: int | None = None,
    trainer: str = "verl",
    settings: VideoDataSettings | None = None,
    search: dict | None = None,
) -> dict:
    """Fine-tune MODEL_DIR on DATA under `settings` (default: the YAML's), save model, processor and tokenizer to OUT;
    with `search` (the run's `search:` block) on the search loop's traces."""
    if search is not None and noise > 0:
        raise ValueError("the search warm start draws no jittered targets: leave out --noise")
    if trainer == "verl":
        if noise > 0:
            raise ValueError("--noise jitters targets in the hand-written loop only: add --trainer loop")
        from verl_video.tools.verl_sft import train_with_verl

        result = train_with_verl(model_dir, data, out, steps, batch_size, lr, seed, template, max_samples, settings,
                                 search)
        losses, seconds, samples = result["losses"], result["seconds"], result["samples"]
    else:
        losses, seconds, samples = _train_by_hand(model_dir, data, out, steps, batch_size, lr, noise, seed, template,
                                                  max_samples, settings, search)
    window = max(1, len(losses) // 10)
    summary = {
        "trainer": trainer,
        "model": str(model_dir),
        "data": str(data),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "noise": noise,
        "seed": seed,
        "search": search is not None,
        "samples": samples,
        "first_loss": sum(losses[:window]) / window if losses else math.nan,
        "last_loss": sum(losses[-window:]) / window if losses else math.nan,
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, steps), 3),
        # The prompt the model learnt to answer; `python -m verl_video.main` refuses to train it under another.
        "prompt_template": template or (settings.prompt_template if settings is not None else None),
    }
    (out / "warm_start.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `verl-video warm-start`."""
    parser.add_argument("model_dir", type=Path, help="model folder (e.g. from make-tiny-model)")
    parser.add_argument("data", type=Path, help="data_config YAML or canonical JSONL of the training split")
    parser.add_argument("out", type=Path, help="where to save the fine-tuned model")
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps (few on purpose: see the module doc)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--noise", type=float, default=0.0, help="std (seconds) of jitter added to target intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--template", default=None, help="prompt template name (default: data.video.prompt_template)")
    parser.add_argument("--max-samples", type=int, default=None, help="use only the first N training records")
    parser.add_argument("--trainer", choices=("verl", "loop"), default="verl",
                        help="verl: verl's SFT trainer (python -m verl_video.sft, CPU profile; a search run's "
                             "traces, two videos each, through VideoSearchSFTDataset); loop: the hand-written "
                             "single-process loop (needed for --noise)")
    parser.add_argument("--eval", type=Path, default=None, help="data_config or JSONL to evaluate on afterwards")
    parser.add_argument("--eval-samples", type=int, default=32, help="records of --eval to generate for")
    # A tiny model gains nothing from a second thread, and on a shared CPU OpenMP threads that spin
    # while waiting for each other slowed a step about 50x.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Warm-start, save, and optionally report format rate and IoU on an evaluation split."""
    torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    print(f"verl-video warm-start: settings from {settings.source}")
    try:
        summary = warm_start(
            args.model_dir, args.data, args.out, args.steps, args.batch_size, args.lr, args.noise, args.seed,
            args.template, args.max_samples, args.trainer, settings.video, settings.search,
        )  # fmt: skip
    except (DataConfigError, NoUsableData) as exc:  # a module that fails to import, data without a usable row
        print(f"verl-video warm-start: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    if args.eval is not None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(args.out)
        model = AutoModelForImageTextToText.from_pretrained(args.out).eval()
        examples = load_examples(processor, args.eval, args.eval_samples, args.template, settings.video)
        report = {f"T={t:g}": evaluate(model, processor, examples, temperature=t, seed=args.seed) for t in (0.0, 1.0)}
        (args.out / "warm_start_eval.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    return 0
