#!/usr/bin/env bash
# One full VinePPO iteration, end to end through `vineppo train`, on a random 1.1B model at HF
# init in bf16 on the `arith` task: 64 prompts × 8 samples of up to 256 tokens, K = 9 MC
# rollouts per value state, 2 PPO epochs of 8 minibatches (micro-batches of 8), evaluation on
# 32 problems. Records the stage timings and the peak GPU memory (nvidia-smi, every 100 ms)
# (about 6 minutes, most of it writing and loading the 2.2 GB checkpoint and sampling).
# Random weights rarely emit newlines, so episodes have few reasoning steps and the MC stage
# is lighter than in real training: scripts/gpu/mc.sh measures that stage at a realistic size.
source "$(dirname "$0")/common.sh"
shape=1.1b prompts=64 samples=8 new=256 k=9 minibatch=64 micro=8 limit=32
((SMOKE)) && shape=tiny prompts=4 samples=2 new=8 k=2 minibatch=8 micro=4 limit=2
MODEL="${MODEL_DIR:-/tmp/vineppo-$shape}"
[[ -f "$MODEL/model.safetensors" ]] || "$BIN" gpu init-model --shape "$shape" --out "$MODEL"
RUN="$(mktemp -d)/run"
cat >"$OUT/iteration.toml" <<TOML
[model]
path = "$MODEL"
device = "$DEVICE"
dtype = "bf16"
[task]
kind = "arith"
[rollout]
prompts_per_iteration = $prompts
samples_per_prompt = $samples
temperature = 0.6
top_p = 0.9
max_new_tokens = $new
max_context = 512
[credit]
kind = "vine"
mc_rollouts = $k
[ppo]
epochs = 2
minibatch_size = $minibatch
micro_batch_size = $micro
[optim]
lr = 1e-6
[eval]
at_start = false
samples = 1
limit = $limit
max_new_tokens = 128
[run]
iterations = 1
seed = 1
save_every = 0
max_batch = 256
out_dir = "$RUN"
progress = false
TOML
smi_start iteration
start=$SECONDS
"$BIN" train --config "$OUT/iteration.toml" 2>&1 | tee "$OUT/iteration.log" || true
echo "wall clock of vineppo train: $((SECONDS - start)) s" | tee -a "$OUT/iteration.log"
smi_stop iteration | tee -a "$OUT/iteration.log"
cp "$RUN/metrics.jsonl" "$OUT/iteration-metrics.jsonl" 2>/dev/null || true
tail -n1 "$RUN/metrics.jsonl" | tr ',' '\n' | grep -E 'timing|vine/|reward|response/|ppo/grad|gpu/' | tee -a "$OUT/iteration.log" || true
