"""How well a search model answers once it has the right window: greedy answers with the warm start's window.

    python benchmarks/bench_search_oracle_window.py MODEL DATA --set experiment=tiny_tvg_search_demo -n 64

For each grounding record of DATA the trace of the search warm start (verl_adapter/search_sft.py, the run's
`search.trace_window`) is built; the model gets it up to its final answer (overview, the scripted `<zoom>` call,
the window's frames) and answers greedily. mIoU and R1@0.5 of those answers bound what the loop's answers can
reach by calling better; `verl-video eval` measures the loop itself. Printed and written to nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from tqdm import tqdm
from transformers import AutoModelForImageTextToText, AutoProcessor

from verl_video.pipeline.run_settings import add_settings_arguments, settings_from_args
from verl_video.rewards.iou import best_iou
from verl_video.rewards.parser import parse_interval
from verl_video.verl_adapter.search_prompt import SearchSettings
from verl_video.verl_adapter.search_sft import answer_prompt, load_traces


def main() -> int:
    """Answer every trace greedily after its scripted window and print the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder")
    parser.add_argument("data", help="data_config YAML or canonical JSONL (grounding records)")
    parser.add_argument("-n", type=int, default=64, help="records to answer")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    add_settings_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = settings_from_args(args)
    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model).eval()
    search = SearchSettings.from_config({"search": settings.search})
    traces = load_traces(processor, args.data, settings.video, search, max_samples=args.n)
    ious, parsed = [], 0
    for trace in tqdm(traces, desc="oracle window", unit="answer"):
        inputs = answer_prompt(processor, trace)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
        text = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        record = trace.item.record
        result = parse_interval(text, record.duration)
        parsed += result.ok
        ious.append(best_iou(result.interval, record.timestamps) if result.ok else 0.0)
    print(f"{args.model}: {len(ious)} answers after the trace's window ({search.trace_window} rule): "
          f"mIoU {statistics.fmean(ious):.3f}, R1@0.5 {sum(i >= 0.5 for i in ious) / len(ious):.3f}, "
          f"parsed {parsed}/{len(ious)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
