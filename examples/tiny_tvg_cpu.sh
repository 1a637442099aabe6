#!/usr/bin/env bash
# The embedded default: GRPO on temporal video grounding through the real verl trainer, on CPU.
# Builds a tiny random-weight Qwen3-VL (or, with MODEL_FAMILY=qwen2_5_vl, Qwen2.5-VL) offline, generated videos
# with events at known times, gives the model a supervised warm start (it learns the answer format and to
# localise, then is taught on labels 1 s late), then trains with GRPO, rewarded with the exact times, and
# validates. Everything lands in $OUT (default runs/tiny_tvg_cpu, runs/tiny_tvg_cpu_<family> for another
# family); each GRPO seed is its own run in $OUT/seed<N> (SEED=N or trainer.seed=N).
#
#   bash examples/tiny_tvg_cpu.sh                           # defaults
#   MODEL_FAMILY=qwen2_5_vl bash examples/tiny_tvg_cpu.sh   # the same demo on a tiny Qwen2.5-VL
#   STEPS=10 bash examples/tiny_tvg_cpu.sh trainer.test_freq=5  # extra key=value go to the trainer
#   NUM_TRAIN=64 NUM_VAL=32 NUM_WARM_START=200 WARM_START_STEPS=50 LAGGED_STEPS=20 STEPS=2 bash ...  # a quick try
# Sizes (8 prompts x 8 rollouts a step) are in verl_video/config/experiment/tiny_tvg_cpu.yaml, the demo's own
# settings (20 GRPO steps validated at 0, 10 and 20, answer-only prompt, lr 3e-4, rollout temperature 0.6) in
# tiny_tvg_demo.yaml beside it.
#
# Why Qwen3-VL by default: a 2-layer, 64-wide Qwen2.5-VL did not learn to read time from M-RoPE positions
# alone (its warm starts stayed below a video-blind constant interval), while Qwen3-VL writes each frame
# group's timestamp as text, which the tiny model learns to copy (README: The CPU demo). Real Qwen2.5-VL
# checkpoints read their positions (Time-R1 trains the 7B on them); this is a limit of the tiny model.
set -euo pipefail

MODEL_FAMILY=${MODEL_FAMILY:-qwen3_vl}
if [[ "$MODEL_FAMILY" == qwen3_vl ]]; then
  OUT=${OUT:-runs/tiny_tvg_cpu}
else
  OUT=${OUT:-runs/tiny_tvg_cpu_$MODEL_FAMILY}
fi
STEPS=${STEPS:-}
# Each GRPO seed is its own run in its own folder ($OUT/seed<N>): a run folder holds one run, and a second seed
# in the first one's folder would be refused at start-up. The seed comes from SEED or a trainer.seed=N argument.
SEED=${SEED:-42}
SEED_ARG=(trainer.seed="$SEED")
for arg in "$@"; do
  if [[ "$arg" == trainer.seed=* ]]; then SEED=${arg#trainer.seed=}; SEED_ARG=(); fi
done
# The warm start has two stages. 700 steps of 8 at lr 2e-3 on exact labels teach the answer format and to
# localise (greedy mIoU 0.776 on 128 validation videos; the tiny model never learnt to localise from lagged labels
# alone: 0.406). 150 steps at lr 1e-3 on the same videos with every window 1 s late then leave a model that still
# localises but answers late: GRPO's reward, on exact windows, exposes that error (README: The CPU demo).
WARM_START_STEPS=${WARM_START_STEPS:-700}
LAGGED_STEPS=${LAGGED_STEPS:-150}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== 1/4 tiny $MODEL_FAMILY model ($OUT/tiny_model)"
verl-video make-tiny-model "$OUT/tiny_model" --family "$MODEL_FAMILY"
echo "== 2/4 demo videos and annotations ($OUT/data)"
# GRPO trains on 256 videos (20 steps of 8 prompts: 160) and validates on 128; the warm start sees 1000 others.
verl-video make-demo-data "$OUT/data" --num-train "${NUM_TRAIN:-256}" --num-val "${NUM_VAL:-128}" \
  --num-warm-start "${NUM_WARM_START:-1000}"
echo "== 3/4 supervised warm start: exact labels ($OUT/warm_exact), then labels 1 s late ($OUT/warm_model)"
if [[ ! -f "$OUT/warm_model/config.json" ]]; then
  if [[ ! -f "$OUT/warm_exact/config.json" ]]; then
    verl-video warm-start "$OUT/tiny_model" "$OUT/data/warm_start.yaml" "$OUT/warm_exact" \
      --set experiment=tiny_tvg_demo --steps "$WARM_START_STEPS" --batch-size 8 --lr 2e-3
  fi
  verl-video warm-start "$OUT/warm_exact" "$OUT/data/warm_start_lagged.yaml" "$OUT/warm_model" \
    --set experiment=tiny_tvg_demo --steps "$LAGGED_STEPS" --batch-size 8 --lr 1e-3
fi

RUN="$OUT/seed$SEED"
mkdir -p "$RUN"
echo "== 4/4 GRPO, seed $SEED: run (record, metrics, checkpoints, summary) in $RUN"
verl-video monitor-memory "$RUN/memory.json" -- \
  python -m verl_video.main experiment=tiny_tvg_demo \
    actor_rollout_ref.model.path="$OUT/warm_model" \
    data.train_files="$OUT/data/train.yaml" \
    data.val_files="$OUT/data/val.yaml" \
    trainer.default_local_dir="$RUN/checkpoints" \
    trainer.validation_data_dir="$RUN/validation" \
    ${STEPS:+trainer.total_training_steps="$STEPS"} \
    "${SEED_ARG[@]}" "$@" 2>&1 | tee -a "$RUN/train.log"

verl-video summarize "$RUN"
