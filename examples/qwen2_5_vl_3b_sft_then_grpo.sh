#!/usr/bin/env bash
# Cold start then RL: SFT through verl's SFT trainer (examples/qwen2_5_vl_3b_sft.sh), then GRPO
# (examples/qwen2_5_vl_3b_tvg.sh) from the SFT checkpoint's Hugging Face copy.
#
#   SFT_DATA=data_config/tvg_sft.yaml bash examples/qwen2_5_vl_3b_sft_then_grpo.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SFT_OUT=${SFT_OUT:-checkpoints/verl-video/qwen2_5_vl_3b_sft}
OUT="$SFT_OUT" TRAIN_DATA="${SFT_DATA:-data_config/tvg.yaml}" bash "$here/qwen2_5_vl_3b_sft.sh"

step=$(cat "$SFT_OUT/latest_checkpointed_iteration.txt")
MODEL_PATH="$SFT_OUT/global_step_$step/huggingface" bash "$here/qwen2_5_vl_3b_tvg.sh" "$@"
