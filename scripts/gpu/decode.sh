#!/usr/bin/env bash
# Decode throughput of the engine on random 1.1B (TinyLlama/RhoMath shape) and 0.5B (Qwen2.5)
# models in bf16 at batch 64/128/256, 128 prompt + 128 generated tokens, against the HBM
# roofline (about 4 minutes). Results: $OUT/decode-*.json.
source "$(dirname "$0")/common.sh"
shapes="1.1b 0.5b" batch=64,128,256 prompt=128 new=128
((SMOKE)) && shapes=tiny batch=4,8 prompt=16 new=8
for shape in $shapes; do
  "$BIN" gpu decode --shape "$shape" --device "$DEVICE" --dtype bf16 --batch "$batch" \
    --prompt-len "$prompt" --new-tokens "$new" --hbm-gbps "$HBM_GBPS" \
    --json "$OUT/decode-$shape.json" 2>&1 | tee -a "$OUT/decode.log"
done
