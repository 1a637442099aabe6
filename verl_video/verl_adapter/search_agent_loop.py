"""The `video_search` agent loop: a long video seen as a coarse overview, with zoom calls that answer with frames.

Select it with `actor_rollout_ref.rollout.agent.default_agent_loop=video_search`; its settings are the `search:`
block of video_grpo.yaml (`SearchSettings`). verl 0.9.1's tool agent loop cannot answer a tool call with a
video (it raises NotImplementedError), so this loop runs the conversation itself, with verl's Continuous Token
builder rendering every turn:

- turn 1: the task's prompt and its video, decoded as an OVERVIEW (the dataset's budget, or `search.overview`),
  plus a paragraph (`search_prompt.py`, also counted by the prompt-length filter) telling the model the zoom
  syntax, the window limit and its calls;
- a model turn holding `<zoom>start, end</zoom>` (seconds of the video; the first such tag of the turn counts,
  and a turn holding `<answer>` is the final answer whatever else it holds) gets a zoom answer: the window is
  planned (`video/windows.py`, per-call budget `search.zoom`), only its frames are decoded, and
  `models/window_time.py` gives the text and metadata that put each frame at its ORIGINAL time;
- the zoom answer is a USER turn (text, then the window as a video): the chat templates of Qwen2.5-VL and
  Qwen3-VL render a video inside user content, while their tool role prints its content as a string;
- a call that cannot be served (unparsable, reversed, empty, outside the video, over the per-call budget, over
  `max_zoom_calls`, no room left in `response_length`, a clipped record) gets a text-only answer saying why,
  and is counted by reason; it never ends the rollout. Every call counts towards `max_zoom_calls`; after the
  limit one more call is answered "no calls left" and the next model turn is the last.
- the trajectory's videos are the overview then each served window, in order, in `multi_modal_data["videos"]`:
  verl's post-processing, the `hf` server and the actor all take a sample's videos as that ordered list.

Tokens: the model's turns have response_mask 1, every zoom answer 0 (out of the loss and the advantage). A zoom
answer is added only when it leaves `search.answer_tokens` of `response_length` for the model, and each model
turn may use at most what is left, so the response is never cut inside a video's tokens.

A model turn that calls a zoom is kept only up to its `</zoom>` (what it wrote after is dropped, tokens and
log-probs alike) and closed with its end token at mask 0. `extra_fields[FINAL_TURN_START]` is where the last
model turn starts in the response: the reward manager scores only that turn.

Per-trajectory facts go into `extra_fields` (keys in `ZOOM_FIELDS`); `step_metrics.zoom_metrics` logs them
as `zoom/*` each step. Not supported: SGLang (its request payload carries one video's features).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, DictConfigWrap, register
from verl.utils.profiler import simple_timer

from verl_video.models.family import video_geometry, video_token
from verl_video.models.window_time import WindowVideoInputs, window_video_inputs
from verl_video.rewards.parser import NUMBER
from verl_video.verl_adapter.agent_loop import VideoSingleTurnAgentLoop, mask_placeholder_videos
from verl_video.verl_adapter.reward_manager import FINAL_TURN_START
from verl_video.verl_adapter.rl_dataset import VideoRLDataset, video_items
from verl_video.verl_adapter.search_prompt import (
    SEARCH_AGENT_LOOP_NAME, SearchSettings, append_instructions,
)
from verl_video.verl_adapter.seeded_agent_loop import trajectory_seed
from verl_video.video.loader import VideoRequest
from verl_video.video.probe import VideoError, probe_video
from verl_video.video.settings import VideoDataSettings, settings_from_config
from verl_video.video.windows import INVALID, Window, WindowError, decode_window, plan_window

# Reasons a call is refused besides those of video/windows.py.
OVER_LIMIT = "over_limit"
NO_ROOM = "no_room"
NOT_ZOOMABLE = "not_zoomable"

ZOOM_TAG = re.compile(r"<zoom>(.*?)(?:</zoom>|$)", re.DOTALL | re.IGNORECASE)
ANSWER_TAG = re.compile(r"<answer>", re.IGNORECASE)
ZOOM_ARGS = re.compile(rf"\s*\[?\s*({NUMBER})\s*(?:,|to|\s)\s*({NUMBER})\s*\]?\s*", re.IGNORECASE)

NO_CALLS_LEFT = "zoom refused: all {calls} zoom calls are used. Answer now as asked."
REFUSED = "zoom refused: {message} Zoom calls left: {left}."
NO_ROOM_TEXT = "not enough room left in the response for this window ({needed} tokens); answer now."
NOT_ZOOMABLE_TEXT = "this video is a clip or a set of chosen frames of its file and cannot be zoomed."

# extra_fields keys, one value per trajectory.
ZOOM_CALLS = "zoom_calls"
ZOOM_USED = "zoom_used"
ZOOM_INVALID = "zoom_invalid_calls"
ZOOM_REFUSALS = "zoom_refusals"  # {reason: count}
ZOOM_VISUAL_TOKENS = "zoom_visual_tokens"
ZOOM_HIT = "zoom_window_contains_gt"  # 1/0 when a window was served and the sample has intervals, else None
ZOOM_FIELDS = (ZOOM_CALLS, ZOOM_USED, ZOOM_INVALID, ZOOM_REFUSALS, ZOOM_VISUAL_TOKENS, ZOOM_HIT)


def parse_zoom(text: str) -> tuple[float, float] | WindowError | None:
    """The (start, end) of a turn's first `<zoom>` call, a WindowError when it is unreadable, None without one."""
    if ANSWER_TAG.search(text):
        return None
    match = ZOOM_TAG.search(text)
    if match is None:
        return None
    args = ZOOM_ARGS.fullmatch(match.group(1))
    if args is None:
        shown = match.group(1).strip()[:40]
        return WindowError(INVALID, f"write a zoom call as <zoom>start, end</zoom> in seconds, got {shown!r}.")
    return float(args.group(1)), float(args.group(2))


def zoom_call(start: float, end: float) -> str:
    """A zoom call as the instructions ask for it (what `parse_zoom` reads back)."""
    return f"<zoom>{start:.1f}, {end:.1f}</zoom>"


def plan_zoom(
    part: dict | None, call: tuple[float, float], settings: VideoDataSettings, search: SearchSettings, processor: Any
) -> Window | WindowError:
    """The window of a parsed call on the video of content item `part`, or why there is none."""
    if part is None:
        return WindowError(NOT_ZOOMABLE, "this prompt has no single video to zoom into.")
    request = VideoRequest.from_item(part, settings.budget)
    if request.video_start is not None or request.video_end is not None or request.frame_indices is not None:
        return WindowError(NOT_ZOOMABLE, NOT_ZOOMABLE_TEXT)
    try:
        probe = probe_video(request.path, request.frame_rate)
    except VideoError as exc:
        return WindowError(NOT_ZOOMABLE, f"the video cannot be read ({exc}).")
    return plan_window(
        call[0], call[1], probe.duration, probe.height, probe.width, search.zoom, geometry=video_geometry(processor),
        lower_rate=search.lower_rate,
    )


def zoom_answer(part: dict, window: Window, settings: VideoDataSettings, processor: Any) -> WindowVideoInputs:
    """The window's frames, told in the original video's time for this processor's family (text and video)."""
    request = VideoRequest.from_item(part, settings.budget)
    decoded = decode_window(request.path, window, settings.decoder, request.frame_rate)
    inputs = window_video_inputs(processor, window, decoded.frames)
    return replace(inputs, text=" ".join(text for text in (window.note, inputs.text) if text))


def answer_message(text: str, video: Any = None) -> dict:
    """The user turn that answers a zoom call: its text, then the window's video if any."""
    content: list[dict] = [{"type": "text", "text": text}]
    if video is not None:
        content.append({"type": "video", "video": video})
    return {"role": "user", "content": content}


def zoom_call_end(tokenizer: Any, token_ids: list[int]) -> int | None:
    """How many leading tokens of a model turn hold it up to its first `</zoom>`; None when nothing follows
    the call but special tokens (or the turn holds no closed call)."""

    def closed(count: int) -> bool:
        match = ZOOM_TAG.search(tokenizer.decode(token_ids[:count], skip_special_tokens=True))
        return match is not None and match.group(0).lower().endswith("</zoom>")

    if not closed(len(token_ids)):
        return None
    low, high = 1, len(token_ids)  # the first prefix that closes the call: closing is monotone in the length
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if closed(middle) else (middle + 1, high)
    if not tokenizer.decode(token_ids[low:], skip_special_tokens=True):
        return None
    return low


def contains_interval(window: Window, ground_truth: Any) -> bool | None:
    """Whether `window` holds one of the ground truth's intervals whole; None when it has none."""
    timestamps = (ground_truth or {}).get("timestamps") if isinstance(ground_truth, dict) else None
    if not timestamps:
        return None
    return any(window.start <= float(s) and float(e) <= window.end for s, e in timestamps)


@dataclass
class Conversation:
    """One trajectory's running state: messages, token ids and masks, videos and zoom counters."""

    messages: list[dict]
    videos: list[Any]
    token_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    log_probs: list[float] | None = None
    calls: int = 0
    served: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    hit: bool | None = None

    def refuse(self, reason: str) -> None:
        """Count a refused call."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    def zoom_fields(self, visual_tokens: int) -> dict[str, Any]:
        """The trajectory's `zoom_*` extra fields."""
        return {
            ZOOM_CALLS: self.calls,
            ZOOM_USED: int(self.served > 0),
            ZOOM_INVALID: sum(self.refusals.values()),
            ZOOM_REFUSALS: dict(self.refusals),
            ZOOM_VISUAL_TOKENS: visual_tokens,
            ZOOM_HIT: None if self.hit is None else int(self.hit),
        }


@register(SEARCH_AGENT_LOOP_NAME)
class VideoSearchAgentLoop(VideoSingleTurnAgentLoop):
    """Multi-turn search over a long video: overview first, then zoom windows the model asks for, then its answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.search = SearchSettings.from_config(self.config)
        self.video_settings = settings_from_config(self.data_config)

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any) -> AgentLoopOutput:
        """Overview, zoom calls answered with frames, final answer; see the module docstring."""
        seed = self.request_seed(kwargs)
        # 1. the overview: the row's video items at the overview budget, and the zoom instructions
        messages = [dict(m) for m in kwargs["raw_prompt"]]
        parts = self._overview_parts(messages)
        multi_modal_data = await self.process_multi_modal_info(messages)
        videos = multi_modal_data.setdefault("videos", [])
        self._videos = videos  # windows are appended to this list: the processor kwargs follow it
        self._add_instructions(messages, videos, parts)

        # 2. the initial prompt (one video), rendered as verl's single-turn loop does
        self._assert_mm_supported(bool(videos))
        mm_inputs: dict[str, Any] = {}
        prompt_ids = await self.ct_build_initial_tokens(messages, videos=videos, mm_inputs_out=mm_inputs)
        mm_processor_output = self.build_sglang_video_payload(videos, mm_inputs)
        chat = Conversation(messages=messages, videos=videos, token_ids=list(prompt_ids))

        # 3. model turns; each zoom call gets its answer appended (mask 0) before the next turn
        metrics: dict[str, Any] = {}
        extra_fields: dict[str, Any] = {}
        request_id = uuid4().hex
        turns = 0
        for turn in range(self.search.max_zoom_calls + 2):
            left = self.response_length - len(chat.response_mask)
            if left <= 0:
                break
            params = {**sampling_params, "max_tokens": left}
            if seed is not None:
                params["seed"] = seed if turn == 0 else trajectory_seed(seed, turn, "zoom", 0)
            with simple_timer("generate_sequences", metrics):
                output = await self.server_manager.generate(
                    request_id=request_id, prompt_ids=chat.token_ids, sampling_params=params,
                    video_data=videos, mm_processor_output=mm_processor_output if len(videos) == 1 else None,
                    mm_processor_kwargs=self._get_mm_processor_kwargs(), priority=int(priority),
                )  # fmt: skip
            turns += 1
            extra_fields = extra_fields or dict(output.extra_fields)
            text = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
            call = parse_zoom(text)
            last = call is None or turn == self.search.max_zoom_calls + 1
            # The reward scores the final turn only: where it starts in the response.
            extra_fields[FINAL_TURN_START] = len(chat.response_mask)
            text = await self._merge_model_turn(chat, output, cut=not last) or text
            if last:
                break
            with simple_timer("tool_calls", metrics):
                answered = await self._answer_call(chat, text, call, kwargs)
            if not answered:
                break
        metrics.setdefault("num_preempted", -1)

        # 4. the output: prompt = the initial prompt, response = every turn after it
        response_length = len(chat.response_mask)
        response_ids = chat.token_ids[len(chat.token_ids) - response_length :]
        _, video_token_id = video_token(self.processor)
        visual_tokens = sum(1 for t in chat.token_ids if t == video_token_id)
        extra_fields.update({"turn_scores": [], "tool_rewards": []})
        extra_fields.update(chat.zoom_fields(visual_tokens))
        result = AgentLoopOutput(
            prompt_ids=chat.token_ids[: len(chat.token_ids) - response_length],
            response_ids=response_ids[: self.response_length],
            response_mask=chat.response_mask[: self.response_length],
            response_logprobs=chat.log_probs[: self.response_length] if chat.log_probs else None,
            multi_modal_data=multi_modal_data,
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
            mm_processor_output=mm_processor_output if len(videos) == 1 else None,
            num_turns=1 + turns + chat.calls,
            metrics=metrics,
            extra_fields=extra_fields,
        )
        mask_placeholder_videos(result)
        return result

    # ------------------------------------------------------------------ turn 1
    def _overview_parts(self, messages: list[dict]) -> list[dict]:
        """The video items of `messages`, copied with the overview budget (the copies replace the originals)."""
        for message in messages:
            if isinstance(message.get("content"), list):
                message["content"] = [
                    self.search.overview_item(part) if isinstance(part, dict) and part.get("type") == "video" else part
                    for part in message["content"]
                ]
        return video_items(messages)

    def _add_instructions(self, messages: list[dict], videos: list[Any], parts: list[dict]) -> None:
        """Append the zoom instructions to the last user message."""
        metadata = videos[0][1] if videos and isinstance(videos[0], tuple) else {}
        text = self.search.zoom_instructions(metadata.get("duration") or 0.0, len(videos[0][0]) if videos else 0)
        append_instructions(messages, text)
        self._zoom_source = parts[0] if len(parts) == 1 else None

    # ------------------------------------------------------------------ turns
    async def _merge_model_turn(self, chat: Conversation, output: Any, cut: bool = False) -> str | None:
        """Append a model turn's tokens (mask 1) and log-probs; with `cut`, only up to its `</zoom>`, closed by
        the turn's end token (mask 0: the model did not write it there). The kept text when it was cut, else None."""
        token_ids, model_log_probs = list(output.token_ids), output.log_probs
        end = zoom_call_end(self.tokenizer, token_ids) if cut else None
        if end is not None:
            special = set(self.tokenizer.all_special_ids)
            end_token = token_ids[-1] if token_ids[-1] in special else self.tokenizer.eos_token_id
            token_ids, model_log_probs = token_ids[:end], (model_log_probs[:end] if model_log_probs else None)
        merged, mask, log_probs = await self.ct_merge_assistant_token(
            chat.token_ids, token_ids, chat.response_mask,
            (chat.log_probs or []) if (chat.log_probs or model_log_probs) else None,
            assistant_logprobs=model_log_probs or None,
        )  # fmt: skip
        chat.token_ids, chat.response_mask = merged.token_ids, mask
        if log_probs is not None:
            chat.log_probs = log_probs
        if end is None:
            return None
        chat.token_ids, chat.response_mask = [*chat.token_ids, end_token], [*chat.response_mask, 0]
        if chat.log_probs:
            chat.log_probs = [*chat.log_probs, 0.0]
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    async def _answer_call(self, chat: Conversation, text: str, call: Any, kwargs: dict) -> bool:
        """Answer one zoom call (window or refusal) as a user turn; False when not even a refusal fits."""
        chat.messages.append({"role": "assistant", "content": text})
        chat.calls += 1
        if chat.calls > self.search.max_zoom_calls:
            chat.refuse(OVER_LIMIT)
            return await self._append_answer(chat, NO_CALLS_LEFT.format(calls=self.search.max_zoom_calls)) is None
        left = self.search.max_zoom_calls - chat.calls
        window = call if isinstance(call, WindowError) else await self.loop.run_in_executor(None, self._plan, call)
        if isinstance(window, WindowError):
            chat.refuse(window.reason)
            return await self._append_answer(chat, REFUSED.format(message=window.message, left=left)) is None
        inputs = await self.loop.run_in_executor(
            None, zoom_answer, self._zoom_source, window, self.video_settings, self.processor
        )
        needed = await self._append_answer(chat, inputs.text, inputs.video)
        if needed is None:
            chat.served += 1
            hit = contains_interval(window, (kwargs.get("reward_model") or {}).get("ground_truth"))
            chat.hit = hit if chat.hit is None else (chat.hit or bool(hit))
            return True
        chat.refuse(NO_ROOM)
        refusal = REFUSED.format(message=NO_ROOM_TEXT.format(needed=needed), left=left)
        return await self._append_answer(chat, refusal) is None

    def _plan(self, call: tuple[float, float]) -> Window | WindowError:
        """The window of a parsed call on this trajectory's video, or why there is none."""
        return plan_zoom(self._zoom_source, call, self.video_settings, self.search, self.processor)

    async def _append_answer(self, chat: Conversation, text: str, video: Any = None) -> int | None:
        """Append a user turn (text, then the video if any) with mask 0; None, or its tokens when it did not fit
        (it must leave `search.answer_tokens` of the response for the model)."""
        previous = list(chat.messages)
        updated = [*previous, answer_message(text, video)]
        merged, mask, log_probs = await self.ct_merge_context_msg(
            previous, updated, chat.token_ids, chat.response_mask, chat.log_probs or None
        )
        if len(mask) + self.search.answer_tokens > self.response_length:
            return len(mask) - len(chat.response_mask)
        chat.messages, chat.token_ids, chat.response_mask = updated, merged.token_ids, mask
        if chat.log_probs:
            chat.log_probs = log_probs or []
        if video is not None:
            chat.videos.append(video)
        return None


def standalone_search_loop(
    config: Any, server_manager: Any, tokenizer: Any, processor: Any, hf_model_type: str | None = None
) -> VideoSearchAgentLoop:
    """The loop of one trajectory outside verl's workers (`eval`, `select`), built as verl's agent loop worker
    builds it: the trainer config, our dataset class, its `data` section; call it inside a running event loop."""
    return VideoSearchAgentLoop(
        trainer_config=DictConfigWrap(config), server_manager=server_manager, tokenizer=tokenizer,
        processor=processor, dataset_cls=VideoRLDataset, data_config=DictConfigWrap(config.data),
        hf_model_type=hf_model_type,
    )  # fmt: skip
