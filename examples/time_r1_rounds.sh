#!/usr/bin/env bash
# Time-R1's multi-round loop: select the records the current model finds neither trivial nor hopeless,
# train GRPO on them, then select again with the latest checkpoint and train on from it.
#
#   bash examples/time_r1_rounds.sh                   # CPU demo: tiny model, generated videos, 2 rounds
#   MODE=gpu MODEL=Qwen/Qwen2.5-VL-3B-Instruct DATA=data_config/tvg.yaml VAL=data_config/tvg_val.yaml \
#     ROUNDS=3 STEPS=200 bash examples/time_r1_rounds.sh
#   STRATEGY=variance K=8 bash examples/time_r1_rounds.sh     # Temporal-R1's variance-aware selection instead
#   SELECT_ARGS="-p mode=gaussian -p count=2500" bash ...      # Time-R1's Gaussian sampling around IoU 0.3
#
# Each round selects from the whole DATA again (Time-R1 re-scores every record), writes
# $OUT/round_R/select/{stats.jsonl,data_config.yaml,selection.md,selection_hist.png}, trains into
# $OUT/round_R/checkpoints, and merges the last checkpoint into a Hugging Face folder for the next round.
# Extra key=value arguments go to every GRPO run.
set -euo pipefail

MODE=${MODE:-cpu}
ROUNDS=${ROUNDS:-2}
STRATEGY=${STRATEGY:-difficulty}
K=${K:-1}
SELECT_ARGS=${SELECT_ARGS:-}
OUT=${OUT:-runs/time_r1_rounds_$MODE}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/rounds.txt"

if [[ "$MODE" == cpu ]]; then
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  STEPS=${STEPS:-4}
  if [[ -z "${MODEL:-}" ]]; then
    verl-video make-tiny-model "$OUT/tiny_model"
    [[ -f "$OUT/data/train.yaml" ]] || verl-video make-demo-data "$OUT/data"
    [[ -f "$OUT/warm_model/config.json" ]] || verl-video warm-start "$OUT/tiny_model" "$OUT/data/train.yaml" "$OUT/warm_model"
    MODEL="$OUT/warm_model"
  fi
  DATA=${DATA:-$OUT/data/train.yaml}
  VAL=${VAL:-$OUT/data/val.yaml}
  TRAIN_ARGS=(experiment=tiny_tvg_cpu trainer.val_before_train=false)
  SELECT_BACKEND=(--backend hf --device cpu)
else
  STEPS=${STEPS:-}
  MODEL=${MODEL:-Qwen/Qwen2.5-VL-3B-Instruct}
  DATA=${DATA:-data_config/tvg.yaml}
  VAL=${VAL:-data_config/tvg_val.yaml}
  TRAIN_ARGS=(profile=gpu)
  SELECT_BACKEND=(--backend vllm)
fi

# Selection sees the records as training does (video budget, template, response length): the same overrides.
SELECT_SETTINGS=()
for override in "${TRAIN_ARGS[@]}" "$@"; do SELECT_SETTINGS+=(--set "$override"); done

for round in $(seq 1 "$ROUNDS"); do
  dir="$OUT/round_$round"
  echo "== round $round/$ROUNDS: select ($STRATEGY, k=$K) with $MODEL"
  # shellcheck disable=SC2086
  if ! verl-video select "$DATA" --model "$MODEL" -k "$K" --strategy "$STRATEGY" -o "$dir/select" \
      "${SELECT_BACKEND[@]}" "${SELECT_SETTINGS[@]}" $SELECT_ARGS; then
    # Exit 1: nothing left to train on (e.g. every record outside the IoU band); the rounds so far stand.
    echo "== round $round/$ROUNDS: selection failed or kept nothing; stopping with $MODEL" >&2
    [[ -f "$OUT/rounds.txt" ]] && cat "$OUT/rounds.txt"
    exit 1
  fi
  counts=$(python - "$dir/select/selection.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["counts"]
dropped = ", ".join("%s %s" % kv for kv in c.items() if kv[0] != "kept")
print("kept %d of %d (dropped: %s)" % (c["kept"], r["records"], dropped))
PY
)
  echo "== round $round/$ROUNDS: GRPO from $MODEL on the selection: $counts"
  python -m verl_video.main "${TRAIN_ARGS[@]}" \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$dir/select/data_config.yaml" \
    data.val_files="$VAL" \
    trainer.default_local_dir="$dir/checkpoints" \
    ${STEPS:+trainer.total_training_steps="$STEPS"} \
    "$@" 2>&1 | tee "$dir/train.log"
  step=$(cat "$dir/checkpoints/latest_checkpointed_iteration.txt")
  actor="$dir/checkpoints/global_step_$step/actor"
  echo "== round $round/$ROUNDS: merge $actor"
  python -m verl.model_merger merge --backend fsdp --local_dir "$actor" --target_dir "$actor/huggingface_merged"
  echo "round $round: start model $MODEL; selection $counts; trained $step steps; checkpoint $actor" \
    >> "$OUT/rounds.txt"
  MODEL="$actor/huggingface_merged"
done
cat "$OUT/rounds.txt"
echo "== done: last model $MODEL"
