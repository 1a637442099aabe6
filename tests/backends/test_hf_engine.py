"""The HF generation engine: batching, log-probs, banned tokens, weight loading."""

from __future__ import annotations

import pytest
import torch

from verl_video.verl_adapter.distinct_videos import distinct_order
from verl_video.verl_adapter.hf_engine import GenerationRequest, HFEngine, SamplingSettings
from verl_video.models.vision_tower import find_vision_tower


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def engine(request) -> HFEngine:
    # Qwen3-VL: per frame group a `<t seconds>` and vision start/end around the group's video tokens.
    model_dir = request.getfixturevalue({"qwen2_5_vl": "tiny_model_dir", "qwen3_vl": "tiny_qwen3_model_dir"}[request.param])
    return HFEngine(str(model_dir), seed=0)


def _video(frames: int = 8, size: int = 56, seed: int = 0) -> tuple[torch.Tensor, dict]:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 255, (frames, 3, size, size), dtype=torch.uint8, generator=generator)
    meta = {"fps": 2.0, "total_num_frames": frames, "frames_indices": list(range(frames)), "duration": frames / 2}
    return pixels, meta


def _request(engine: HFEngine, text: str, seed: int = 0, frames: int = 8) -> GenerationRequest:
    video = _video(frames, seed=seed)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = engine.processor(
        text=[prompt], videos=[video[0]], video_metadata=[video[1]], do_sample_frames=False, return_tensors="pt"
    )
    return GenerationRequest(inputs["input_ids"][0].tolist(), videos=[video])


def test_batched_greedy_equals_one_at_a_time(engine):
    requests = [_request(engine, "when does the red square appear", seed=i, frames=4 + 2 * i) for i in range(3)]
    greedy = SamplingSettings(temperature=0, max_new_tokens=12)
    batched = engine.generate(requests, greedy)
    single = [engine.generate([r], greedy)[0] for r in requests]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    for b, s in zip(batched, single):
        assert torch.allclose(torch.tensor(b.log_probs), torch.tensor(s.log_probs), atol=1e-4)


def test_requests_sharing_a_video_process_its_frames_once(engine):
    memo = engine.processor.video_processor
    calls, misses = memo.calls, memo.calls - memo.hits
    # Three rollouts of one prompt (equal frames arriving as separate tensors, as after Ray) and one other video.
    requests = [_request(engine, "when does the red square appear", seed=0) for _ in range(3)]
    requests.append(_request(engine, "when does the red square appear", seed=1))
    greedy = SamplingSettings(temperature=0, max_new_tokens=12)
    batched = engine.generate(requests, greedy)
    # Four prompts built and four requests served: eight calls, frames processed for two videos at most.
    assert memo.calls - calls == 8
    assert (memo.calls - memo.hits) - misses <= 2
    single = [engine.generate([r], greedy)[0] for r in requests]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    assert batched[0].token_ids == batched[1].token_ids == batched[2].token_ids


def test_distinct_order_pairs_equal_pixels_only():
    a, b = torch.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4) + 1
    grids = [(1, 1, 3)] * 4 + [(1, 1, 2)]
    firsts, where = distinct_order([a, b, a.clone(), b.clone(), a[:2]], grids)
    assert firsts == [0, 1, 4]
    assert where == [0, 1, 0, 1, 2]


def test_rollouts_of_one_video_encode_it_once_with_unchanged_outputs(engine):
    tower = find_vision_tower(engine.model)
    encoded = []  # patch rows entering the encoder (its patch embedding), per call
    hook = tower.patch_embed.register_forward_pre_hook(lambda module, args: encoded.append(args[0].shape[0]))
    # Four rollouts of one prompt and two of another video, each with its own sampling seed.
    requests = [_request(engine, "when does the red square appear", seed=0) for _ in range(4)]
    requests += [_request(engine, "when does the red square appear", seed=1) for _ in range(2)]
    for seed, request in enumerate(requests):
        request.seed = seed
    settings = SamplingSettings(temperature=1.0, max_new_tokens=10)
    try:
        distinct = engine.generate(requests, settings)
        engine.distinct_videos = False
        every = engine.generate(requests, settings)
        # Equal-sized videos: two encoded instead of six.
        assert len(encoded) == 2 and encoded[0] * 3 == encoded[1]
    finally:
        engine.distinct_videos = True
        hook.remove()
    assert [r.token_ids for r in distinct] == [r.token_ids for r in every]
    for d, e in zip(distinct, every):
        assert torch.allclose(torch.tensor(d.log_probs), torch.tensor(e.log_probs), atol=1e-5)
    assert "forward" not in tower.__dict__  # the wrapper lives only inside generate


def test_log_probs_equal_a_full_forward_with_the_video(engine):
    request = _request(engine, "when does the blue circle appear")
    result = engine.generate([request], SamplingSettings(temperature=1.0, max_new_tokens=16))[0]
    sequence = torch.tensor([request.prompt_ids + result.token_ids])
    media = engine._media_inputs(request)
    with torch.no_grad():
        logits = engine.model(
            input_ids=sequence,
            attention_mask=torch.ones_like(sequence),
            mm_token_type_ids=engine._mm_token_type_ids(sequence),
            **media,
        ).logits[0]
    prompt_len = len(request.prompt_ids)
    expected = torch.log_softmax(logits[prompt_len - 1 : -1], -1).gather(-1, torch.tensor(result.token_ids)[:, None])
    assert torch.allclose(expected.squeeze(-1), torch.tensor(result.log_probs), atol=1e-4)
    # Without the video the same tokens are scored differently: the video really is an input.
    text_only = torch.tensor([[t for t in sequence[0].tolist() if t != engine.video_token_id]])
    with torch.no_grad():
        blind = engine.model(input_ids=text_only).logits[0]
    assert not torch.allclose(blind[-len(result.token_ids) - 1 : -1], logits[prompt_len - 1 : -1], atol=1e-3)


def test_placeholders_and_out_of_vocabulary_ids_are_never_sampled(engine):
    requests = [_request(engine, "a green triangle", seed=i) for i in range(4)]
    results = engine.generate(requests, SamplingSettings(temperature=5.0, max_new_tokens=64))
    sampled = {t for r in results for t in r.token_ids}
    assert engine.video_token_id in engine.banned_token_ids
    assert not sampled & set(engine.banned_token_ids)


def test_generation_stops_at_eos_and_keeps_it(engine):
    results = engine.generate([_request(engine, "x")], SamplingSettings(temperature=3.0, max_new_tokens=64))
    for result in results:
        eos_positions = [i for i, t in enumerate(result.token_ids) if t in engine.eos_token_ids]
        assert eos_positions in ([], [len(result.token_ids) - 1])
        assert len(result.log_probs) == len(result.token_ids)
        assert result.finish_reason == ("stop" if eos_positions else "length")


def test_load_weights_changes_the_policy_and_rejects_foreign_names(tiny_model_dir):
    engine = HFEngine(str(tiny_model_dir))
    request = _request(engine, "when")
    greedy = SamplingSettings(temperature=0, max_new_tokens=8)
    before = engine.generate([request], greedy)[0]
    new_weights = [(name, torch.randn_like(p)) for name, p in engine.model.named_parameters()]
    assert engine.load_weights(new_weights) == len(new_weights)
    after = engine.generate([request], greedy)[0]
    assert before.log_probs != after.log_probs
    with pytest.raises(KeyError, match="no match in the rollout model"):
        engine.load_weights([("not.a.parameter", torch.zeros(1))])


def test_prompt_and_video_disagreeing_fails_clearly(engine):
    request = _request(engine, "when", frames=8)
    request.videos = [_video(frames=4)]
    with pytest.raises(ValueError, match="video tokens"):
        engine.generate([request], SamplingSettings(temperature=0, max_new_tokens=4))
