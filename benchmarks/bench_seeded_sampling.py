"""Cost of per-request seeded sampling in the hf rollout engine: the same batch generated with HF's own
sampler and with one generator per request (Gumbel-max), alternating, on a tiny Qwen2.5-VL.

    python benchmarks/bench_seeded_sampling.py --model runs/tiny_tvg_cpu/warm_model --batch 16 --tokens 48
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine, SamplingSettings


def main() -> None:
    """Print seconds per batch for unseeded and seeded sampling, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = HFEngine(args.model)
    prompt = engine.tokenizer("when does the red square appear in the video")["input_ids"]
    unseeded = [GenerationRequest(list(prompt)) for _ in range(args.batch)]
    seeded = [dataclasses.replace(r, seed=i) for i, r in enumerate(unseeded)]
    settings = SamplingSettings(temperature=1.0, max_new_tokens=args.tokens)
    times: dict[str, list[float]] = {"unseeded": [], "seeded": []}
    for _ in range(args.repeats):
        for name, requests in (("unseeded", unseeded), ("seeded", seeded)):
            start = time.perf_counter()
            results = engine.generate(requests, settings)
            times[name].append((time.perf_counter() - start) / max(1, sum(len(r.token_ids) for r in results)))
    per_token = {name: statistics.median(values) for name, values in times.items()}
    for name, value in per_token.items():
        print(f"{name:>9}: {1e3 * value:.3f} ms per generated token (median of {args.repeats})")
    print(f"seeded / unseeded: {per_token['seeded'] / per_token['unseeded']:.3f}")


if __name__ == "__main__":
    main()
