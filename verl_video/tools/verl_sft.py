"""Run verl's SFT trainer (`python -m verl_video.sft`, CPU profile) in a subprocess and save a Hugging Face model.

What `verl-video warm-start` trains with: our config (`config/sft.yaml` + `sft_profile=cpu`), our dataset
class (`VideoSFTDataset`, or `VideoSearchSFTDataset` of search traces for a run whose agent loop is
`video_search`), verl's FSDP engine, loss, optimizer and schedule. The per-step losses come back from verl's file logger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from verl_video.video.settings import VideoDataSettings


# The dataset class of search traces (verl_adapter/search_sft.py), for `data.custom_cls`.
SEARCH_DATASET = ("pkg://verl_video.verl_adapter.search_sft", "VideoSearchSFTDataset")


def added_keys(prefix: str, values: dict[str, Any]) -> list[str]:
    """`+prefix.key=value` overrides adding `values` under `prefix`, nested blocks key by key, None as null."""
    overrides = []
    for key, value in values.items():
        if isinstance(value, dict):
            overrides += added_keys(f"{prefix}.{key}", value)
        else:
            overrides.append(f"+{prefix}.{key}={'null' if value is None else value}")
    return overrides


def video_overrides(settings: VideoDataSettings) -> list[str]:
    """`data.video` of config/sft.yaml set to `settings` (sft.yaml's block is empty: every key is added)."""
    return added_keys("data.video", settings.as_section())


def search_overrides(search: dict[str, Any], seed: int) -> list[str]:
    """The search traces' dataset with the run's `search:` block as `data.search` and the seed of its scripted
    zooms as `data.seed` (verl's config has neither: both are added; only our dataset class reads them)."""
    path, name = SEARCH_DATASET
    return [f"data.custom_cls.path={path}", f"data.custom_cls.name={name}", f"+data.seed={seed}",
            *added_keys("data.search", search)]  # fmt: skip


def sft_overrides(model_dir: Path, data: Path, workdir: Path, steps: int, batch_size: int, lr: float, seed: int,
                  template: str | None = None, max_samples: int | None = None,
                  settings: VideoDataSettings | None = None, search: dict[str, Any] | None = None) -> list[str]:
    """Hydra overrides of config/sft.yaml for a CPU run of `steps` optimizer steps of `batch_size` records, whose
    videos and prompts follow `settings` (default: the YAML's), as the GRPO run after it will; with `search`
    (the run's `search:` block) on the search loop's traces (`VideoSearchSFTDataset`)."""
    settings = settings or VideoDataSettings()
    if template:
        settings = replace(settings, prompt_template=template)
    overrides = [
        "sft_profile=cpu",
        f"model.path={model_dir}",
        f"data.train_files=[{data}]",
        f"data.train_batch_size={batch_size}",
        f"data.micro_batch_size_per_gpu={batch_size}",
        f"data.train_max_samples={max_samples or -1}",
        f"optim.lr={lr}",
        "optim.weight_decay=0.0",
        # Closest to the hand-written loop's linear decay to zero: cosine to zero, no warm-up.
        "optim.lr_scheduler_type=cosine",
        "optim.min_lr_ratio=0.0",
        f"engine.seed={seed}",
        f"trainer.seed={seed}",
        f"trainer.total_training_steps={steps}",
        # verl's loop stops at total_training_steps; the epochs only bound it.
        f"trainer.total_epochs={steps}",
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={workdir}",
        "trainer.save_freq=-1",
        "trainer.resume_mode=disable",
        # Only the Hugging Face copy of the weights: the warm start is not resumed.
        "checkpoint.save_contents=[hf_model]",
    ]
    return overrides + video_overrides(settings) + (search_overrides(search, seed) if search is not None else [])


# verl's full console output (its metrics line of every step), kept beside the model.
LOG_NAME = "warm_start.log"
# How often the console gets a loss line: about every tenth of the steps, and the first and last step.
LOSS_LINES = 10
# Lines of the log shown when the trainer fails.
FAILURE_TAIL = 40


def run_with_progress(command: list[str], env: dict[str, str], metrics: Path, log: Path, steps: int,
                      poll_s: float = 0.5) -> list[float]:
    """Run verl's SFT trainer with its output in `log`; show a bar of its steps and a few loss lines; its losses.

    The steps come from verl's file logger (`metrics`, one JSON line per step, written unbuffered).
    """
    from tqdm import tqdm

    print(f"verl-video warm-start: verl's SFT trainer, {steps} steps; its full log: {log}", flush=True)
    with open(log, "wb") as sink, tqdm(total=steps, unit="step", desc="warm start", mininterval=1.0) as bar:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            losses = _follow(process, metrics, bar, steps, poll_s)
        except BaseException:  # Ctrl-C or a torn metrics line: the trainer must not outlive the command
            process.kill()
            process.wait()
            raise
    if process.returncode:
        tail = log.read_text(errors="replace").splitlines()[-FAILURE_TAIL:]
        print("\n".join(tail), file=sys.stderr)
        print(f"verl-video warm-start: verl's SFT trainer failed (exit {process.returncode}); full log: {log}",
              file=sys.stderr)
        raise subprocess.CalledProcessError(process.returncode, command)
    print(f"verl-video warm-start: {len(losses)} steps done; verl's full log: {log}", flush=True)
    return losses


def _follow(process: subprocess.Popen, metrics: Path, bar, steps: int, poll_s: float) -> list[float]:
    """Until the process exits, advance the bar for each step verl's file logger wrote; the losses in order."""
    every = max(1, steps // LOSS_LINES)
    losses: list[float] = []
    seen = 0
    while True:
        finished = process.poll() is not None  # read once more after the exit: the last lines
        lines = _complete_lines(metrics)[seen:]
        seen += len(lines)
        for row in (json.loads(line) for line in lines if line.strip()):
            loss = row["data"].get("train/loss")
            if loss is None:
                continue
            losses.append(float(loss))
            step = int(row.get("step", len(losses)))
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update(1)
            if step == 1 or step % every == 0 or step == steps:
                bar.write(f"  step {step}/{steps}  loss {loss:.4f}")
        if finished:
            break
        time.sleep(poll_s)
    return losses


def _complete_lines(path: Path) -> list[bytes]:
    """The file's lines that end in a newline (a half-written last line waits for the next read)."""
    return path.read_bytes().split(b"\n")[:-1] if path.is_file() else []


def train_with_verl(model_dir: Path, data: Path, out: Path, steps: int, batch_size: int, lr: float, seed: int,
                    template: str | None = None, max_samples: int | None = None,
                    settings: VideoDataSettings | None = None, search: dict[str, Any] | None = None) -> dict:
    """Fine-tune with verl's SFTTrainer, save the model (fp32), processor and tokenizer to `out`; with `search`
    (the run's `search:` block) on the search loop's traces."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    from verl_video.verl_adapter.sft_driver import RESULT_NAME

    with tempfile.TemporaryDirectory(prefix="verl_sft_") as tmp:
        workdir = Path(tmp)
        metrics = workdir / "metrics.jsonl"
        overrides = sft_overrides(model_dir, data, workdir, steps, batch_size, lr, seed, template, max_samples,
                                  settings, search)
        # Its own process: verl patches transformers' Qwen-VL forward for its engine (it then needs verl's
        # position ids), which must not leak into the caller's models; and it owns the process group.
        # The caller's torch thread count (warm-start --threads, default 1), which a new process would not get:
        # on a loaded CPU, OpenMP threads spinning for each other made verl's steps 8x slower than the loop's.
        env = dict(os.environ, VERL_FILE_LOGGER_PATH=str(metrics), OMP_NUM_THREADS=str(torch.get_num_threads()))
        out.mkdir(parents=True, exist_ok=True)
        losses = run_with_progress([sys.executable, "-m", "verl_video.sft", *overrides], env, metrics,
                                   out / LOG_NAME, steps)
        result = json.loads((workdir / RESULT_NAME).read_text())
        hf = workdir / f"global_step_{result['steps']}" / "huggingface"
        # The bar above was the progress; copying the model needs none of its own (the setting is restored).
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            # verl writes fp32 tensors under a bfloat16 config; save them as fp32 so the model loads as trained.
            model = AutoModelForImageTextToText.from_pretrained(hf, dtype=torch.float32)
            model.save_pretrained(out)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        processor = AutoProcessor.from_pretrained(hf)
        processor.save_pretrained(out)
        processor.tokenizer.save_pretrained(out)
        if (hf / "generation_config.json").is_file():
            shutil.copy(hf / "generation_config.json", out / "generation_config.json")
        # verl's per-step log (train/loss, train/lr, train/grad_norm) stays with the model.
        shutil.copy(metrics, out / "sft_metrics.jsonl")
    return {"losses": losses, **result}
