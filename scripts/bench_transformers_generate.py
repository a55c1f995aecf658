#!/usr/bin/env python3
"""Times transformers' `generate` on the shapes of `vineppo bench generate`.

Usage:
    cargo bench -p vine-rollout --bench generate -- --hf-dir /tmp/vbench
    python scripts/bench_transformers_generate.py /tmp/vbench [--threads 2] [--repeats 3]

The Rust benchmark saves its random-init model as a Hugging Face directory together with
`bench.json`, the list of scenarios (`prompts` distinct prompts of `prompt_len` tokens, `k`
samples each, `new_tokens` generated per sample). This script loads that model in transformers
and runs `generate` with the same sampling settings (T = 0.6, top-p 0.9, EOS suppressed so every
row generates exactly `new_tokens`), the same thread count and the same batch, and prints
end-to-end generated tokens per second (prefill included) and per CPU-second of the process,
like the Rust table. `k > 1` uses
`num_return_sequences=k`, which copies each prompt `k` times before prefilling.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="runs per scenario; the fastest is reported")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    model.eval()
    scenarios = json.loads((args.model_dir / "bench.json").read_text())
    vocab = model.config.vocab_size
    n_params = sum(p.numel() for p in model.parameters())

    def generate(prompts, k, prompt_len, new_tokens):
        ids = torch.randint(2, vocab, (prompts, prompt_len))
        with torch.inference_mode():
            start, cpu = time.perf_counter(), time.process_time()
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=0.6,
                top_p=0.9,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                num_return_sequences=k,
                pad_token_id=0,
            )
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        generated = out.shape[0] * (out.shape[1] - prompt_len)
        return generated, seconds, cpu_seconds

    generate(2, 1, 8, 8)  # warm-up
    print(f"transformers generate: {n_params / 1e6:.1f}M-parameter model, {args.threads} threads")
    print(
        f"{'scenario':<22} {'rows':>5} {'prefix':>7} {'new':>5} {'tokens':>8} {'seconds':>8} "
        f"{'tok/s':>8} {'tok/cpu-s':>10}"
    )
    for s in scenarios:
        best = None
        for _ in range(args.repeats):
            run = generate(s["prompts"], s["k"], s["prompt_len"], s["new_tokens"])
            if best is None or run[1] < best[1]:
                best = run
        generated, seconds, cpu_seconds = best
        rows = s["prompts"] * s["k"]
        print(
            f"{s['name']:<22} {rows:>5} {s['prompt_len']:>7} {s['new_tokens']:>5} "
            f"{generated:>8} {seconds:>8.2f} {generated / seconds:>8.0f} {generated / cpu_seconds:>10.0f}"
        )


if __name__ == "__main__":
    main()
