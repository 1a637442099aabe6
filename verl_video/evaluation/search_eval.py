"""`eval` and `select` through the `video_search` agent loop: the trainer's own loop, run in this process.

When the run's agent loop is `video_search` (`RunSettings.search`), every answer is one trajectory of
`VideoSearchAgentLoop` (verl_adapter/search_agent_loop.py), the class training runs, built with the run's
composed config (the flags applied), the engine's tokenizer and processor, and as its server manager the hf
rollout server's `HFServer` serving this process's `HFEngine` (its batching and verl's `TokenOutput`). The loop
gets each sample as the trainer's dataset hands it over: the row of `pipeline.items.build_row`, with the
`raw_prompt` verl's RLHFDataset builds from it (`rl_dataset.loop_inputs`). A batch's trajectories run
concurrently on one event loop, so the server batches their turns. The text graded is the final model turn,
by the reward manager's rule (`final_turn_text`); each answer carries the loop's zoom facts (`TRAJECTORY_FIELDS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_video.evaluation.backends import GenerationOptions
from verl_video.evaluation.eval_set import EvalSample
from verl_video.evaluation.predictions import VISUAL_TOKENS
from verl_video.pipeline.items import build_row, for_model, seen_duration
from verl_video.pipeline.run_settings import RunSettings
# The plugin first, as verl's processes load it: it imports the agent loops in the order their imports need.
import verl_video.verl_adapter.plugin  # noqa: F401, I001
from verl_video.verl_adapter.agent_loop import DECODE_FAILED_FIELD
from verl_video.verl_adapter.hf_engine import HFEngine
from verl_video.verl_adapter.hf_server import HFServer
from verl_video.verl_adapter.reward_manager import final_turn_text
from verl_video.verl_adapter.rl_dataset import loop_inputs
from verl_video.verl_adapter.search_agent_loop import ZOOM_FIELDS, ZOOM_VISUAL_TOKENS, standalone_search_loop

TRAJECTORY_FIELDS = (*ZOOM_FIELDS, VISUAL_TOKENS)


@dataclass
class Trajectory:
    """One answer of the loop: the graded text (its final turn), its prediction-line fields and the loop's output."""

    text: str
    fields: dict[str, Any]
    output: Any  # verl's AgentLoopOutput


def search_config(settings: RunSettings) -> DictConfig:
    """The run's trainer config with the command's flags in place (video budget, decoder, template, response
    length, seed) and the hf rollout, which is what serves the loop here."""
    if settings.config is None:
        raise ValueError(f"{settings.source}: the settings carry no trainer config to build the search loop from")
    config = OmegaConf.create(settings.config)
    video = settings.video.as_section()
    config.data.video = OmegaConf.merge(config.data.get("video") or {}, video)
    rollout = config.actor_rollout_ref.rollout
    rollout.name = "hf"  # verl's vLLM server is not what serves this process's engine
    if settings.max_response_length is not None:
        config.data.max_response_length = rollout.response_length = int(settings.max_response_length)
    config.trainer.seed = rollout.seed = int(settings.seed)
    return config


def trajectory_fields(output: Any) -> dict[str, Any]:
    """The prediction-line fields of a trajectory: the loop's zoom facts, and its visual tokens in all."""
    fields = {name: output.extra_fields.get(name) for name in ZOOM_FIELDS}
    fields[VISUAL_TOKENS] = output.extra_fields.get(ZOOM_VISUAL_TOKENS)
    return fields


class SearchBackend:
    """Answers samples with `VideoSearchAgentLoop` over an in-process `HFEngine` (CPU or GPU)."""

    def __init__(self, model_path: str, options: GenerationOptions, config: DictConfig, device: str = "cpu",
                 dtype: str = "float32") -> None:
        self.options, self.config = options, config
        self.device, self.dtype = device, dtype
        self.engine = HFEngine(model_path, device=device, dtype=dtype, seed=options.seed)
        if self.engine.processor is None:
            raise ValueError(f"{model_path}: no multimodal processor found; the search loop needs a video model")
        self.processor = self.engine.processor
        self.hf_model_type = getattr(self.engine.model.config, "model_type", None)

    def describe(self) -> dict:
        """Backend name, device, dtype, sampling settings and the loop's search settings."""
        search = OmegaConf.to_container(self.config.get("search") or {}, resolve=True)
        return {"backend": "hf", "agent_loop": "video_search", "search": search, "device": self.device,
                "dtype": self.dtype, **asdict(self.options)}

    def answer(self, samples: Sequence[EvalSample], temperatures: Sequence[float] | None = None
               ) -> list[list[Trajectory] | str]:
        """For each sample, one trajectory per temperature (default: the options'), or the error that stopped it."""
        temperatures = list(temperatures) if temperatures is not None else [self.options.temperature]
        return asyncio.run(self._answer(samples, temperatures))

    async def _answer(self, samples: Sequence[EvalSample], temperatures: list[float]) -> list[list[Trajectory] | str]:
        # One server per event loop: its queue and batching task belong to the loop they run on.
        server = HFServer(self.config.actor_rollout_ref.rollout, None, engine=self.engine)
        rows = [self._row(sample) for sample in samples]
        runs = [[self._trajectory(server, row, t, session) for session, t in enumerate(temperatures)]
                if isinstance(row, dict) else [] for row in rows]
        done = await asyncio.gather(*(asyncio.gather(*jobs, return_exceptions=True) for jobs in runs))
        results: list[list[Trajectory] | str] = []
        for row, trajectories in zip(rows, done):
            failed = next((t for t in trajectories if isinstance(t, BaseException)), None)
            if isinstance(row, str):
                results.append(row)
            elif failed is not None:
                results.append(f"{type(failed).__name__}: {failed}")
            elif any(t.output.extra_fields.get(DECODE_FAILED_FIELD) for t in trajectories):
                results.append("VideoError: the video failed to decode in the agent loop (placeholder frames)")
            else:
                results.append(list(trajectories))
        return results

    def _row(self, sample: EvalSample) -> dict | str:
        """The loop's inputs for `sample` as the trainer's dataset gives them, or why its video cannot be read."""
        try:
            [item] = for_model([sample.item], self.processor)
            duration = seen_duration(item)
        except Exception as exc:  # as in single-pass eval: one bad video is recorded and retried, never fatal
            return f"{type(exc).__name__}: {exc}"
        if sample.record.duration is None:
            # As in training: without an annotated duration the model is told the length it sees.
            sample.item = replace(sample.item, record=replace(sample.record, duration=duration))
        row = loop_inputs(build_row(item, 0, duration), self.processor, self.config.data)
        # The sample id seeds each trajectory (with its session): the same answers whatever the batch.
        return {**row, "index": sample.id, "global_steps": 0}

    async def _trajectory(self, server: HFServer, row: dict, temperature: float, session: int) -> Trajectory:
        """One run of the trainer's search loop on `row`."""
        loop = standalone_search_loop(self.config, server, self.engine.tokenizer, self.processor, self.hf_model_type)
        params = {"temperature": temperature, "top_p": self.options.top_p, "top_k": -1, "repetition_penalty": 1.0}
        output = await loop.run(params, **{**row, "session_id": session})
        text = final_turn_text(self.engine.tokenizer, output.response_ids, len(output.response_ids),
                               output.extra_fields)
        return Trajectory(text, trajectory_fields(output), output)
