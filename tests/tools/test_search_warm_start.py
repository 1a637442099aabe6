"""The search warm start trains what the `video_search` loop will see: for the same record and the same scripted
zoom, the trace's tokens equal the loop's, its loss mask is the loop's response mask, both videos reach the model
with their grids, and a few steps of the hand-written loop lower the loss. verl's SFT trainer gets the same
traces (VideoSearchSFTDataset) as the hand-written loop and starts from the same loss."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_long_demo_data import SEARCH, experiment, search_trajectory

from verl_video.pipeline.items import load_items
from verl_video.tools.long_demo_data import generate_long
from verl_video.verl_adapter.search_prompt import SearchSettings
from verl_video.verl_adapter.search_sft import answer_prompt, encode_traces, load_traces, scripted_window, stamped_window
from verl_video.video.settings import settings_from_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory) -> Path:
    """3 training long videos."""
    out = tmp_path_factory.mktemp("searchsft") / "data"
    generate_long(out, num_train=3, num_val=1, seed=0)
    return out


@pytest.fixture(scope="module", params=("qwen3_vl", "qwen2_5_vl"))
def family(request) -> str:
    """Each family the tiny model is built in."""
    return request.param


@pytest.fixture(scope="module")
def processor(family: str):
    """The tiny model's processor of the family."""
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    return build_processor(build_tokenizer(), family)


def traces_of(processor, long_dir: Path, cfg):
    """Search traces of the training split under the experiment's settings (the answer without reasoning)."""
    settings = settings_from_config(cfg.data)
    return load_traces(processor, str(long_dir / "train.yaml"), settings, SearchSettings.from_config(cfg),
                       target=lambda item: "<think>look</think><answer>1.00 to 2.00</answer>")  # fmt: skip


def test_scripted_window_holds_the_event_on_the_grid() -> None:
    rng = random.Random(0)
    starts = set()
    for _ in range(200):
        a, b = scripted_window((100.5, 104.0), 287.0, 8.0, rng)
        assert a <= 100.5 and 104.0 <= b and b - a == pytest.approx(8.0) and round(a, 1) == a
        starts.add(a)
    assert len(starts) > 10  # the offset varies
    assert scripted_window((283.0, 287.0), 287.0, 8.0, rng) == (279.0, 287.0)  # stays inside the video
    a, b = scripted_window((10.0, 30.0), 287.0, 8.0, rng)  # longer than a window: centred on it
    assert (a, b) == (16.0, 24.0)


def test_stamped_window_runs_between_the_stamps_around_the_event() -> None:
    stamps = [4.7, 14.1, 23.4, 32.8, 42.2]
    assert stamped_window((20.0, 24.0), stamps, 47.0, 0.0) == (14.1, 32.8)
    assert stamped_window((20.0, 24.0), stamps, 47.0, 6.0) == (4.7, 32.8)  # 14.1 is within 6 s of the start
    assert stamped_window((3.0, 40.0), stamps, 47.0, 6.0) == (0.0, 47.0)  # no stamp outside: the video's ends


@pytest.mark.parametrize("run", (SEARCH, "experiment=tiny_tvg_search_demo"))
def test_the_trace_is_what_the_search_loop_builds(family, processor, long_dir, run) -> None:
    """Run the loop with a policy scripted to write the trace's zoom and answer: same tokens, same mask, same
    videos; the mask covers the two assistant turns and nothing else; two video grids in order. The demo's
    settings script the window from the overview's stamps and serve it at a lower rate when it is long."""
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset

    cfg = experiment(run)
    trace = traces_of(processor, long_dir, cfg)[0]
    batch = encode_traces(processor, [trace])
    zoom, answer = trace.messages[-3]["content"], trace.messages[-1]["content"]
    assert zoom.startswith("<zoom>") and answer.startswith("<think>")

    dataset = VideoRLDataset(str(long_dir / "train.yaml"), processor.tokenizer, cfg.data, processor)
    row = dataset[0]
    assert dataset.dataframe.items[0].record.origin == trace.item.record.origin
    output = search_trajectory(cfg, family, processor, row, [zoom, answer])
    assert output.extra_fields["zoom_refusals"] == {} and output.extra_fields["zoom_window_contains_gt"] == 1
    loop_ids = list(output.prompt_ids) + list(output.response_ids)
    ours = batch["input_ids"][0].tolist()
    first = next((i for i, (a, b) in enumerate(zip(ours, loop_ids)) if a != b), min(len(ours), len(loop_ids)))
    assert ours == loop_ids, (first, len(ours), len(loop_ids), processor.tokenizer.decode(ours[first - 5 : first + 5]),
                              processor.tokenizer.decode(loop_ids[first - 5 : first + 5]))
    expected_mask = [0] * len(output.prompt_ids) + list(output.response_mask)
    assert batch["loss_mask"][0].tolist() == expected_mask
    tokenizer = processor.tokenizer
    trained = tokenizer.decode([t for t, m in zip(loop_ids, expected_mask) if m])
    assert trained == f"{zoom}<|im_end|>{answer}<|im_end|>"
    # The same videos: frames and the metadata that places them in time.
    loop_videos = output.multi_modal_data["videos"]
    assert len(loop_videos) == len(trace.videos) == 2
    for (frames, meta), (loop_frames, loop_meta) in zip(trace.videos, loop_videos):
        assert torch.equal(frames, loop_frames) and meta == loop_meta
    grids = batch["video_grid_thw"]
    assert grids.shape == (2, 3)  # the overview's grid, then the window's
    merge = processor.video_processor.merge_size ** 2
    pads = int((batch["input_ids"][0] == tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum())
    assert pads == int(grids.prod(-1).sum()) // merge


def test_the_answer_prompt_is_the_trace_up_to_its_answer(family, processor, long_dir) -> None:
    """The oracle-window benchmark's prompt: the trace's tokens (both videos) up to where its final answer starts."""
    trace = traces_of(processor, long_dir, experiment("experiment=tiny_tvg_search_demo"))[0]
    whole = encode_traces(processor, [trace])
    prompt = answer_prompt(processor, trace)
    length = prompt["input_ids"].shape[1]
    assert whole["input_ids"][0, :length].tolist() == prompt["input_ids"][0].tolist()
    assert whole["loss_mask"][0, :length].sum() < whole["loss_mask"][0].sum()  # the answer itself lies after it
    answer = processor.tokenizer.decode(whole["input_ids"][0, length:])
    assert answer.startswith(trace.messages[-1]["content"]) and torch.equal(whole["video_grid_thw"], prompt["video_grid_thw"])


def test_building_the_traces_shows_its_progress(processor, long_dir, capsys) -> None:
    """Traces decode each record's overview and window before the first step: a bar counts them (minutes for
    thousands of long videos)."""
    traces = traces_of(processor, long_dir, experiment("experiment=tiny_tvg_search_demo"))
    shown = capsys.readouterr().err
    # A bar named for the work, counting the records (tqdm refreshes at most every 0.1 s: no step is certain).
    assert re.search(rf"search traces: +\d+%\|[^|]*\| \d/{len(traces)} \[", shown), shown[-500:]


def test_the_overview_rule_zooms_between_time_stamps_the_model_was_shown(long_dir) -> None:
    """experiment=tiny_tvg_search_demo: each scripted call's numbers are `<t seconds>` stamps of the overview as
    written in the trace's first turn (or the video's ends), the last at least 6 s before the event and the first
    at least 6 s after it."""
    from verl_video.tools.tiny_model import build_processor, build_tokenizer

    processor = build_processor(build_tokenizer(), "qwen3_vl")
    traces = traces_of(processor, long_dir, experiment("experiment=tiny_tvg_search_demo"))
    assert len(traces) == 3
    for trace in traces:
        text = processor.tokenizer.decode(encode_traces(processor, [trace])["input_ids"][0])
        text = text[: text.index("<zoom>")]  # the first turn: the overview and the instructions
        stamps = sorted({float(t) for t in re.findall(r"<(\d+\.\d) seconds>", text)})
        (start, end), (a, b) = trace.item.record.timestamps[0], trace.zoom
        duration = trace.videos[0][1]["duration"]
        assert len(stamps) == len(trace.videos[0][0]) // 2 and a in (0.0, *stamps) and b in (*stamps, round(duration, 1))
        assert a <= start - 6 and not [t for t in stamps if a < t <= start - 6]
        assert b >= min(end + 6, duration) and not [t for t in stamps if end + 6 <= t < b]
        frames = trace.videos[1][1]["frames_indices"]  # served at a lower rate when longer than 20 s
        assert len(frames) <= 40 and frames[0] == round(a * 1000) and frames[-1] < b * 1000


def test_sft_sample_positions_follow_both_videos(family, long_dir, tmp_path) -> None:
    """The verl SFT sample's M-RoPE rows: the text after the window sits after both videos' positions."""
    from verl.utils import hf_processor

    from verl_video.pipeline.sft_dataset import sft_sample
    from verl_video.tools.tiny_model import make_tiny_model

    make_tiny_model(tmp_path / "model", family=family)
    processor = hf_processor(str(tmp_path / "model"))  # as verl's SFT trainer loads it: get_rope_index bound

    cfg = experiment(SEARCH)
    trace = traces_of(processor, long_dir, cfg)[0]
    sample = sft_sample(processor, encode_traces(processor, [trace]), "test", 100000)
    positions = sample["position_ids"]
    assert positions.shape == (4, sample["input_ids"].shape[0])
    # Monotone temporal row over the text, and the answer's positions beyond every video position.
    video = sample["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    last = int(sample["loss_mask"].nonzero().max())
    assert int(positions[1, last]) > int(positions[1:, video].max())
    assert sample["multi_modal_inputs"]["video_grid_thw"].shape[0] == 2


def test_a_few_loop_steps_lower_the_loss(long_dir, tmp_path) -> None:
    """The hand-written loop on 3 long videos' traces (tiny Qwen2.5-VL): the loss falls."""
    from verl_video.tools.warm_start import warm_start
    from verl_video.tools.tiny_model import make_tiny_model
    from verl_video.pipeline.run_settings import settings_from_defaults

    model = tmp_path / "model"
    make_tiny_model(model, seed=0)
    settings = settings_from_defaults([SEARCH])
    assert settings.search is not None  # the decider: the composed config's agent loop is video_search
    summary = warm_start(model, long_dir / "train.yaml", tmp_path / "out", steps=8, batch_size=2, lr=3e-3,
                         trainer="loop", settings=settings.video, search=settings.search)  # fmt: skip
    assert summary["search"] and summary["samples"] == 3
    assert summary["last_loss"] < summary["first_loss"]
    assert len(load_items([str(long_dir / "train.yaml")], settings.video)) == 3


@pytest.fixture(scope="module")
def model_dir(family, tmp_path_factory) -> Path:
    """The tiny model of the family."""
    from verl_video.tools.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp(f"tiny_{family}") / "model"
    make_tiny_model(out, seed=0, family=family)
    return out


@pytest.mark.parametrize("run", (SEARCH, "experiment=tiny_tvg_search_demo"))
def test_verl_gets_the_loops_traces(family, model_dir, long_dir, tmp_path, run) -> None:
    """`--trainer verl`'s config builds VideoSearchSFTDataset, whose samples after verl's collate hold the tokens,
    loss mask and both videos' processor outputs the hand-written loop trains on, at the positions the loop's model
    computes. A seed other than the default: the scripted zooms follow `data.seed`."""
    import inspect

    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForImageTextToText
    from verl.trainer.sft_trainer import create_sft_dataset
    from verl.utils import hf_processor
    from verl.utils.dataset.dataset_utils import SFTTensorCollator
    from verl.utils.model import extract_multi_modal_inputs

    from verl_video.models.mrope import install_released_mrope_rule
    from verl_video.pipeline.run_settings import CONFIG_DIR, settings_from_defaults
    from verl_video.tools.verl_sft import sft_overrides
    from verl_video.tools.warm_start import IGNORE_INDEX, search_examples
    from verl_video.verl_adapter.search_sft import VideoSearchSFTDataset

    processor = hf_processor(str(model_dir))  # as verl's SFT trainer loads it
    settings = settings_from_defaults([run])
    data, seed = long_dir / "train.yaml", 3
    overrides = sft_overrides(model_dir, data, tmp_path, 1, 3, 1e-3, seed, settings=settings.video,
                              search=settings.search)  # fmt: skip
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        config = compose("sft", overrides)
    dataset = create_sft_dataset(config.data.train_files, config.data, processor.tokenizer, processor)
    assert isinstance(dataset, VideoSearchSFTDataset) and len(dataset) == 3
    collated = SFTTensorCollator(config.data.pad_mode)([dataset[i] for i in range(len(dataset))])

    traces, batch_of = search_examples(processor, data, None, None, settings.video, settings.search, seed)
    if run == SEARCH:  # random windows: another seed draws other offsets (the demo's overview rule draws none)
        default = search_examples(processor, data, None, None, settings.video, settings.search, 0)[0]
        assert [t.zoom for t in traces] != [t.zoom for t in default]
    expected = batch_of(traces)  # the loop's batch of all three traces (one processor call)
    install_released_mrope_rule()  # what the loop's loss does before the forward
    model = AutoModelForImageTextToText.from_pretrained(model_dir).model
    wanted = set(inspect.signature(model.get_rope_index).parameters)
    for i, (ids, mask, positions) in enumerate(zip(*(collated[k].unbind() for k in
                                                     ("input_ids", "loss_mask", "position_ids")))):
        length = int(expected["attention_mask"][i].sum())
        assert torch.equal(ids, expected["input_ids"][i, :length])
        assert torch.equal(mask.bool(), expected["labels"][i, :length] != IGNORE_INDEX)
        one = batch_of([traces[i]])
        kwargs = {k: v for k, v in one.items() if k in wanted}
        rope, _ = model.get_rope_index(**{"input_ids": one["input_ids"], **kwargs})
        assert torch.equal(positions[1:], rope[:, 0]) and torch.equal(positions[0], torch.arange(length))
    # Both videos of each trace, in order, as the engine concatenates the batch's vision inputs.
    vision = extract_multi_modal_inputs(collated["multi_modal_inputs"])
    assert set(vision) == set(expected) - {"input_ids", "attention_mask", "labels", "mm_token_type_ids"}
    for key, value in vision.items():
        assert torch.equal(value, expected[key]), key
    assert vision["video_grid_thw"].shape == (6, 3)


def test_verl_warm_start_of_a_search_run_through_the_cli(long_dir, tmp_path) -> None:
    """`verl-video warm-start --trainer verl --set experiment=tiny_tvg_search_cpu`, run from outside the
    repository, trains the tiny Qwen3-VL on the search traces with verl's SFT trainer: its first step's loss is the
    hand-written loop's on the same batch (all three traces: the order of a batch does not change its token mean),
    the loss falls over 3 steps on that batch, and the saved model loads and differs from the start."""
    from transformers import AutoModelForImageTextToText

    from verl_video.pipeline.run_settings import settings_from_defaults
    from verl_video.tools.tiny_model import make_tiny_model
    from verl_video.tools.warm_start import warm_start
    from verl_video.tools.weight_diff import load_weights

    model = tmp_path / "model"
    make_tiny_model(model, seed=0, family="qwen3_vl")
    user = tmp_path / "user"
    user.mkdir()
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(repo), os.environ.get("PYTHONPATH")))))
    out = user / "warm"
    command = [str(Path(sys.executable).with_name("verl-video")), "warm-start", str(model), str(long_dir / "train.yaml"),
               str(out), "--trainer", "verl", "--steps", "3", "--batch-size", "3", "--set", SEARCH]  # fmt: skip
    done = subprocess.run(command, cwd=user, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "warm_start.json").read_text())
    assert summary["trainer"] == "verl" and summary["search"] and summary["samples"] == 3
    losses = [json.loads(line)["data"]["train/loss"] for line in (out / "sft_metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]
    after = AutoModelForImageTextToText.from_pretrained(out)
    assert type(after).__name__.startswith("Qwen3VL")
    before, trained = load_weights(str(model)), load_weights(str(out))
    assert any(not torch.equal(before[name], trained[name]) for name in before)

    settings = settings_from_defaults([SEARCH])
    loop = warm_start(model, long_dir / "train.yaml", tmp_path / "loop", steps=1, batch_size=3, trainer="loop",
                      settings=settings.video, search=settings.search)  # fmt: skip
    # fp32 on both sides, the same tokens at the same positions; only the order of the sums differs (verl's nested
    # batch and log-softmax against the loop's padded cross-entropy): measured 8e-8 relative. 1e-5 is far above
    # that rounding and far below one step's change of the loss (about 4%).
    assert losses[0] == pytest.approx(loop["first_loss"], rel=1e-5)
    assert abs(losses[1] - losses[0]) > 1e-2 * losses[0]


def test_verl_leaves_out_records_without_an_event_and_says_so(family, model_dir, long_dir, tmp_path, caplog) -> None:
    """verl's SFT dataset keeps only the records a search trace can be built for, as the hand-written loop does,
    says how many it left out, and stops at start-up with the file's name when none is left."""
    from hydra import compose, initialize_config_dir
    from verl.trainer.sft_trainer import create_sft_dataset
    from verl.utils import hf_processor

    from verl_video.pipeline.run_settings import CONFIG_DIR, settings_from_defaults
    from verl_video.tools.verl_sft import sft_overrides

    processor = hf_processor(str(model_dir))
    settings = settings_from_defaults(["experiment=tiny_tvg_search_demo"])
    grounding = [json.loads(line) for line in (long_dir / "train.jsonl").read_text().splitlines()]
    mcq = {"id": "colour", "video": grounding[0]["video"], "task": "mcq", "query": "What colour is the shape?",
           "options": ["red", "blue", "green", "white"], "answer": "B", "duration": grounding[0]["duration"],
           "source": "demo_long"}  # fmt: skip

    def dataset_of(records: list[dict], name: str):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        data = tmp_path / f"{name}.yaml"
        data.write_text(f"datasets:\n- name: {name}\n  json_path: {name}.jsonl\n  data_folder: {long_dir}\n")
        overrides = sft_overrides(model_dir, data, tmp_path / name, 1, 1, 1e-3, 0, settings=settings.video,
                                  search=settings.search)  # fmt: skip
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            config = compose("sft", overrides)
        return create_sft_dataset(config.data.train_files, config.data, processor.tokenizer, processor)

    with caplog.at_level(logging.WARNING, logger="verl_video"):
        dataset = dataset_of([mcq, *grounding], "mixed")
    assert len(dataset) == len(grounding) and "1 of 4 records are not grounding records" in caplog.text
    # Each index is a grounding record of its own: no record stands in for the question.
    assert [item.record.task for item in dataset.items] == ["tvg"] * len(grounding)
    with pytest.raises(ValueError, match=r"only_mcq\.yaml.*no grounding record with a time interval"):
        dataset_of([mcq], "only_mcq")
