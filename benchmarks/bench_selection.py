"""Selection throughput: `verl-video select -k K` vs greedy `verl-video eval` on the same records, HF backend.

    python benchmarks/bench_selection.py                   # tiny model, 16 demo records, k=8, batch 8, CPU
    python benchmarks/bench_selection.py --model DIR --data DATA_CONFIG --device cuda

Prints records/s and answers/s of selection (k sampled answers + 1 greedy per record) and samples/s of
evaluation (1 greedy answer) measured in one process, video decoding included, model loading excluded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    """Build the tiny model and demo data unless given, then time both commands."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--data")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from verl_video.evaluation import run_eval
    from verl_video.evaluation.backends import GenerationOptions, make_backend
    from verl_video.selection import cli

    work = Path(tempfile.mkdtemp(prefix="bench_selection_"))
    model, data = args.model, args.data
    if model is None:
        from verl_video.tools.tiny_model import make_tiny_model

        make_tiny_model(work / "tiny")
        model = str(work / "tiny")
    if data is None:
        from verl_video.tools.demo_data import generate

        generate(work / "demo", num_train=args.records, num_val=1, seed=0)
        data = str(work / "demo" / "train.yaml")

    common = ["--device", args.device, "--batch-size", str(args.batch_size), "--max-new-tokens",
              str(args.max_new_tokens), "--limit", str(args.records)]
    sel_parser = argparse.ArgumentParser()
    cli.add_arguments(sel_parser)
    sel_args = sel_parser.parse_args([data, "--model", model, "-k", str(args.k), "-o", str(work / "sel"), *common])
    eval_parser = argparse.ArgumentParser()
    run_eval.add_arguments(eval_parser)
    eval_args = eval_parser.parse_args(["--model", model, "--data", data, "-o", str(work / "eval"), "--no-plots",
                                        *common])
    dtype = "float32" if args.device == "cpu" else "bfloat16"
    backend = make_backend("hf", model, GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=1.0),
                           device=args.device, dtype=dtype)

    started = time.perf_counter()
    cli.sample_stats(sel_args, backend_factory=lambda _: backend)
    select_s = time.perf_counter() - started
    greedy = make_backend("hf", model, GenerationOptions(max_new_tokens=args.max_new_tokens), device=args.device,
                          dtype=dtype)
    started = time.perf_counter()
    run_eval.evaluate(eval_args, backend_factory=lambda _: greedy)
    eval_s = time.perf_counter() - started
    answers = args.records * (args.k + 1)
    print(f"select -k {args.k}: {args.records / select_s:.3f} records/s, {answers / select_s:.2f} answers/s "
          f"({select_s:.1f} s)")
    print(f"eval (greedy):  {args.records / eval_s:.3f} samples/s ({eval_s:.1f} s)")
    print(f"select answers/s over eval samples/s: {answers / select_s / (args.records / eval_s):.2f}x")


if __name__ == "__main__":
    main()
