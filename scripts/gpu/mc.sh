#!/usr/bin/env bash
# VinePPO's MC pattern on the random 1.1B model in bf16: 16 trajectories of 512 tokens, 6 value
# states each (the prompt and 5 step boundaries), K = 9 continuations of 128 tokens per state,
# 256 rows at once, with and without prefix forking (about 3 minutes). Results: $OUT/mc.json.
source "$(dirname "$0")/common.sh"
args=(--shape 1.1b --prefixes 16 --states 6 --k 9 --prefix-len 512 --new-tokens 128 --max-batch 256)
((SMOKE)) && args=(--shape tiny --prefixes 2 --states 3 --k 3 --prefix-len 32 --new-tokens 4 --max-batch 16)
"$BIN" gpu mc "${args[@]}" --device "$DEVICE" --dtype bf16 \
  --json "$OUT/mc.json" 2>&1 | tee "$OUT/mc.log"
