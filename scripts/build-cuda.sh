#!/usr/bin/env bash
# Builds the CUDA-enabled `vineppo` binary on a machine without a GPU or a CUDA install.
#
# Everything comes from PyPI's CUDA 13.0 wheels (nvcc, headers, cuBLAS, cuRAND, NVRTC, the
# runtime), pinned to 13.0 because the GPU machines run driver 580 (CUDA 13.0): a newer nvcc
# emits PTX that driver may refuse to JIT. No wheel ships libcuda (it comes with the driver), so
# a link-time stub exporting the driver API names of the cudarc version in Cargo.lock is
# generated; the real libcuda.so.1 is used at run time.
#
# Usage: scripts/build-cuda.sh            (from anywhere inside the repository)
# Environment:
#   CUDA_COMPUTE_CAP   GPU architecture to compile kernels for (default 90: H100/H200)
#   VINEPPO_CUDA_DIR   wheel cache, toolkit and outputs (default <repo>/.cuda, git-ignored)
#   PYTHON             interpreter whose pip downloads the wheels (default python3)
#   NICE               niceness of the build (default 19: the build takes ~10 CPU-minutes)
#
# Outputs: <dir>/dist/vineppo (stripped) and <dir>/carry/vineppo.gz, the only file a GPU machine
# needs (carry the `.cuda/carry` folder: the stripped binary alone is ~60 MB, nearly all of the
# device tool's 64 MiB limit, gzipped ~15 MB).
# The cargo build goes to <repo>/target/cuda so it never invalidates the CPU build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${VINEPPO_CUDA_DIR:-$ROOT/.cuda}"
PYTHON="${PYTHON:-python3}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
NICE="${NICE:-19}"

# CUDA 13.0 toolkit pieces; versions are the ones that built and link together.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cublas==13.1.0.3
  nvidia-curand==10.4.0.35
  nvidia-cuda-nvrtc==13.0.88
)
# Libraries cudarc links by their unversioned names.
LIBS=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13)

step() { printf '\n== %s\n' "$*"; }

fetch_wheels() {
  mkdir -p "$DIR/wheels"
  local missing=()
  for w in "${WHEELS[@]}"; do
    local name="${w%%==*}" version="${w##*==}"
    ls "$DIR/wheels/${name//-/_}-${version}-"*.whl >/dev/null 2>&1 || missing+=("$w")
  done
  if ((${#missing[@]})); then
    step "downloading ${#missing[@]} CUDA wheels from PyPI"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
      --python-version 3.12 -d "$DIR/wheels" "${missing[@]}"
  fi
}

unpack_toolkit() {
  CUDA="$DIR/toolkit/nvidia/cu13"
  if [[ ! -x "$CUDA/bin/nvcc" || "$DIR/wheels" -nt "$DIR/toolkit" ]]; then
    step "unpacking the toolkit into $DIR/toolkit"
    rm -rf "$DIR/toolkit"
    mkdir -p "$DIR/toolkit"
    for w in "$DIR"/wheels/*.whl; do
      unzip -q -o "$w" 'nvidia/*' -d "$DIR/toolkit"
    done
  fi
  [[ -x "$CUDA/bin/nvcc" ]] || { echo "error: no nvcc in $CUDA/bin after unpacking" >&2; exit 1; }
  for l in "${LIBS[@]}"; do
    [[ -e "$CUDA/lib/$l" ]] || { echo "error: $CUDA/lib/$l missing from the wheels" >&2; exit 1; }
    ln -sf "$l" "$CUDA/lib/${l%%.so*}.so"
  done
}

# The cudarc version cargo will build, read from Cargo.lock.
cudarc_source() {
  local version
  version="$(awk '/^name = "cudarc"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock")"
  [[ -n "$version" ]] || { echo "error: cudarc is not in Cargo.lock" >&2; exit 1; }
  local home="${CARGO_HOME:-$HOME/.cargo}"
  local src
  src="$(ls -d "$home"/registry/src/*/"cudarc-$version" 2>/dev/null | head -n1 || true)"
  if [[ -z "$src" ]]; then
    (cd "$ROOT" && cargo fetch --quiet)
    src="$(ls -d "$home"/registry/src/*/"cudarc-$version" | head -n1)"
  fi
  echo "$src"
}

# libcuda.so exporting every driver function cudarc declares; used only to link.
make_libcuda_stub() {
  local src sys stub="$CUDA/lib/stubs/libcuda.so"
  src="$(cudarc_source)"
  sys="$src/src/driver/sys/mod.rs"
  [[ -f "$sys" ]] || { echo "error: $sys not found (cudarc layout changed?)" >&2; exit 1; }
  mkdir -p "$CUDA/lib/stubs"
  if [[ ! -f "$stub" || "$sys" -nt "$stub" ]]; then
    step "generating the libcuda link stub from $(basename "$src")"
    grep -oE '^\s+fn (cu[A-Za-z0-9_]+)\(' "$sys" |
      sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' | sort -u >"$DIR/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$DIR/libcuda_stub.c"
  fi
  ln -sf libcuda.so "$CUDA/lib/stubs/libcuda.so.1"
}

build() {
  export CUDA_HOME="$CUDA" PATH="$CUDA/bin:$PATH"
  export LIBRARY_PATH="$CUDA/lib:$CUDA/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
  step "cargo build --release --features cuda -p vineppo (sm_$CUDA_COMPUTE_CAP, nice $NICE)"
  local start=$SECONDS
  (cd "$ROOT" && nice -n "$NICE" cargo build --release --features cuda -p vineppo \
    --target-dir "$ROOT/target/cuda")
  BUILD_SECONDS=$((SECONDS - start))
}

package() {
  local bin="$ROOT/target/cuda/release/vineppo"
  mkdir -p "$DIR/dist" "$DIR/carry"
  strip -o "$DIR/dist/vineppo" "$bin"
  gzip -9 -c "$DIR/dist/vineppo" >"$DIR/carry/vineppo.gz"
}

report() {
  local out="$DIR/dist"
  step "done in ${BUILD_SECONDS}s of build time"
  printf 'binary:   %s (%s bytes; %s: %s bytes)\n' "$out/vineppo" \
    "$(stat -c %s "$out/vineppo")" "$DIR/carry/vineppo.gz" "$(stat -c %s "$DIR/carry/vineppo.gz")"
  printf 'kernels:  sm_%s\n' "$CUDA_COMPUTE_CAP"
  printf 'needs:   '
  readelf -d "$out/vineppo" | awk '/NEEDED/ { gsub(/[\[\]]/, "", $5); printf " %s", $5 }'
  printf '\n'
  cat <<EOF

Here (no GPU) it starts only with the link stub standing in for the driver:
  LD_LIBRARY_PATH=$CUDA/lib/stubs:$CUDA/lib $out/vineppo --help

On a GPU machine (driver 580+, with torch 2.11+cu130's nvidia wheels installed):
  gunzip -c vineppo.gz > vineppo && chmod +x vineppo
  export LD_LIBRARY_PATH="\$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  ./vineppo train --config configs/gsm8k/vineppo.toml --set model.device=cuda --set model.dtype=bf16
See docs/gpu.md and scripts/gpu/ for the device checks and benchmarks.
EOF
}

fetch_wheels
unpack_toolkit
make_libcuda_stub
build
package
report
