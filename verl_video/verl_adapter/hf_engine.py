"""Batched Hugging Face `generate` for (video) language models, token ids in, token ids + log-probs out.

One engine serves the CPU rollout server (`hf_server.py`) and evaluation. Requests arrive as prompt token
ids in which each video is already expanded into its `<|video_pad|>` run (what verl's agent loop sends),
plus the decoded frames and their metadata; pixel values are computed here with the model's own processor
so the rollout sees exactly what the actor is trained on.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import torch
from transformers import AutoConfig, AutoProcessor, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList

from verl_video.verl_adapter.distinct_videos import distinct_video_encoding
from verl_video.video.processor_memo import memoize_video_processor
from verl_video.models.mrope import install_released_mrope_rule

logger = logging.getLogger(__name__)


def processor_inputs(processor: Any, **kwargs: Any) -> dict[str, Any]:
    """The model inputs verl's agent loop builds from a processor call (text, images, videos as verl passes them)."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    return build_multimodal_processor_inputs(processor, **kwargs)


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample; `temperature == 0` means greedy. Requests with equal settings share a batch."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0

    @classmethod
    def from_verl(cls, params: dict[str, Any], default_max_tokens: int) -> "SamplingSettings":
        """Read the sampling dict verl's agent loop sends (vLLM-style keys)."""
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", default_max_tokens))
        return cls(
            temperature=float(params.get("temperature", 1.0)),
            top_p=float(params.get("top_p", 1.0)),
            top_k=int(params.get("top_k", -1) if params.get("top_k") is not None else -1),
            max_new_tokens=int(max_tokens),
            repetition_penalty=float(params.get("repetition_penalty", 1.0)),
        )


@dataclass
class GenerationRequest:
    """One prompt: token ids (video pads expanded) and its media as verl passes them."""

    prompt_ids: list[int]
    videos: Optional[list[Any]] = None  # each (frames uint8 tensor (T,C,H,W), metadata dict) or frames
    images: Optional[list[Any]] = None
    # Processor outputs (pixel values, grids, second_per_grid_ts) when the caller already has them.
    media: Optional[dict[str, Any]] = None
    # Sampling seed of this request alone (see `SeededSampler`); None draws from the process's generator.
    seed: Optional[int] = None


@dataclass
class GenerationResult:
    """Generated token ids (ending with EOS when the model stopped), their log-probs, and why it stopped."""

    token_ids: list[int]
    log_probs: list[float]
    finish_reason: str  # "stop" or "length"
    extra: dict[str, Any] = field(default_factory=dict)


class SeededSampler(LogitsProcessor):
    """Sampling where each row draws from its own generator, so its tokens do not depend on its batch-mates.

    Gumbel-max: argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T). Generation runs
    greedy with this processor last, after temperature, top-k and top-p are applied here, so row r's t-th
    token uses the t-th draw of generator r whatever else is in the batch.
    """

    def __init__(self, seeds: list[int], settings: "SamplingSettings") -> None:
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.settings = settings

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float() / self.settings.temperature
        if self.settings.top_k > 0:
            kth = torch.topk(scores, min(self.settings.top_k, scores.shape[-1]), dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.settings.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
            drop_sorted = (cumulative - torch.softmax(ordered, dim=-1)) >= self.settings.top_p
            scores = scores.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        return scores + gumbel.to(scores.device)


def _load_model(model_path: str, dtype: torch.dtype, attn_implementation: str):
    """Load a vision-language model when the config has a vision tower, else a causal LM."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    # Generation computes M-RoPE positions inside the model: the same rule as training's (models/mrope.py).
    install_released_mrope_rule()
    config = AutoConfig.from_pretrained(model_path)
    loader = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    return loader.from_pretrained(model_path, dtype=dtype, attn_implementation=attn_implementation)


class HFEngine:
    """A model, its processor, and batched sampling with per-token log-probs."""

    def __init__(
        self,
        model_path: str,
        device: str = "cpu",
        dtype: str = "float32",
        attn_implementation: str = "sdpa",
        seed: int = 0,
    ) -> None:
        self.model_path = model_path
        self.device = torch.device(device)
        self.model = _load_model(model_path, getattr(torch, dtype), attn_implementation).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        try:
            self.processor = AutoProcessor.from_pretrained(model_path)
        except (OSError, ValueError):
            self.processor = None  # text-only model
        if isinstance(self.processor, type(self.tokenizer)):
            self.processor = None
        # The n rollouts of a video arrive as n requests: process its frames once (video/processor_memo.py).
        memoize_video_processor(self.processor)
        self.pad_token_id = self.tokenizer.pad_token_id
        if self.pad_token_id is None:
            self.pad_token_id = self.tokenizer.eos_token_id
        self.eos_token_ids = self._eos_token_ids()
        self.video_token_id = getattr(self.model.config, "video_token_id", None)
        self.image_token_id = getattr(self.model.config, "image_token_id", None)
        self.banned_token_ids = self._banned_token_ids()
        self.generator_seed = seed
        # Run the vision tower once per distinct video of a batch (verl_adapter/distinct_videos.py).
        self.distinct_videos = True
        torch.manual_seed(seed)

    def _eos_token_ids(self) -> list[int]:
        """EOS ids from the generation config (Qwen stops on <|im_end|> and <|endoftext|>) and the tokenizer."""
        ids: set[int] = set()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(int(v) for v in value)
        return sorted(ids)

    def _banned_token_ids(self) -> list[int]:
        """Tokens the policy must never sample, as verl's vLLM server bans them: media placeholders (a sampled
        `<|video_pad|>` has no video behind it and breaks every later consumer) and ids past the tokenizer."""
        banned = {t for t in (self.video_token_id, self.image_token_id) if t is not None}
        vocab = self.model.get_output_embeddings().weight.shape[0]
        banned.update(range(len(self.tokenizer), vocab))
        return sorted(banned)

    # ------------------------------------------------------------------ media
    def _media_inputs(self, request: GenerationRequest) -> dict[str, torch.Tensor]:
        """Pixel values and grids for one request's media, computed by the model's processor."""
        if request.media is not None:
            return request.media
        if not request.videos and not request.images:
            return {}
        if self.processor is None:
            raise ValueError(f"{self.model_path}: the request carries images/videos but the model has no processor")
        # A text made only of placeholders: the processor expands them exactly as for the full prompt.
        text = self.processor.image_token * len(request.images or ()) + self.processor.video_token * len(
            request.videos or ()
        )
        inputs = processor_inputs(self.processor, text=[text], images=request.images or None,
                                  videos=request.videos or None)
        self._check_placeholder_count(request, inputs["input_ids"][0])
        return {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}

    def _check_placeholder_count(self, request: GenerationRequest, expanded: torch.Tensor) -> None:
        """Fail clearly when the prompt's pad runs and the processed media disagree (wrong fps or budget)."""
        for token_id, kind in ((self.video_token_id, "video"), (self.image_token_id, "image")):
            if token_id is None:
                continue
            want = int((expanded == token_id).sum())
            have = sum(1 for t in request.prompt_ids if t == token_id)
            if want != have:
                raise ValueError(
                    f"prompt has {have} {kind} tokens but its {kind}s expand to {want}: the frames sent to the "
                    "rollout differ from those used to build the prompt"
                )

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> list[GenerationResult]:
        """Generate for a batch of requests sharing one sampling setting (left padding, one forward per step)."""
        if not requests:
            return []
        longest = max(len(r.prompt_ids) for r in requests)
        input_ids = torch.full((len(requests), longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(requests), longest), dtype=torch.long)
        for row, request in enumerate(requests):
            ids = torch.tensor(request.prompt_ids, dtype=torch.long)
            input_ids[row, longest - len(ids) :] = ids
            attention_mask[row, longest - len(ids) :] = 1
        model_inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        model_inputs.update(self._batch_media([self._media_inputs(r) for r in requests]))
        if self.video_token_id is not None or self.image_token_id is not None:
            model_inputs["mm_token_type_ids"] = self._mm_token_type_ids(input_ids)
        model_inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in model_inputs.items()}

        greedy = settings.temperature <= 0
        seeded = not greedy and all(r.seed is not None for r in requests)
        generation_config = GenerationConfig(
            do_sample=not greedy and not seeded,
            temperature=None if greedy or seeded else settings.temperature,
            top_p=None if greedy or seeded else settings.top_p,
            # 0 disables HF's top-k warper; the model's own generation_config would otherwise apply top_k=50.
            top_k=None if greedy or seeded else (settings.top_k if settings.top_k > 0 else 0),
            repetition_penalty=settings.repetition_penalty,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            suppress_tokens=self.banned_token_ids or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
        processors = LogitsProcessorList([SeededSampler([r.seed for r in requests], settings)] if seeded else [])
        with distinct_video_encoding(self.model) if self.distinct_videos else nullcontext():
            out = self.model.generate(**model_inputs, generation_config=generation_config, logits_processor=processors)
        new_tokens = out.sequences[:, longest:].cpu()
        # Raw logits / temperature, before the placeholder ban: the quantity the actor recomputes, so the two
        # agree to float precision under synced weights (banned tokens carry ~0 mass in a trained model).
        logits = torch.stack(out.logits, dim=1).float().cpu()
        temperature = settings.temperature if settings.temperature > 0 else 1.0
        log_probs = torch.log_softmax(logits / temperature, dim=-1)
        chosen = log_probs.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
        return [self._trim(new_tokens[row], chosen[row], settings.max_new_tokens) for row in range(len(requests))]

    def _trim(self, tokens: torch.Tensor, log_probs: torch.Tensor, max_new_tokens: int) -> GenerationResult:
        """Cut a row after its first EOS (kept, as vLLM does); padding after it is dropped."""
        ids = tokens.tolist()
        for position, token in enumerate(ids):
            if token in self.eos_token_ids:
                return GenerationResult(ids[: position + 1], log_probs[: position + 1].tolist(), "stop")
        finish = "length" if len(ids) >= max_new_tokens else "stop"
        return GenerationResult(ids, log_probs.tolist(), finish)

    def _mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 for image pads, 2 for video pads: what Qwen-VL's rope index uses to find media spans."""
        types = torch.zeros_like(input_ids)
        if self.image_token_id is not None:
            types[input_ids == self.image_token_id] = 1
        if self.video_token_id is not None:
            types[input_ids == self.video_token_id] = 2
        return types

    @staticmethod
    def _batch_media(per_request: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Concatenate media tensors across requests in order (the model splits them by grid)."""
        keys = {k for media in per_request for k in media}
        batched = {}
        for key in keys:
            parts = [torch.as_tensor(media[key]) for media in per_request if key in media]
            batched[key] = torch.cat([p if p.dim() else p.reshape(1) for p in parts], dim=0)
        return batched

    # ------------------------------------------------------------------ weights
    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy weights pushed by the actor into the model in place; returns how many tensors were loaded."""
        params = dict(self.model.named_parameters())
        params.update(dict(self.model.named_buffers()))
        loaded, unknown = 0, []
        for name, tensor in named_tensors:
            target = params.get(name)
            if target is None:
                unknown.append(name)
                continue
            target.copy_(tensor.to(device=target.device, dtype=target.dtype))
            loaded += 1
        if unknown:
            raise KeyError(
                f"{len(unknown)} weight(s) from the actor have no match in the rollout model "
                f"{self.model_path} (e.g. {unknown[:3]}); actor and rollout must load the same architecture"
            )
        return loaded


def default_num_threads() -> int:
    """Threads for CPU generation: OMP_NUM_THREADS when set, else every core."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
