"""Video tokens per model family for one clip under the default video budget, counted by each family's processor.

Writes a 60 s 1280x720 clip at 30 fps (PyAV), decodes it through the training data path at the default budget
(`data.video`: 2 fps, 768 frames, total_pixels 3584*28*28) with the geometry read from each family's
processor (the tiny processors of `make-tiny-model`, which keep the released patch / merge / temporal patch
sizes), runs the processor as verl's agent loop does, and prints frames, frame size and video tokens.

    python benchmarks/bench_video_tokens.py [--seconds 60] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

from synthetic_video import write_video  # noqa: E402
from verl.utils.tokenizer import build_multimodal_processor_inputs  # noqa: E402

from verl_video.video.settings import VideoBudget  # noqa: E402
from verl_video.video.decode import decode_video  # noqa: E402
from verl_video.models.family import FAMILIES, video_geometry, video_token  # noqa: E402
from verl_video.tools.tiny_model import build_processor, build_tokenizer  # noqa: E402


def main() -> None:
    """Print one line per family."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the generated clip")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    tokenizer = build_tokenizer()
    with tempfile.TemporaryDirectory() as folder:
        clip = write_video(Path(folder) / "clip.mp4", [(args.seconds, 30)], size=(height, width))
        print(f"{args.seconds:.0f} s {width}x{height} clip, default budget {VideoBudget()}")
        for family in FAMILIES:
            processor = build_processor(tokenizer, family)
            decoded = decode_video(str(clip), VideoBudget(), geometry=video_geometry(processor))
            messages = [{"role": "user", "content": [{"type": "video", "video": "v"}, {"type": "text", "text": "?"}]}]
            text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = build_multimodal_processor_inputs(processor, text=[text], videos=[decoded.as_processor_input()])
            tokens = int((inputs["input_ids"][0] == video_token(processor)[1]).sum())
            plan = decoded.plan
            print(
                f"{family:11s} {plan.num_frames} frames at {plan.fps:.3g} fps, {plan.width}x{plan.height}, "
                f"grid {inputs['video_grid_thw'][0].tolist()}, {tokens} video tokens "
                f"(planned {plan.num_video_tokens}), prompt {inputs['input_ids'].shape[1]} tokens"
            )


if __name__ == "__main__":
    main()
