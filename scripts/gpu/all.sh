#!/usr/bin/env bash
# Every GPU check and benchmark in sequence (about 20 minutes: longer than one 10-minute device
# command, so a device session runs the scripts in two or three calls, e.g. check.sh + mc.sh,
# then decode.sh + train.sh, then iteration.sh + transformers_compare.py).
set -euo pipefail
here="$(dirname "$0")"
bash "$here/check.sh"
bash "$here/mc.sh"
bash "$here/decode.sh"
bash "$here/train.sh"
bash "$here/iteration.sh"
python3 "$here/transformers_compare.py" --out "${OUT:-gpu-results}/transformers.json"
