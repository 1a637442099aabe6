"""`eval` and `select` of a run that selects the `video_search` loop run that loop, and report what it saw.

The tiny model is real; where the test needs zooms, its policy is scripted at the engine (`HFEngine.generate`),
below the hf server that the eval path runs the loop over, so everything above it is the command's own path.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from verl_video.cli import main
from verl_video.evaluation import run_eval
from verl_video.verl_adapter.hf_engine import GenerationResult, processor_inputs

from eval_helpers import ScriptedBackend, eval_args  # noqa: I001  (tests/evaluation is on sys.path)

REPO_ROOT = Path(__file__).resolve().parents[2]
SEARCH = "experiment=tiny_tvg_search_cpu"


@pytest.fixture(scope="module")
def long_data(tmp_path_factory) -> Path:
    """Two long validation videos (`make-demo-data --long`)."""
    from verl_video.tools.long_demo_data import generate_long

    out = tmp_path_factory.mktemp("long") / "data"
    generate_long(out, num_train=1, num_val=2, seed=0)
    return out


def records(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "val.jsonl").read_text().splitlines()]


class ScriptedPolicy:
    """Writes a zoom around the record's event on the first turn, then the event as the answer."""

    def __init__(self, tokenizer, rows: list[dict]) -> None:
        self.tokenizer, self.rows, self.batches = tokenizer, rows, []
        assert len({r["query"] for r in rows}) == len(rows)

    def turn(self, prompt_ids: list[int], videos: int) -> list[int]:
        """The token ids of the next model turn for a prompt holding `videos` videos."""
        text = self.tokenizer.decode(prompt_ids)
        row = next(r for r in self.rows if r["query"] in text)
        (start, end), duration = row["timestamps"][0], row["duration"]
        first = round(max(0.0, min(start - 1.0, duration - 7.6)), 1)
        reply = f"<zoom>{first:.1f}, {first + 7.5:.1f}</zoom>" if videos == 1 else f"<answer>{start:.2f} to {end:.2f}</answer>"
        return [*self.tokenizer.encode(reply, add_special_tokens=False), self.tokenizer.convert_tokens_to_ids("<|im_end|>")]

    def engine_generate(self, requests, settings) -> list[GenerationResult]:
        """`HFEngine.generate`, scripted."""
        self.batches.append(len(requests))
        out = []
        for request in requests:
            ids = self.turn(request.prompt_ids, len(request.videos or ()))
            out.append(GenerationResult(ids, [-0.5] * len(ids), "stop"))
        return out


class DirectServer:
    """The server manager a test hands the loop directly: the same scripted policy, verl's TokenOutput."""

    def __init__(self, policy: ScriptedPolicy) -> None:
        self.policy = policy

    async def generate(self, request_id, *, prompt_ids, sampling_params, video_data=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        ids = self.policy.turn(list(prompt_ids), len(video_data or ()))
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), stop_reason="completed", extra_fields={})


def direct_trajectories(model: str, data: Path, policy: ScriptedPolicy) -> dict:
    """VideoSearchAgentLoop on the training dataset's rows (VideoRLDataset), driven directly, by record id."""
    from hydra import compose, initialize_config_dir
    from transformers import AutoProcessor

    from verl_video.verl_adapter.driver import CONFIG_DIR
    from verl_video.verl_adapter.rl_dataset import VideoRLDataset
    from verl_video.verl_adapter.search_agent_loop import standalone_search_loop

    with initialize_config_dir(config_dir=os.path.abspath(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="video_grpo", overrides=["actor_rollout_ref.rollout.name=hf", SEARCH])
    processor = AutoProcessor.from_pretrained(model)
    dataset = VideoRLDataset(str(data / "val.yaml"), processor.tokenizer, cfg.data, processor)

    async def one(row):
        loop = standalone_search_loop(cfg, DirectServer(policy), processor.tokenizer, processor, "qwen2_5_vl")
        return await loop.run({"temperature": 0.0}, **row)

    rows = [dataset[i] for i in range(len(dataset))]
    return {row["extra_info"]["id"]: asyncio.run(one(row)) for row in rows}


def test_eval_runs_the_search_loop_the_trainer_runs(tiny_model, long_data, tmp_path):
    """The eval path's trajectories (tokens, masks, videos) are the loop's on the trainer's rows, and each line
    records its zoom facts and grades the final turn."""
    from verl_video.evaluation.search_eval import SearchBackend

    args = eval_args("--model", str(tiny_model), "--data", str(long_data / "val.yaml"), "-o", str(tmp_path / "out"),
                     "--set", SEARCH, "--batch-size", "2", "--no-plots", "--device", "cpu")
    policy, seen = None, []

    def factory(model):
        nonlocal policy
        backend = run_eval._default_backend(args, run_eval.resolve_settings(args)[0])(model)
        assert isinstance(backend, SearchBackend)
        policy = ScriptedPolicy(backend.engine.tokenizer, records(long_data))
        backend.engine.generate = policy.engine_generate
        answer = backend.answer
        backend.answer = lambda samples, *rest: seen.extend(answer(samples, *rest)) or seen[-len(samples):]
        return backend

    report = run_eval.evaluate(args, factory)
    direct = direct_trajectories(str(tiny_model), long_data, policy)
    lines = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(seen) == len(direct) == len(lines) == 2
    for line, [trajectory] in zip(lines, seen):
        got, expected = trajectory.output, direct[line["id"]]
        assert got.prompt_ids == expected.prompt_ids and got.response_ids == expected.response_ids
        assert got.response_mask == expected.response_mask and 0 in got.response_mask  # a zoom answer, mask 0
        videos, expected_videos = got.multi_modal_data["videos"], expected.multi_modal_data["videos"]
        assert len(videos) == len(expected_videos) == 2  # the overview, then the window
        for (frames, metadata), (want_frames, want_metadata) in zip(videos, expected_videos):
            assert torch.equal(frames, want_frames) and metadata == want_metadata
        assert {k: v for k, v in got.extra_fields.items() if k.startswith("zoom")} == {
            k: v for k, v in expected.extra_fields.items() if k.startswith("zoom")}
    truth = {r["id"]: r["timestamps"][0] for r in records(long_data)}
    for line, [trajectory] in zip(lines, seen):
        start, end = truth[line["id"]]
        # The graded response is the final turn alone: the answer, not the zoom call before it.
        assert line["response"] == f"<answer>{start:.2f} to {end:.2f}</answer>" and line["iou"] == 1.0
        assert (line["zoom_calls"], line["zoom_used"], line["zoom_invalid_calls"], line["zoom_refusals"]) == (1, 1, 0, {})
        assert line["zoom_window_contains_gt"] == 1
        assert line["visual_tokens"] == line["zoom_visual_tokens"] == trajectory.output.extra_fields["zoom_visual_tokens"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    assert metrics["zoom/calls"] == 1.0 and metrics["zoom/window_contains_gt"] == 1.0
    assert metrics["visual_tokens_per_answer"] == sum(line["visual_tokens"] for line in lines) / 2
    assert report["metrics"]["r1@0.7"] == 100.0


def test_single_pass_lines_count_the_prompts_video_tokens(tiny_model, demo_data, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_model))
    backend = ScriptedBackend(processor, {})
    out = tmp_path / "single"
    run_eval.evaluate(eval_args("--model", str(tiny_model), "--data", str(demo_data / "val.yaml"), "-o", str(out),
                                "--no-plots"), lambda _: backend)
    lines = {json.loads(line)["id"]: json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()}
    pad = processor.tokenizer.convert_tokens_to_ids(processor.video_token)
    for request in backend.requests:
        ids = processor_inputs(processor, text=[request.prompt], videos=[(request.frames, request.metadata)])["input_ids"]
        assert lines[request.id]["visual_tokens"] == int((ids == pad).sum()) > 0
        assert "zoom_calls" not in lines[request.id]
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["visual_tokens_per_answer"] == pytest.approx(sum(l["visual_tokens"] for l in lines.values()) / len(lines))
    assert not any(key.startswith("zoom") for key in metrics)


def test_vllm_with_the_search_loop_is_refused_in_one_line(tiny_model, long_data, tmp_path, capsys):
    args = eval_args("--model", str(tiny_model), "--data", str(long_data / "val.yaml"), "-o", str(tmp_path / "v"),
                     "--set", SEARCH, "--backend", "vllm")
    assert run_eval.run(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "vllm" in line]
    assert err == ["verl-video eval: the vllm backend does not run the video_search agent loop yet; use --backend hf"]
    assert not (tmp_path / "v").exists()


def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "verl_video.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_eval_cli_from_outside_the_repository_runs_the_loop(tiny_model, tmp_path):
    """`verl-video eval --set experiment=tiny_tvg_search_cpu` on generated long videos: every line carries the
    loop's zoom fields and the report their means (the random model's loop, unscripted)."""
    made = cli(tmp_path, "make-demo-data", "data", "--long", "--num-train", "2", "--num-val", "2")
    assert made.returncode == 0, made.stderr[-2000:]
    result = cli(tmp_path, "eval", "--model", str(tiny_model), "--data", "data/val.yaml", "-o", "out", "--set", SEARCH,
                 "--no-plots", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert isinstance(line["zoom_calls"], int) and isinstance(line["zoom_refusals"], dict)
        assert line["visual_tokens"] == line["zoom_visual_tokens"] > 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    assert {"zoom/calls", "zoom/used", "zoom/visual_tokens", "visual_tokens_per_answer"} <= set(metrics)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["search"]["max_zoom_calls"] == 2


def test_select_with_the_search_loop_samples_trajectories(tiny_model, long_data, tmp_path):
    out = tmp_path / "select"
    code = main(["select", str(long_data / "val.yaml"), "--model", str(tiny_model), "-k", "2", "-o", str(out),
                 "--set", SEARCH, "--no-plots", "--device", "cpu", "--strategy", "difficulty"])
    assert code in (0, 1)  # 1: nothing selected, which a random model may well give
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2
    for line in stats:
        # k sampled trajectories and the greedy one, each with the loop's zoom facts.
        assert len(line["trajectories"]) == 3 and len(line["answers"]) == 2
        assert all("zoom_calls" in t and t["visual_tokens"] > 0 for t in line["trajectories"])
