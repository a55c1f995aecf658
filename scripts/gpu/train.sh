#!/usr/bin/env bash
# Training throughput (forward + backward + AdamW with f32 masters) and MFU in bf16 (about
# 5 minutes): 1.1B at 4 × 512 and 2 × 1024 tokens (the second needs ~68 GB, see docs/gpu.md),
# 0.5B at 8 × 512. A size that runs out of memory is reported and skipped.
# Results: $OUT/train-*.json.
source "$(dirname "$0")/common.sh"
run() {
  local shape=$1 batch=$2 seq=$3 name="train-$1-$2x$3"
  smi_start "$name"
  "$BIN" gpu train --shape "$shape" --device "$DEVICE" --dtype bf16 --batch "$batch" --seq "$seq" --steps 5 \
    --peak-tflops 989 --json "$OUT/$name.json" 2>&1 | tee -a "$OUT/train.log" || true
  smi_stop "$name" | tee -a "$OUT/train.log"
}
if ((SMOKE)); then
  run tiny 2 32
else
  run 1.1b 4 512
  run 1.1b 2 1024
  run 0.5b 8 512
fi
