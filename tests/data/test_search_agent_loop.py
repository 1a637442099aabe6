"""The `video_search` agent loop: overview, zoom calls answered with frames, final answer; bad calls never crash.

Everything is real (tiny Qwen3-VL tokenizer and processor, verl's Continuous Token builder, our dataset's
decoder, the window planner) except the policy: a scripted server answers each turn with fixed text. That
server also checks each request the way the `hf` engine does (its placeholder count against its videos), and
the finished trajectory goes through verl's own post-processing (`_compute_multi_modal_inputs`), which is what
the actor trains on.
"""

from __future__ import annotations

import asyncio
import os
import re
import types

import pytest
import torch
from hydra import compose, initialize_config_dir
from synthetic_video import write_video
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, DictConfigWrap, _agent_loop_registry
from verl.workers.rollout.replica import TokenOutput

from verl_video.models.family import family_of_processor, video_geometry, video_token
from verl_video.verl_adapter.driver import CONFIG_DIR
from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine
from verl_video.pipeline.issues import NoUsableData
from verl_video.verl_adapter.rl_dataset import VideoRLDataset
from verl_video.verl_adapter.search_agent_loop import (
    NO_ROOM, NOT_ZOOMABLE, OVER_LIMIT, SEARCH_AGENT_LOOP_NAME, VideoSearchAgentLoop, parse_zoom,
)
from verl_video.verl_adapter.step_metrics import video_metrics, zoom_trajectory_metrics
from verl_video.video.loader import VideoRequest
from verl_video.video.settings import VideoBudget
from verl_video.video.windows import EMPTY, INVALID, OUTSIDE, OVER_BUDGET, REVERSED, WindowError

DURATION = 60.0
GROUND_TRUTH = {"timestamps": [[13.0, 17.0]], "duration": DURATION}
STAMP = re.compile(r"<(\d+(?:\.\d+)?) seconds>")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """60 s at 5 fps whose frames show their time as a barcode."""
    return write_video(tmp_path_factory.mktemp("search") / "long.mp4", [(DURATION, 5)])


class ScriptedServer:
    """Answers turn i with script[i]; checks each request as the hf engine would and keeps what it was sent."""

    def __init__(self, processor, script: list[str]) -> None:
        self.processor, self.script, self.requests = processor, list(script), []
        self.engine = object.__new__(HFEngine)
        self.engine.processor, self.engine.model_path = processor, "tiny"
        self.engine.video_token_id, self.engine.image_token_id = video_token(processor)[1], None

    async def generate(self, request_id, *, prompt_ids, sampling_params, video_data=None, **kwargs):
        request = GenerationRequest(list(prompt_ids), videos=list(video_data or []))
        media = self.engine._media_inputs(request)  # raises when pads and videos disagree
        self.requests.append((list(prompt_ids), dict(sampling_params), media))
        tokenizer = self.processor.tokenizer
        ids = tokenizer.encode(self.script.pop(0), add_special_tokens=False)
        ids.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), stop_reason="completed", extra_fields={})


def trainer_config(*overrides: str):
    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        return compose(
            config_name="video_grpo",
            overrides=[
                "actor_rollout_ref.rollout.name=hf", "data.max_response_length=3000", "data.video.fps=0.5",
                "data.video.max_frames=8", *overrides,
            ],
        )  # fmt: skip


def run_loop(processor, path, script: list[str], *overrides: str, clip: bool = False, prompt=None, server=None):
    """One trajectory of the search loop with a scripted policy (`server`, by default a ScriptedServer of
    `script`): (output, server, loop)."""
    cfg = trainer_config(*overrides)
    request = VideoRequest(str(path), VideoBudget(fps=0.5, max_frames=8), video_start=1.0 if clip else None)
    prompt = prompt or [{"role": "user", "content": [
        {"type": "video", **request.to_item()},
        {"type": "text", "text": "When does the bar change? Answer as <answer>start to end</answer>."},
    ]}]  # fmt: skip
    server = server or ScriptedServer(processor, script)

    async def go():
        loop = VideoSearchAgentLoop(
            trainer_config=DictConfigWrap(cfg), server_manager=server, tokenizer=processor.tokenizer,
            processor=processor, dataset_cls=VideoRLDataset, data_config=DictConfigWrap(cfg.data),
            hf_model_type=family_of_processor(processor).model_type,
        )  # fmt: skip
        output = await loop.run(
            {"temperature": 1.0}, raw_prompt=prompt, reward_model={"ground_truth": GROUND_TRUTH},
            index=3, global_steps=1, session_id=0,
        )  # fmt: skip
        return output, loop

    output, loop = asyncio.run(go())
    return output, server, loop


def actor_inputs(processor, output):
    """What verl's post-processing hands the actor for this trajectory (ids and processor outputs)."""
    worker = types.SimpleNamespace(
        processor=processor, tokenizer=processor.tokenizer, _get_mm_processor_kwargs=lambda audios=None: {}
    )
    ids = torch.tensor(output.prompt_ids + output.response_ids).unsqueeze(0)
    return ids, AgentLoopWorker._compute_multi_modal_inputs(worker, output, ids)


def test_one_valid_zoom_shows_a_second_video_at_its_original_times(tiny_qwen3_processor, long_video):
    processor = tiny_qwen3_processor
    output, server, _ = run_loop(
        processor, long_video, ["<think>look closer</think><zoom>12.5, 18.0</zoom>", "<answer>13.00 to 17.00</answer>"]
    )
    videos = output.multi_modal_data["videos"]
    assert len(videos) == 2 and len(server.requests) == 2
    # The second request carried both videos, and the hf engine's check accepted its placeholders.
    assert server.requests[1][2]["video_grid_thw"].shape[0] == 2
    # The window's frames are at original times: metadata on a ms clock, first frame at the window start.
    window_frames = videos[1][1]["frames_indices"]
    assert window_frames[0] == 12500 and all(12500 <= i < 18000 for i in window_frames)
    # The timestamps written in the tool turn are the window's (original) times, not times from 0.
    text = processor.tokenizer.decode(output.response_ids)
    zoom_turn = text[text.index("Frames from") :]
    stamps = [float(s) for s in STAMP.findall(zoom_turn)]
    assert stamps and all(12.5 <= s <= 18.0 for s in stamps) and "Frames from 12.5 s to 18.0 s" in zoom_turn
    # Only the model's tokens train: every token of the zoom answer (its frames included) has mask 0.
    mask = torch.tensor(output.response_mask)
    ids = torch.tensor(output.response_ids)
    pad = video_token(processor)[1]
    assert (mask[ids == pad] == 0).all() and int((ids == pad).sum()) > 0
    model_text = processor.tokenizer.decode(ids[mask == 1].tolist())
    assert "<zoom>12.5, 18.0</zoom>" in model_text and "<answer>13.00 to 17.00</answer>" in model_text
    assert "Frames from" not in model_text
    # verl's post-processing gives the actor one grid per video, matching the placeholders.
    all_ids, inputs = actor_inputs(processor, output)
    grids = inputs["video_grid_thw"]
    merge = video_geometry(processor).merge_size
    assert grids.shape[0] == 2 and int((all_ids == pad).sum()) == int(grids.prod(dim=-1).sum()) // merge**2
    fields = output.extra_fields
    assert (fields["zoom_calls"], fields["zoom_used"], fields["zoom_invalid_calls"]) == (1, 1, 0)
    assert fields["zoom_window_contains_gt"] == 1 and fields["zoom_visual_tokens"] == int((all_ids == pad).sum())


def test_without_a_zoom_the_trajectory_is_one_turn_with_the_overview(tiny_qwen3_processor, long_video):
    output, server, _ = run_loop(tiny_qwen3_processor, long_video, ["<answer>1.00 to 2.00</answer>"])
    assert len(output.multi_modal_data["videos"]) == 1 and len(server.requests) == 1
    assert all(m == 1 for m in output.response_mask)
    assert output.extra_fields["zoom_used"] == 0 and output.extra_fields["zoom_window_contains_gt"] is None


@pytest.mark.parametrize(
    "call, reason, says",
    [
        ("<zoom>soon</zoom>", INVALID, "<zoom>start, end</zoom>"),
        ("<zoom>20, 10</zoom>", REVERSED, "ends before it starts"),
        ("<zoom>5.01, 5.02</zoom>", EMPTY, "is empty"),
        ("<zoom>70, 80</zoom>", OUTSIDE, "lies outside the video, which lasts"),
        ("<zoom>0, 40</zoom>", OVER_BUDGET, "too long"),
    ],
)
def test_each_bad_call_gets_its_message_and_is_counted(tiny_qwen3_processor, long_video, call, reason, says):
    output, _, _ = run_loop(tiny_qwen3_processor, long_video, [call, "<answer>1.00 to 2.00</answer>"])
    text = tiny_qwen3_processor.tokenizer.decode(output.response_ids)
    assert "zoom refused:" in text and says in text and "Zoom calls left: 1" in text
    assert len(output.multi_modal_data["videos"]) == 1
    assert output.extra_fields["zoom_refusals"] == {reason: 1} and output.extra_fields["zoom_invalid_calls"] == 1
    assert output.extra_fields["zoom_calls"] == 1 and output.extra_fields["zoom_used"] == 0


def test_a_long_window_is_shown_at_a_lower_rate_when_the_run_says_so(tiny_qwen3_processor, long_video):
    """search.long_windows=lower_rate: the 40 s call the default refuses is served, its 16 frames spread over it."""
    processor = tiny_qwen3_processor
    script = ["<zoom>0, 40</zoom>", "<answer>13.00 to 17.00</answer>"]
    output, _, _ = run_loop(processor, long_video, script, "search.long_windows=lower_rate")
    assert output.extra_fields["zoom_refusals"] == {} and output.extra_fields["zoom_used"] == 1
    frames = output.multi_modal_data["videos"][1][1]["frames_indices"]
    assert len(frames) == 16 and frames[0] == 0 and 30000 < frames[-1] < 40000  # 0.4 fps where 2 fps was asked
    stamps = [float(s) for s in STAMP.findall(processor.tokenizer.decode(output.response_ids))]
    assert len(stamps) == 8 and stamps[-1] > 30.0
    # The first turn tells the model what a long window gets; the default run says it is refused.
    prompt = processor.tokenizer.decode(output.prompt_ids)
    assert "a window longer than 8 s is shown at a lower rate" in prompt
    refused, _, _ = run_loop(processor, long_video, script)
    assert "so at most 8 s per window" in processor.tokenizer.decode(refused.prompt_ids)


def test_the_call_limit_is_enforced(tiny_qwen3_processor, long_video):
    script = ["<zoom>1, 4</zoom>", "<zoom>30, 33</zoom>", "<zoom>40, 43</zoom>", "<zoom>50, 53</zoom>", "never sent"]
    output, server, _ = run_loop(tiny_qwen3_processor, long_video, script, "search.max_zoom_calls=2")
    # Two windows served, the third call told no calls are left, the fourth turn is the last.
    assert len(output.multi_modal_data["videos"]) == 3 and len(server.requests) == 4
    assert "all 2 zoom calls are used" in tiny_qwen3_processor.tokenizer.decode(output.response_ids)
    assert output.extra_fields["zoom_refusals"] == {OVER_LIMIT: 1} and output.extra_fields["zoom_calls"] == 3
    assert output.extra_fields["zoom_window_contains_gt"] == 0  # none of the windows held [13, 17]


def test_a_window_that_leaves_no_room_to_answer_is_refused(tiny_qwen3_processor, long_video):
    output, server, _ = run_loop(
        tiny_qwen3_processor, long_video, ["<zoom>12.5, 18.0</zoom>", "<answer>13.00 to 17.00</answer>"],
        "data.max_response_length=200",
    )  # fmt: skip
    assert len(output.multi_modal_data["videos"]) == 1
    assert output.extra_fields["zoom_refusals"] == {NO_ROOM: 1}
    assert len(output.response_ids) <= 200 and server.requests[1][1]["max_tokens"] < 200


def test_a_clipped_record_cannot_be_zoomed(tiny_qwen3_processor, long_video):
    output, _, _ = run_loop(
        tiny_qwen3_processor, long_video, ["<zoom>2, 5</zoom>", "<answer>1.00 to 2.00</answer>"], clip=True
    )
    assert output.extra_fields["zoom_refusals"] == {NOT_ZOOMABLE: 1}


def test_parse_zoom():
    assert parse_zoom("<think>x</think><zoom>12.5, 18.0</zoom>") == (12.5, 18.0)
    assert parse_zoom("<zoom>[3 to 7]</zoom> and more") == (3.0, 7.0)
    assert parse_zoom("<zoom> 1.5 2 </zoom>") == (1.5, 2.0)
    assert isinstance(parse_zoom("<zoom>1.5"), WindowError)  # unclosed: an attempted call, refused
    assert parse_zoom("<answer>1 to 2</answer>") is None
    assert parse_zoom("<zoom>1, 2</zoom><answer>1 to 2</answer>") is None  # an answer ends the search


def test_zoom_metrics_average_over_trajectories():
    rows = [
        {"zoom_calls": 2, "zoom_used": 1, "zoom_invalid_calls": 1, "zoom_refusals": {"outside": 1},
         "zoom_visual_tokens": 100, "zoom_window_contains_gt": 1},
        {"zoom_calls": 0, "zoom_used": 0, "zoom_invalid_calls": 0, "zoom_refusals": {},
         "zoom_visual_tokens": 50, "zoom_window_contains_gt": None},
        {"video_decode_failed": 1},  # a single-turn trajectory carries no zoom facts
    ]  # fmt: skip
    metrics = zoom_trajectory_metrics(rows)
    assert metrics == {
        "zoom/calls": 1.0, "zoom/used": 0.5, "zoom/invalid_calls": 0.5, "zoom/visual_tokens": 75.0,
        "zoom/refused/outside": 0.5, "zoom/window_contains_gt": 1.0,
    }  # fmt: skip
    assert zoom_trajectory_metrics([{"video_decode_failed": 1}]) == {}


def test_a_zoomed_trajectory_has_no_placeholder_grid_mismatch(tiny_qwen3_processor, long_video):
    """`video/*` counts the window's placeholders, which are in the response, against the sample's grids."""
    processor = tiny_qwen3_processor
    output, _, _ = run_loop(processor, long_video, ["<zoom>12.5, 18.0</zoom>", "<answer>13.00 to 17.00</answer>"])
    _, inputs = actor_inputs(processor, output)
    data = {
        "prompts": [torch.tensor(output.prompt_ids)], "responses": [torch.tensor(output.response_ids)],
        "multi_modal_inputs": [inputs],
    }  # fmt: skip
    tq = types.SimpleNamespace(kv_batch_get=lambda keys, partition_id, select_fields: {f: data[f] for f in select_fields})
    batch = types.SimpleNamespace(keys=["u_0_0"], partition_id="train", tags=[{}])
    metrics = video_metrics(tq, batch, processor)
    pad = video_token(processor)[1]
    assert metrics["video/placeholder_grid_mismatches"] == 0.0
    assert metrics["video/tokens_per_sample"] == output.extra_fields["zoom_visual_tokens"] > (
        output.prompt_ids.count(pad)
    )


def test_the_search_loop_is_registered_and_selectable():
    assert SEARCH_AGENT_LOOP_NAME in _agent_loop_registry
    cfg = trainer_config(f"actor_rollout_ref.rollout.agent.default_agent_loop={SEARCH_AGENT_LOOP_NAME}")
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == SEARCH_AGENT_LOOP_NAME


def test_text_after_a_zoom_call_is_cut_from_the_turn(tiny_qwen3_processor, long_video):
    tokenizer = tiny_qwen3_processor.tokenizer
    output, server, _ = run_loop(
        tiny_qwen3_processor, long_video,
        ["<zoom>12.5, 18.0</zoom> I guess the change is near 15 s.", "<answer>13.00 to 17.00</answer>"],
    )  # fmt: skip
    assert len(output.multi_modal_data["videos"]) == 2  # the call was still served
    ids, mask = torch.tensor(output.response_ids), torch.tensor(output.response_mask)
    assert len(output.response_ids) == len(output.response_mask) == len(output.response_logprobs)
    # Neither the response nor what the model was sent next holds the text written after </zoom>.
    assert "I guess" not in tokenizer.decode(output.response_ids)
    assert "I guess" not in tokenizer.decode(server.requests[1][0])
    # The kept turn is the call, closed by its end token at mask 0 (the model did not write it there).
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    first_end = int((ids == end).nonzero()[0])
    assert tokenizer.decode(ids[:first_end][mask[:first_end] == 1].tolist()) == "<zoom>12.5, 18.0</zoom>"
    assert mask[first_end] == 0 and output.response_logprobs[first_end] == 0.0


def test_a_zoom_turn_that_ends_at_its_call_keeps_its_own_end_token(tiny_qwen3_processor, long_video):
    output, _, _ = run_loop(
        tiny_qwen3_processor, long_video, ["<zoom>12.5, 18.0</zoom>", "<answer>13.00 to 17.00</answer>"]
    )
    ids = output.response_ids
    first_end = ids.index(tiny_qwen3_processor.tokenizer.convert_tokens_to_ids("<|im_end|>"))
    assert output.response_mask[first_end] == 1 and output.response_logprobs[first_end] == -0.5


def reward_of(processor, output, ground_truth=GROUND_TRUTH) -> dict:
    """The `video` reward manager's result for a trajectory, handed over as verl's agent loop scores it."""
    import numpy as np
    from omegaconf import OmegaConf
    from verl import DataProto

    from verl_video.verl_adapter.reward_manager import VideoRewardManager

    prompt, response = torch.tensor([output.prompt_ids]), torch.tensor([output.response_ids])
    data = DataProto.from_dict(
        tensors={"prompts": prompt, "responses": response,
                 "attention_mask": torch.ones(1, prompt.shape[1] + response.shape[1], dtype=torch.long)},
        non_tensors={"data_source": np.array(["charades"], dtype=object),
                     "reward_model": np.array([{"ground_truth": ground_truth}], dtype=object),
                     "extra_info": np.array([{"task": "tvg", "duration": DURATION}], dtype=object),
                     "tool_extra_fields": np.array([output.extra_fields], dtype=object)},
    )  # fmt: skip
    config = OmegaConf.create({"reward": {"reward_kwargs": {}, "custom_reward_function": {"path": None}}})
    return asyncio.run(VideoRewardManager(config, processor.tokenizer).run_single(data))


def test_a_zoomed_trajectory_is_scored_on_its_final_answer(tiny_qwen3_processor, long_video):
    answer = "<think>the bar changes</think><answer>13.00 to 17.00</answer>"
    zoomed, _, _ = run_loop(tiny_qwen3_processor, long_video, ["<think>look</think><zoom>12.5, 18.0</zoom>", answer])
    direct, _, _ = run_loop(tiny_qwen3_processor, long_video, [answer])
    assert len(zoomed.multi_modal_data["videos"]) == 2
    scored = reward_of(tiny_qwen3_processor, zoomed)
    assert scored["reward_extra_info"]["format"] == 1.0
    assert scored == reward_of(tiny_qwen3_processor, direct)


def test_the_prompt_length_filter_counts_what_the_search_loop_sends(tiny_qwen3_processor, long_video, tmp_path):
    import json

    import yaml

    record = {"id": "a", "video": long_video.name, "query": "the bar changes", "timestamps": [[13.0, 17.0]],
              "duration": DURATION}  # fmt: skip
    (tmp_path / "train.jsonl").write_text(json.dumps(record) + "\n")
    entry = {"name": "long", "json_path": "train.jsonl", "data_folder": str(long_video.parent)}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"datasets": [entry]}))

    def dataset(*overrides: str) -> VideoRLDataset:
        cfg = trainer_config(*overrides)
        processor = tiny_qwen3_processor
        return VideoRLDataset(str(tmp_path / "train.yaml"), processor.tokenizer, cfg.data, processor)

    search_loop = f"actor_rollout_ref.rollout.agent.default_agent_loop={SEARCH_AGENT_LOOP_NAME}"
    # A bigger overview than the dataset's budget: the filter must count the overview the loop shows.
    searched = dataset(search_loop, "search.overview.max_frames=12")
    output, _, _ = run_loop(
        tiny_qwen3_processor, long_video, ["<answer>1.00 to 2.00</answer>"], "search.overview.max_frames=12",
        prompt=searched[0]["raw_prompt"],
    )  # fmt: skip
    estimate = searched.estimate_prompt_length(searched.dataframe.items[0])
    assert estimate == len(output.prompt_ids)
    # The single-turn loop's prompt has neither: the filter counts them only when the search loop is selected.
    single = dataset()
    assert single.estimate_prompt_length(single.dataframe.items[0]) < estimate
    # A prompt one token over the limit is dropped at start-up, not sent into verl's prompt-length error.
    with pytest.raises(NoUsableData, match="prompt longer than data.max_prompt_length"):
        dataset(search_loop, "search.overview.max_frames=12", f"data.max_prompt_length={estimate - 1}")
