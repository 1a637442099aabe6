#!/usr/bin/env bash
# Supervised cold start of Qwen2.5-VL-3B-Instruct through verl's SFT trainer, on our video data path:
# the same records, video budget and prompt as GRPO; the target is the answer in the training format, with
# each record's `cot` or `reasoning` text inside <think> (records without one are left out under the think
# template). One node, torchrun; checkpoints in $OUT/global_step_N (huggingface/ holds a loadable model).
#
#   TRAIN_DATA=data_config/tvg_sft.yaml bash examples/qwen2_5_vl_3b_sft.sh
#   DRY_RUN=1 bash examples/qwen2_5_vl_3b_sft.sh        # print the composed config and exit
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-VL-3B-Instruct}
N_GPUS=${N_GPUS:-8}
TRAIN_DATA=${TRAIN_DATA:-data_config/tvg.yaml}
BATCH_SIZE=${BATCH_SIZE:-16}
LR=${LR:-1e-5}
EPOCHS=${EPOCHS:-1}
OUT=${OUT:-checkpoints/verl-video/qwen2_5_vl_3b_sft}
LOGGER=${LOGGER:-[console,wandb]}

args=(
  sft_profile=gpu
  model.path="$MODEL_PATH"
  data.train_files="$TRAIN_DATA"
  data.train_batch_size="$BATCH_SIZE"
  optim.lr="$LR"
  trainer.total_epochs="$EPOCHS"
  trainer.n_gpus_per_node="$N_GPUS"
  trainer.default_local_dir="$OUT"
  trainer.logger="$LOGGER"
  # Keep a Hugging Face copy of the weights in each checkpoint, for GRPO to start from.
  'checkpoint.save_contents=[model,optimizer,extra,hf_model]'
)

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  exec python -m verl_video.sft "${args[@]}" "$@" --cfg job --resolve
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "qwen2_5_vl_3b_sft.sh: no GPU visible; the CPU demo's warm start runs the same trainer (make demo)." >&2
  exit 1
fi
exec torchrun --standalone --nnodes=1 --nproc_per_node="$N_GPUS" -m verl_video.sft "${args[@]}" "$@"
