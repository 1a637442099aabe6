"""The `hf` rollout engine on a GRPO-shaped batch (n rollouts of each video), with and without sharing work
between the rollouts of one video (frames processed once per distinct video: video/processor_memo.py; the vision
tower run once per distinct video: verl_adapter/distinct_videos.py).

    python benchmarks/bench_hf_rollout.py --model runs/tiny_tvg_cpu/warm_model
    python benchmarks/bench_hf_rollout.py --model runs/tiny_tvg_cpu/warm_model --videos 8 --n 8 --frames 32

Prints seconds per batch for both settings (best of --repeats, both measured in this one process, so compare
the ratio, not the absolute times) and whether they generated the same tokens.
"""

from __future__ import annotations

import argparse
import time
import torch

from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine, SamplingSettings


def make_requests(engine: HFEngine, videos: int, n: int, frames: int, size: int) -> list[GenerationRequest]:
    """`videos` random videos of `frames` frames, each asked `n` times (separate tensors, as after Ray)."""
    requests = []
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "when does it happen"}]}]
    prompt = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for v in range(videos):
        generator = torch.Generator().manual_seed(v)
        pixels = torch.randint(0, 255, (frames, 3, size, size), dtype=torch.uint8, generator=generator)
        meta = {"fps": 2.0, "total_num_frames": frames, "frames_indices": list(range(frames)), "duration": frames / 2}
        ids = engine.processor(text=[prompt], videos=[pixels], video_metadata=[meta], do_sample_frames=False,
                               return_tensors="pt")["input_ids"][0].tolist()
        for k in range(n):
            requests.append(GenerationRequest(ids, videos=[(pixels.clone(), dict(meta))], seed=v * n + k))
    return requests


def timed(engine: HFEngine, requests: list[GenerationRequest], settings: SamplingSettings, repeats: int):
    """Best wall time of `repeats` generate calls, and the last call's tokens."""
    best, tokens = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        results = engine.generate(requests, settings)
        best = min(best, time.perf_counter() - start)
        tokens = [r.token_ids for r in results]
    return best, tokens


def main() -> None:
    """Time one batch with sharing on and off."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a (tiny) video model folder")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--n", type=int, default=8, help="rollouts per video")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    engine = HFEngine(args.model, seed=0)
    requests = make_requests(engine, args.videos, args.n, args.frames, args.size)
    settings = SamplingSettings(temperature=1.0, max_new_tokens=args.max_new_tokens)
    shared, shared_tokens = timed(engine, requests, settings, args.repeats)
    memo = engine.processor.video_processor
    engine.distinct_videos = False
    engine.processor.video_processor = memo._inner  # every request's frames processed again
    every, every_tokens = timed(engine, requests, settings, args.repeats)
    print(f"{args.videos} videos x {args.n} rollouts, {args.frames} frames of {args.size}px, "
          f"{args.max_new_tokens} new tokens at most")
    print(f"  shared per video: {shared:.2f} s/batch")
    print(f"  every request:    {every:.2f} s/batch")
    print(f"  speed-up {every / shared:.2f}x; same tokens: {shared_tokens == every_tokens}")


if __name__ == "__main__":
    main()
