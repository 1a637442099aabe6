#!/usr/bin/env bash
# GRPO on Qwen3-VL-4B-Instruct (dense; 2B and 8B likewise through MODEL_PATH) for temporal video grounding:
# the Qwen2.5-VL recipe (examples/qwen2_5_vl_3b_tvg.sh, same variables, DRY_RUN=1, key=value pass-through)
# with this model. Everything model-specific (32-pixel tokens, time as `<t seconds>` text before each frame
# group) is read from the model's processor at start-up.
#
#   MODEL_PATH=/models/Qwen3-VL-4B-Instruct bash examples/qwen3_vl_4b_tvg.sh
#   DRY_RUN=1 bash examples/qwen3_vl_4b_tvg.sh               # print the composed config and exit
set -euo pipefail

export MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-VL-4B-Instruct}
export EXPERIMENT=${EXPERIMENT:-qwen3_vl_4b_tvg}
exec bash "$(dirname "${BASH_SOURCE[0]}")/qwen2_5_vl_3b_tvg.sh" "$@"
