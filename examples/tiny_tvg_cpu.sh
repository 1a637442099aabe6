#!/usr/bin/env bash
# The embedded default: GRPO on temporal video grounding through the real verl trainer, on CPU.
# Builds a tiny random-weight Qwen2.5-VL (or, with MODEL_FAMILY=qwen3_vl, Qwen3-VL) offline, generated videos
# with events at known times, gives the model a short supervised warm start (so it emits the answer format
# and GRPO gets signal), then trains with GRPO and validates. Everything lands in $OUT (default
# runs/tiny_tvg_cpu, runs/tiny_tvg_cpu_<family> for another family).
#
#   bash examples/tiny_tvg_cpu.sh                         # defaults
#   MODEL_FAMILY=qwen3_vl bash examples/tiny_tvg_cpu.sh   # the same demo on a tiny Qwen3-VL
#   STEPS=10 bash examples/tiny_tvg_cpu.sh trainer.test_freq=5  # extra key=value go to the trainer
# Sizes (30 GRPO steps of 8 prompts x 8 rollouts, validation every 15) are in
# verl_video/config/experiment/tiny_tvg_cpu.yaml.
set -euo pipefail

MODEL_FAMILY=${MODEL_FAMILY:-qwen2_5_vl}
if [[ "$MODEL_FAMILY" == qwen2_5_vl ]]; then
  OUT=${OUT:-runs/tiny_tvg_cpu}
else
  OUT=${OUT:-runs/tiny_tvg_cpu_$MODEL_FAMILY}
fi
STEPS=${STEPS:-}
WARM_START_STEPS=${WARM_START_STEPS:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== 1/4 tiny $MODEL_FAMILY model ($OUT/tiny_model)"
verl-video make-tiny-model "$OUT/tiny_model" --family "$MODEL_FAMILY"
echo "== 2/4 demo videos and annotations ($OUT/data)"
verl-video make-demo-data "$OUT/data"
echo "== 3/4 supervised warm start ($OUT/warm_model)"
if [[ ! -f "$OUT/warm_model/config.json" ]]; then
  verl-video warm-start "$OUT/tiny_model" "$OUT/data/train.yaml" "$OUT/warm_model" --set experiment=tiny_tvg_cpu \
    ${WARM_START_STEPS:+--steps "$WARM_START_STEPS"}
fi

echo "== 4/4 GRPO, metrics in $OUT/metrics.jsonl"
rm -f "$OUT/metrics.jsonl"
export VERL_FILE_LOGGER_PATH="$OUT/metrics.jsonl"
verl-video monitor-memory "$OUT/memory.json" -- \
  python -m verl_video.main experiment=tiny_tvg_cpu \
    actor_rollout_ref.model.path="$OUT/warm_model" \
    data.train_files="$OUT/data/train.yaml" \
    data.val_files="$OUT/data/val.yaml" \
    trainer.default_local_dir="$OUT/checkpoints" \
    trainer.validation_data_dir="$OUT/validation" \
    ${STEPS:+trainer.total_training_steps="$STEPS"} \
    "$@" 2>&1 | tee "$OUT/train.log"

verl-video summarize "$OUT"
