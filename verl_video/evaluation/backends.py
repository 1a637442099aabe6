"""Generation backends for evaluation: a chat-formatted prompt plus one decoded video in, text out.

Both backends receive the same prompt text (the training template rendered by the model's chat
template) and the same frames with their `video_metadata`, so the true sampling rate reaches the
model's temporal position ids instead of a default fps.
- `hf`: `verl_video.verl_adapter.hf_engine.HFEngine` (the CPU rollout engine), batched, CPU or GPU.
- `vllm`: `vllm.LLM`, GPU only, imported lazily.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from verl_video.models.family import ModelFamily, family_of_processor


VLLM_UNSUPPORTED = "the vllm backend does not run the video_search agent loop yet; use --backend hf"


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling settings shared by the backends; temperature 0 is greedy (the default)."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class EvalRequest:
    """One sample to generate for: its id, the chat-formatted prompt, and its decoded video."""

    id: str
    prompt: str
    frames: torch.Tensor  # uint8 (T, C, H, W)
    metadata: dict[str, Any]  # transformers VideoMetadata fields, `fps` being the true sampled rate


class EvalBackend(Protocol):
    """What the evaluation runner needs from a model."""

    processor: Any  # renders chat templates

    def generate(self, requests: list[EvalRequest]) -> list[str]:
        """One response text per request, in order."""
        ...

    def describe(self) -> dict:
        """Settings that affect the responses, stored with the results."""
        ...


class HFBackend:
    """Batched Hugging Face generation through the rollout engine (left padding, one forward per step)."""

    def __init__(self, model_path: str, options: GenerationOptions, device: str = "cpu", dtype: str = "float32",
                 attn_implementation: str = "sdpa") -> None:
        from verl_video.verl_adapter.hf_engine import HFEngine

        self.options = options
        self.device, self.dtype = device, dtype
        self.engine = HFEngine(model_path, device=device, dtype=dtype, attn_implementation=attn_implementation,
                               seed=options.seed)
        if self.engine.processor is None:
            raise ValueError(f"{model_path}: no multimodal processor found; evaluation needs a video model")
        self.processor = self.engine.processor

    def _request(self, request: EvalRequest):
        """Prompt ids with the video pads expanded, and the pixel values from the same processor call."""
        from verl_video.verl_adapter.hf_engine import GenerationRequest, processor_inputs

        inputs = processor_inputs(self.processor, text=[request.prompt], videos=[(request.frames, request.metadata)])
        media = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        return GenerationRequest(prompt_ids=inputs["input_ids"][0].tolist(), media=media)

    def generate(self, requests: list[EvalRequest]) -> list[str]:
        """Greedy (or sampled) responses for a batch, special tokens removed."""
        from verl_video.verl_adapter.hf_engine import SamplingSettings

        settings = SamplingSettings(temperature=self.options.temperature, top_p=self.options.top_p,
                                    max_new_tokens=self.options.max_new_tokens)
        results = self.engine.generate([self._request(r) for r in requests], settings)
        return [self.engine.tokenizer.decode(r.token_ids, skip_special_tokens=True) for r in results]

    def describe(self) -> dict:
        """Backend name, device, dtype and sampling settings."""
        return {"backend": "hf", "device": self.device, "dtype": self.dtype, **asdict(self.options)}


def vllm_prompt(request: EvalRequest, family: ModelFamily) -> dict[str, Any]:
    """One `LLM.generate` prompt: the text, the (frames, metadata) pair, and the metadata again where needed.

    vLLM 0.24 drops the pair's metadata for Qwen2.5-VL (the copy in the processor kwargs reaches its
    processor); it keeps it for Qwen3-VL, whose processor call fails on a second copy.
    """
    metadata = dict(request.metadata)
    kwargs: dict[str, Any] = {"do_sample_frames": False}
    if family.metadata_in_processor_kwargs:
        kwargs["video_metadata"] = [metadata]
    frames = request.frames.permute(0, 2, 3, 1).contiguous().numpy()
    video = [(frames, metadata)]
    return {"prompt": request.prompt, "multi_modal_data": {"video": video}, "mm_processor_kwargs": kwargs}


class VLLMBackend:
    """vLLM offline generation (GPU); the whole batch goes to `LLM.generate` at once.

    Video input: `multi_modal_data={"video": [(frames THWC uint8, metadata)]}` with
    `mm_processor_kwargs={"do_sample_frames": False, "video_metadata": [metadata]}` (`vllm_prompt`; the
    metadata copy for Qwen2.5-VL only). vLLM 0.24 drops the pair's metadata for Qwen2.5-VL, and its
    processor would then assume 24 fps (seconds-per-grid 1/12, every predicted time off); the metadata in
    the processor kwargs reaches the processor, so it sees the true sampled fps, as our rollout's agent
    loop does (tests/data/test_video_mrope.py checks vLLM's positions through the same kwargs).
    """

    def __init__(self, model_path: str, options: GenerationOptions, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 dtype: str = "bfloat16") -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError("the vllm backend needs vLLM on a GPU machine: pip install 'verl-video[vllm]' "
                               f"(import failed: {exc}); use --backend hf on CPU") from None
        from transformers import AutoProcessor

        self.options = options
        self.settings = {"tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                         "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len}
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.llm = LLM(model=model_path, tensor_parallel_size=tensor_parallel_size, dtype=dtype,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       limit_mm_per_prompt={"image": 0, "video": 1}, seed=options.seed)
        self.sampling = SamplingParams(temperature=options.temperature, top_p=options.top_p,
                                       max_tokens=options.max_new_tokens, seed=options.seed)

    def generate(self, requests: list[EvalRequest]) -> list[str]:
        """Responses for a batch, in request order."""
        family = family_of_processor(self.processor)
        prompts = [vllm_prompt(r, family) for r in requests]
        outputs = self.llm.generate(prompts, self.sampling, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]

    def describe(self) -> dict:
        """Backend name, engine settings and sampling settings."""
        return {"backend": "vllm", **self.settings, **asdict(self.options)}


BACKENDS = ("hf", "vllm")


def make_backend(name: str, model_path: str, options: GenerationOptions, **kwargs: Any) -> EvalBackend:
    """Build the named backend; `kwargs` go to its constructor (device/dtype, tensor_parallel_size, ...)."""
    if name == "hf":
        return HFBackend(model_path, options, **kwargs)
    if name == "vllm":
        return VLLMBackend(model_path, options, **kwargs)
    raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
