# Sourced by the scripts in scripts/gpu/. Unpacks the CUDA binary built by scripts/build-cuda.sh
# (carried as .cuda/carry/vineppo.gz), puts the CUDA 13 libraries of the machine's torch wheels
# and the driver on LD_LIBRARY_PATH, and prepares $OUT (the device tool's result folder, else
# ./gpu-results). Defines $BIN, $OUT, $ROOT and smi_start/smi_stop.
set -euo pipefail

ulimit -c 0 # the resume check aborts a run on purpose; no core files in the repository

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu-results}"
mkdir -p "$OUT"
DIST="${VINEPPO_DIST:-$ROOT/.cuda/carry}"
FIXTURES="$ROOT/crates/vine-model/tests/fixtures"
# Overrides for trying the scripts without a GPU: VINEPPO_GPU_DEVICE=cpu, SMOKE=1 (tiny shapes
# and sizes), VINEPPO_BIN=target/release/vineppo.
DEVICE="${VINEPPO_GPU_DEVICE:-cuda}"
SMOKE="${SMOKE:-0}"
if [[ -n "${VINEPPO_BIN:-}" ]]; then
  BIN="$VINEPPO_BIN"
else
  BIN=/tmp/vineppo-cuda/vineppo
  if [[ -f "$DIST/vineppo.gz" ]]; then
    if [[ ! -x "$BIN" || "$DIST/vineppo.gz" -nt "$BIN" ]]; then
      mkdir -p "$(dirname "$BIN")"
      gunzip -c "$DIST/vineppo.gz" >"$BIN"
      chmod +x "$BIN"
    fi
  elif [[ ! -x "$BIN" ]]; then
    echo "error: no $DIST/vineppo.gz: run scripts/build-cuda.sh and carry .cuda/carry" >&2
    exit 1
  fi
fi

# cuBLAS, cuRAND and the CUDA runtime from torch's nvidia-* wheels (CUDA 13).
PY="${PYTHON:-python3}"
CU13="$("$PY" -c 'import nvidia, os; print(next((os.path.join(p, "cu13", "lib") for p in nvidia.__path__ if os.path.isdir(os.path.join(p, "cu13", "lib"))), ""))' 2>/dev/null || true)"
if [[ -n "$CU13" && -d "$CU13" ]]; then
  export LD_LIBRARY_PATH="$CU13${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The driver's libcuda, if the loader does not already know it.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
    if [[ -e "$d/libcuda.so.1" ]]; then
      export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
      break
    fi
  done
fi
if [[ "$DEVICE" != cpu ]] && ldd "$BIN" | grep -q 'not found'; then
  ldd "$BIN" >&2
  echo "error: libraries missing for $BIN (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
  exit 1
fi

GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>/dev/null || true
# Memory bandwidth for the decode roofline (GB/s).
case "$GPU_NAME" in
  *H200*) HBM_GBPS=4800 ;;
  *H100*) HBM_GBPS=3350 ;;
  *) HBM_GBPS="${HBM_GBPS:-3350}" ;;
esac

# nvidia-smi's memory.used every 100 ms while a command runs: smi_start NAME ... smi_stop NAME.
smi_start() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/$1.smi" 2>/dev/null &
  SMI_PID=$!
}
smi_stop() {
  kill "$SMI_PID" 2>/dev/null || true
  wait "$SMI_PID" 2>/dev/null || true
  sort -n "$OUT/$1.smi" | tail -n1 | awk '{ printf "peak nvidia-smi memory.used: %.2f GiB\n", $1 / 1024 }'
}

echo "binary: $BIN ($("$BIN" --version)); GPU: ${GPU_NAME:-none}; results: $OUT"
