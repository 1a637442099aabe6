#!/usr/bin/env bash
# GRPO on Qwen2.5-VL-3B-Instruct for temporal video grounding, vLLM rollouts, one or more GPU nodes
# (any supported family through MODEL_PATH; examples/qwen3_vl_4b_tvg.sh sets Qwen3-VL-4B).
#
#   bash examples/qwen2_5_vl_3b_tvg.sh                          # 8 GPUs, data from data_config/tvg.yaml
#   N_GPUS=4 MODEL_PATH=/models/Qwen2.5-VL-3B-Instruct bash examples/qwen2_5_vl_3b_tvg.sh trainer.total_epochs=2
#   DRY_RUN=1 bash examples/qwen2_5_vl_3b_tvg.sh               # print the composed config and exit
#
# Environment variables (defaults in brackets) set the usual knobs; any `key=value` argument is passed
# through to hydra last, so it wins. Multi-node: start a Ray cluster first (`ray start --head` on node 0,
# `ray start --address=...` on the others), then run this on the head node with NNODES set (docs/multinode.md).
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-VL-3B-Instruct}
N_GPUS=${N_GPUS:-8}
NNODES=${NNODES:-1}
TRAIN_DATA=${TRAIN_DATA:-data_config/tvg.yaml}
VAL_DATA=${VAL_DATA:-data_config/tvg_val.yaml}
ROLLOUT_N=${ROLLOUT_N:-8}
BATCH_SIZE=${BATCH_SIZE:-16}
LR=${LR:-1e-6}
KL_COEF=${KL_COEF:-0.04}
EPOCHS=${EPOCHS:-5}
ROLLOUT_TP=${ROLLOUT_TP:-1}
GPU_MEM_UTIL=${GPU_MEM_UTIL:-0.6}
# Time-R1 freezes the vision tower; FREEZE_VISION=false trains it too.
FREEZE_VISION=${FREEZE_VISION:-true}
PROJECT=${PROJECT:-verl-video}
EXPERIMENT=${EXPERIMENT:-qwen2_5_vl_3b_tvg}
# Metrics to the console and a file in the run folder; wandb too when an account is set (WANDB_API_KEY).
if [[ -n "${WANDB_API_KEY:-}" ]]; then
  LOGGER=${LOGGER:-[console,file,wandb]}
else
  LOGGER=${LOGGER:-[console,file]}
fi

args=(
  profile=gpu
  actor_rollout_ref.model.path="$MODEL_PATH"
  data.train_files="$TRAIN_DATA"
  data.val_files="$VAL_DATA"
  data.train_batch_size="$BATCH_SIZE"
  actor_rollout_ref.actor.ppo_mini_batch_size="$BATCH_SIZE"
  actor_rollout_ref.actor.optim.lr="$LR"
  actor_rollout_ref.actor.kl_loss_coef="$KL_COEF"
  actor_rollout_ref.actor.freeze_vision_tower="$FREEZE_VISION"
  actor_rollout_ref.rollout.n="$ROLLOUT_N"
  actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"
  actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEM_UTIL"
  trainer.n_gpus_per_node="$N_GPUS"
  trainer.nnodes="$NNODES"
  trainer.total_epochs="$EPOCHS"
  trainer.project_name="$PROJECT"
  trainer.experiment_name="$EXPERIMENT"
  trainer.logger="$LOGGER"
)

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  exec python -m verl_video.main "${args[@]}" "$@" --cfg job --resolve
fi

has_gpu() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -q "^GPU"
  else
    python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null
  fi
}
if ! has_gpu; then
  echo "qwen2_5_vl_3b_tvg.sh: no GPU visible on this machine; this script trains on GPUs with vLLM." >&2
  echo "To run the same pipeline on CPU with a tiny model: bash examples/tiny_tvg_cpu.sh" >&2
  exit 1
fi

exec python -m verl_video.main "${args[@]}" "$@"
