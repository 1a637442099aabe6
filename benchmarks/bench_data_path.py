"""Benchmark: our video data path against verl's stock path (RLHFDataset + qwen-vl-utils), in one run.

Same videos, same budget (2 fps, total_pixels 3584*28*28, min_pixels 16*28*28, max 768 frames), same
tiny Qwen2.5-VL processor. Measures, per rollout sample:
  * data path  = dataset `__getitem__` + the dataset class's `process_multi_modal_info` (what verl's agent
                 loop calls for every rollout), cold (first request of a video) and warm (later rollouts);
  * + processor = the same plus one processor call on the frames (verl makes that call itself);
then the decodes per unique video over a short simulated GRPO run (epochs x prompts x n rollouts, the
way the agent loop requests videos) and the start-up time on 1000 records (overlong-prompt filter on).

    python benchmarks/bench_data_path.py [--model DIR] [--rollouts 8] [--epochs 2] [--json out.json]

qwen-vl-utils' default reader (torchvision.io.read_video) is gone from torchvision 0.26 and torchcodec
lacks FFmpeg libraries here, so the stock path runs with FORCE_QWENVL_VIDEO_READER=decord.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
BUDGET = {"fps": 2.0, "max_frames": 768, "min_frames": 4, "total_pixels": 3584 * 28 * 28, "min_pixels": 16 * 28 * 28}
# qwen-vl-utils' per-frame ceiling for videos is 768*28*28; ours is set the same.
MAX_PIXELS = 768 * 28 * 28


def bench_videos(folder: Path) -> list[Path]:
    """The real clips beside the checkout (mp4, webm, mkv) plus two generated 30 s clips."""
    sys.path.insert(0, str(REPO / "tests" / "data"))
    from synthetic_video import write_video

    generated = [write_video(folder / f"gen_{i}.mp4", [(30, 25)], size=(240, 320)) for i in range(2)]
    real = sorted(p for p in SHARED_VIDEOS.glob("*") if p.suffix in (".mp4", ".webm", ".mkv"))
    return real + generated


def write_inputs(folder: Path, videos: list[Path], copies: int = 1) -> tuple[Path, Path]:
    """Our data_config + canonical JSONL, and the equivalent stock RLHFDataset JSONL."""
    from verl_video.video.probe import probe_video

    ours, stock = [], []
    for i in range(copies):
        for video in videos:
            duration = probe_video(str(video)).duration
            ours.append({"id": f"{video.stem}-{i}", "video": str(video), "query": "the event", "timestamps": [[1.0, 2.0]], "duration": duration})
            # qwen-vl-utils' own per-frame ceiling is MAX_PIXELS already (passing it only adds warnings).
            item = {"video": str(video), **{k: v for k, v in BUDGET.items() if k != "min_frames"}}
            stock.append({
                "data_source": "bench",
                "prompt": [{"role": "user", "content": "<video>\nWhen does the event happen?"}],
                "videos": [item],
                "reward_model": {"style": "rule", "ground_truth": "1.0 to 2.0"},
                "extra_info": {"index": len(stock)},
            })  # fmt: skip
    (folder / f"ours_{copies}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ours))
    (folder / f"stock_{copies}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stock))
    config = {"datasets": [{"name": "bench", "json_path": f"ours_{copies}.jsonl", "data_folder": str(folder)}]}
    (folder / f"ours_{copies}.yaml").write_text(yaml.safe_dump(config))
    return folder / f"ours_{copies}.yaml", folder / f"stock_{copies}.jsonl"


def data_config(filter_overlong: bool) -> OmegaConf:
    """verl's data config for both datasets (ours reads data.video; the stock path ignores it)."""
    return OmegaConf.create({
        "max_prompt_length": 8192, "filter_overlong_prompts": filter_overlong,
        # None keeps datasets.filter in-process: with num_proc=1 it forks a pool whose child hangs here
        # (fork after decord/torch threads).
        "filter_overlong_prompts_workers": None,
        "return_raw_chat": True, "cache_dir": str(Path(tempfile.gettempdir()) / "vv_bench_verl_cache"),
        "video": {**BUDGET, "max_pixels": MAX_PIXELS},
    })  # fmt: skip


class StockDecodeCounter:
    """Counts qwen-vl-utils video decodes per path by wrapping its fetch_video."""

    def __init__(self) -> None:
        import qwen_vl_utils.vision_process as vision_process

        self.counts: Counter[str] = Counter()
        original = vision_process.fetch_video

        def counted(ele, *args, **kwargs):
            self.counts[str(ele.get("video"))] += 1
            return original(ele, *args, **kwargs)

        vision_process.fetch_video = counted


def one_sample(dataset, index: int) -> tuple:
    """What verl does per rollout sample before the processor: row, then the class's multimodal info."""
    row = dataset[index]
    config = dataset.config
    return row, asyncio.run(type(dataset).process_multi_modal_info(row["raw_prompt"], 14, config))


def processor_call(processor, row: dict, multimodal: tuple) -> None:
    """The processor call verl's agent loop makes on the frames."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    text = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
    build_multimodal_processor_inputs(processor, text=[text], images=multimodal[0], videos=multimodal[1])


def time_samples(dataset, processor, index: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of `repeats` consecutive requests for sample `index` (first = cold)."""
    data_path, with_processor = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        row, multimodal = one_sample(dataset, index)
        middle = time.perf_counter()
        processor_call(processor, row, multimodal)
        end = time.perf_counter()
        data_path.append(middle - start)
        with_processor.append(end - start)
    return {"data": data_path, "data+processor": with_processor}


def simulate_grpo(dataset, epochs: int, rollouts: int) -> None:
    """The agent loop's video requests over a run: every epoch, every prompt, n concurrent rollouts."""

    async def one_step(index: int) -> None:
        row = dataset[index]
        calls = [type(dataset).process_multi_modal_info(row["raw_prompt"], 14, dataset.config) for _ in range(rollouts)]
        await asyncio.gather(*calls)

    for _ in range(epochs):
        for index in range(len(dataset)):
            asyncio.run(one_step(index))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="tiny Qwen2.5-VL folder (built in a temp folder when absent)")
    parser.add_argument("--rollouts", type=int, default=8, help="n rollouts per prompt (warm samples measured)")
    parser.add_argument("--stock-repeats", type=int, default=3, help="requests per video on the stock path")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--startup-records", type=int, default=1000)
    parser.add_argument("--stock-startup-records", type=int, default=12, help="stock filter decodes: keep small")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_video.video import decode as video_module
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset
    from verl_video.tools.tiny_model import make_tiny_model

    work = Path(tempfile.mkdtemp(prefix="vv_bench_"))
    model = Path(args.model) if args.model else work / "tiny"
    if not args.model:
        make_tiny_model(model)
    tokenizer, processor = hf_tokenizer(str(model)), hf_processor(str(model))
    videos = bench_videos(work / "videos")
    ours_cfg, stock_jsonl = write_inputs(work, videos)
    for video in videos:  # OS page cache: both paths then read the files from memory
        video.read_bytes()

    ours = VideoRLDataset(str(ours_cfg), tokenizer, data_config(False), processor)
    stock = RLHFDataset(str(stock_jsonl), tokenizer, data_config(False), processor)
    stock_counter = StockDecodeCounter()
    results: dict = {"videos": [v.name for v in videos], "per_video": {}}
    print(f"{'video':28s} {'path':6s} {'cold data':>10s} {'warm data':>10s} {'cold +proc':>10s} {'warm +proc':>10s}")
    for index, video in enumerate(videos):
        row = {}
        for name, dataset, repeats in (("stock", stock, args.stock_repeats), ("ours", ours, args.rollouts)):
            samples = time_samples(dataset, processor, index, repeats)
            row[name] = {
                "cold_data": samples["data"][0],
                "warm_data": statistics.median(samples["data"][1:]),
                "cold_total": samples["data+processor"][0],
                "warm_total": statistics.median(samples["data+processor"][1:]),
            }
            r = row[name]
            print(f"{video.name[:28]:28s} {name:6s} {r['cold_data']:10.3f} {r['warm_data']:10.4f} {r['cold_total']:10.3f} {r['warm_total']:10.4f}")
        results["per_video"][video.name] = row

    def total(path: str, key: str) -> float:
        return sum(v[path][key] for v in results["per_video"].values())

    summary = {key: {"stock": total("stock", key), "ours": total("ours", key)} for key in ("cold_data", "warm_data", "cold_total", "warm_total")}
    for value in summary.values():
        value["speedup"] = value["stock"] / value["ours"]
    results["summary_seconds_over_all_videos"] = summary
    print("\nsum over videos (s)   stock      ours    stock/ours")
    for key, value in summary.items():
        print(f"  {key:18s} {value['stock']:8.3f} {value['ours']:9.4f} {value['speedup']:9.1f}x")

    # Decodes per unique video over a short GRPO run (fresh in-process cache for ours).
    from verl_video.video import loader as video_loader

    video_loader.memory_cache(4096).clear()
    before = Counter(video_module.decode_counts)
    stock_counter.counts.clear()
    simulate_grpo(ours, args.epochs, args.rollouts)
    ours_decodes = Counter({k: v - before[k] for k, v in video_module.decode_counts.items() if v - before[k]})
    small = [i for i, v in enumerate(videos) if v.name.startswith("gen_")]
    stock_small = RLHFDataset(str(stock_jsonl), tokenizer, data_config(False), processor)
    stock_small.dataframe = stock_small.dataframe.select(small)  # the stock path on the generated clips only: slow
    simulate_grpo(stock_small, args.epochs, args.rollouts)
    results["grpo_decodes_per_video"] = {
        "epochs": args.epochs,
        "rollouts": args.rollouts,
        "ours": {Path(k).name: v for k, v in ours_decodes.items()},
        "stock": {Path(k).name: v for k, v in stock_counter.counts.items()},
    }
    print(f"\nGRPO run ({args.epochs} epochs x n={args.rollouts}): decodes per video")
    print(f"  ours : {dict(results['grpo_decodes_per_video']['ours'])}")
    print(f"  stock: {dict(results['grpo_decodes_per_video']['stock'])}")

    # Start-up: construction with the overlong-prompt filter on.
    copies = max(1, args.startup_records // len(videos))
    big_cfg, _ = write_inputs(work, videos, copies)
    decodes = sum(video_module.decode_counts.values())
    start = time.perf_counter()
    big = VideoRLDataset(str(big_cfg), tokenizer, data_config(True), processor)
    ours_startup = time.perf_counter() - start
    ours_startup_decodes = sum(video_module.decode_counts.values()) - decodes
    print(f"\nstart-up, filter on: ours {len(big)} records in {ours_startup:.2f} s with {ours_startup_decodes} decodes")
    stock_copies = max(1, args.stock_startup_records // len(videos))
    _, small_stock = write_inputs(work, videos, stock_copies)
    stock_counter.counts.clear()
    start = time.perf_counter()
    RLHFDataset(str(small_stock), tokenizer, data_config(True), processor)
    stock_per_record = (time.perf_counter() - start) / (stock_copies * len(videos))
    results["startup"] = {
        "ours_records": len(big),
        "ours_seconds": ours_startup,
        "ours_decodes": ours_startup_decodes,
        "stock_seconds_per_record": stock_per_record,
        "stock_decodes": sum(stock_counter.counts.values()),
        "stock_records": stock_copies * len(videos),
    }
    print(
        f"start-up, filter on: stock {stock_per_record:.3f} s/record ({sum(stock_counter.counts.values())} decodes for "
        f"{stock_copies * len(videos)} records) -> ~{stock_per_record * len(big):.0f} s for {len(big)}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
