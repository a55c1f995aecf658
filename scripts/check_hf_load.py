#!/usr/bin/env python3
"""Checks that transformers loads model directories written by vineppo to the same logits.

    VINEPPO_HF_EXPORT_DIR=/tmp/export cargo test --release -p vine-model --test hf_export
    python scripts/check_hf_load.py /tmp/export/llama /tmp/export/qwen2-bf16 ...

Each DIR must have a sibling `DIR.expected.json` (written by the Rust test) with the token ids,
the text they encode and the logits our implementation computes for them. The script loads DIR
with `AutoModelForCausalLM` and `AutoTokenizer` (in f32), checks that the tokenizer encodes the
text to the same ids and that the logits agree within 1e-4, and exits non-zero otherwise.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TOLERANCE = 1e-4


def check(model_dir: Path) -> bool:
    expected = json.loads(Path(str(model_dir).rstrip("/") + ".expected.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = expected["ids"]
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    encoded = bos + tok(expected["text"], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    ours = torch.tensor(expected["logits"]).reshape(logits.shape)
    diff = (logits - ours).abs().max().item()
    # The written config must describe the same RoPE (legacy `rope_theta`/`rope_scaling`).
    inv_freq = model.model.rotary_emb.inv_freq.float()
    rope_diff = ((inv_freq - torch.tensor(expected["inv_freq"])).abs() / inv_freq).max().item()
    ok = diff < TOLERANCE and encoded == ids and rope_diff < 1e-6
    print(
        f"{model_dir}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} "
        f"params, dtype in config {model.config.dtype}, tokenizer ids "
        f"{'match' if encoded == ids else 'DIFFER'}, rope {model.config.rope_parameters}, "
        f"max rel inv_freq diff {rope_diff:.1e}, max |logit diff| {diff:.2e} -> "
        f"{'OK' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    dirs = [Path(d) for d in sys.argv[1:]]
    if not dirs:
        sys.exit(__doc__)
    results = [check(d) for d in dirs]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
