#!/usr/bin/env bash
# Long videos by search against one pass, on CPU: the `video_search` agent loop (overview, one zoom, answer) and a
# single pass of more frames, each warm-started with the same budget from the same model, then trained with GRPO
# through the real verl trainer and validated greedily on the same long videos (README: Long videos by search).
# It starts from the CPU demo's first warm start (a tiny Qwen3-VL that localises events in short videos): run
# `make demo` first, or point BASE at such a model. Everything lands in $OUT (default runs/tiny_tvg_search_cpu):
# data/, warm_search/, warm_single/, and each arm's GRPO run in $OUT/<search|single>/seed<N>.
#
#   bash examples/tiny_tvg_search_cpu.sh                 # after `make demo`
#   SEED=1 bash examples/tiny_tvg_search_cpu.sh          # another GRPO seed from the same warm starts
#   ARMS=search STEPS=2 bash examples/tiny_tvg_search_cpu.sh   # one arm, a short run
#   NUM_TRAIN=16 NUM_VAL=8 NUM_WARM_START=16 WARM_START_STEPS=5 STEPS=1 bash ...  # a quick try
# Settings: verl_video/config/experiment/tiny_tvg_search_demo.yaml (search arm) and tiny_tvg_longsingle_demo.yaml.
set -euo pipefail

OUT=${OUT:-runs/tiny_tvg_search_cpu}
BASE=${BASE:-runs/tiny_tvg_cpu/warm_exact}
SEED=${SEED:-42}
ARMS=${ARMS:-search single}
STEPS=${STEPS:-}
# Both arms: the same steps, batch and learning rate on the same videos (the search arm's traces zoom once, around
# the event; the single pass sees 84 frames of the whole video).
WARM_START_STEPS=${WARM_START_STEPS:-600}
if [[ ! -f "$BASE/config.json" ]]; then
  echo "tiny_tvg_search_cpu.sh: no model in $BASE: run \`make demo\` first (it builds runs/tiny_tvg_cpu/warm_exact)," \
       "or set BASE to a model folder" >&2
  exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== 1/3 long videos and annotations ($OUT/data)"
verl-video make-demo-data "$OUT/data" --long --num-train "${NUM_TRAIN:-256}" --num-val "${NUM_VAL:-128}" \
  --num-warm-start "${NUM_WARM_START:-1000}"
for ARM in $ARMS; do
  case "$ARM" in
    search) EXPERIMENT=tiny_tvg_search_demo ;;
    single) EXPERIMENT=tiny_tvg_longsingle_demo ;;
    *) echo "tiny_tvg_search_cpu.sh: ARMS holds search and/or single, got $ARM" >&2; exit 2 ;;
  esac
  echo "== 2/3 warm start, $ARM arm ($OUT/warm_$ARM)"
  if [[ ! -f "$OUT/warm_$ARM/config.json" ]]; then
    verl-video warm-start "$BASE" "$OUT/data/warm_start.yaml" "$OUT/warm_$ARM" --trainer loop \
      --steps "$WARM_START_STEPS" --batch-size 8 --lr 2e-3 --set experiment="$EXPERIMENT"
  fi
  RUN="$OUT/$ARM/seed$SEED"
  mkdir -p "$RUN"
  echo "== 3/3 GRPO, $ARM arm, seed $SEED: run in $RUN"
  python -m verl_video.main experiment="$EXPERIMENT" \
    actor_rollout_ref.model.path="$OUT/warm_$ARM" \
    data.train_files="$OUT/data/train.yaml" \
    data.val_files="$OUT/data/val.yaml" \
    trainer.default_local_dir="$RUN/checkpoints" \
    trainer.validation_data_dir="$RUN/validation" \
    ${STEPS:+trainer.total_training_steps="$STEPS"} \
    trainer.seed="$SEED" "$@" 2>&1 | tee -a "$RUN/train.log"
  verl-video summarize "$RUN"
done
