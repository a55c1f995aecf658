#!/usr/bin/env python3
"""The `vineppo gpu decode` and `vineppo gpu train` benchmarks in transformers, for a side-by-side
comparison on the same GPU: the same shapes at random init, bf16, the same batch sizes and
lengths, and the same accounting.

- Decode: `generate` with sampling at temperature 1 and `min_new_tokens` = `max_new_tokens`
  (every row generates them all, as vineppo's ignore-EOS rows do); decode time is
  t(new_tokens) - t(1), which removes the prefill, exactly as vineppo measures it.
- Training: f32 parameters under bf16 autocast with fused AdamW (torch's usual mixed precision;
  vineppo keeps bf16 weights plus f32 masters, the same optimizer state), loss = mean token NLL,
  MFU from 6·N + 12·L·H·T FLOPs per token.

Usage (on the GPU machine, whose python3 has torch and transformers):
    python3 scripts/gpu/transformers_compare.py --out $OUT/transformers.json
"""

import argparse
import json
import time

import torch
import transformers

SHAPES = {
    "1.1b": ("llama", dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                           num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                           tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0)),
    "0.5b": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                           num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                           tie_word_embeddings=True, rms_norm_eps=1e-6, rope_theta=1000000.0)),
}
TRAIN = {"1.1b": [(4, 512), (2, 1024)], "0.5b": [(8, 512)]}  # as scripts/gpu/train.sh


def build(shape, dtype):
    kind, kw = SHAPES[shape]
    cls = transformers.LlamaConfig if kind == "llama" else transformers.Qwen2Config
    cfg = cls(max_position_embeddings=4096, initializer_range=0.02, bos_token_id=0,
              eos_token_id=1, pad_token_id=2, attn_implementation="sdpa", **kw)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.cuda(), cfg


def timed_generate(model, ids, new_tokens):
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                   top_p=1.0, top_k=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                   pad_token_id=2)
    torch.cuda.synchronize()
    return time.perf_counter() - start


@torch.no_grad()
def decode(shape, batches, prompt_len, new_tokens):
    model, cfg = build(shape, torch.bfloat16)
    model.eval()
    rows = []
    warm = torch.randint(3, cfg.vocab_size, (1, 8), device="cuda")
    timed_generate(model, warm, 4)
    for b in batches:
        ids = torch.randint(3, cfg.vocab_size, (b, prompt_len), device="cuda")
        t1 = min(timed_generate(model, ids, 1) for _ in range(2))
        torch.cuda.reset_peak_memory_stats()
        tn = min(timed_generate(model, ids, new_tokens) for _ in range(2))
        steps = new_tokens - 1
        rows.append({
            "batch": b, "prompt_len": prompt_len, "new_tokens": new_tokens,
            "total_s": tn, "prefill_plus_one_s": t1,
            "decode_tokens_per_s": b * steps / (tn - t1),
            "step_ms": (tn - t1) / steps * 1e3,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        })
    del model
    torch.cuda.empty_cache()
    return rows


def train(shape, batch, seq, steps, peak_tflops):
    model, cfg = build(shape, torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    params = sum(p.numel() for p in model.parameters())
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 1):
        ids = torch.randint(3, cfg.vocab_size, (batch, seq), device="cuda")
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step > 0:
            times.append(time.perf_counter() - start)
    step_s = sum(times) / len(times)
    tokens_per_s = batch * seq / step_s
    flops = (6 * params + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq) * tokens_per_s
    del model, opt
    torch.cuda.empty_cache()
    return [{
        "batch": batch, "seq": seq, "steps": steps, "step_s": step_s,
        "tokens_per_s": tokens_per_s, "model_tflops": flops / 1e12,
        "mfu": flops / (peak_tflops * 1e12),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="1.1b,0.5b")
    ap.add_argument("--batch", default="64,128,256")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out", default="transformers.json")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    result = {"torch": torch.__version__, "transformers": transformers.__version__,
              "device_name": torch.cuda.get_device_name(), "shapes": {}}
    for shape in args.shapes.split(","):
        entry = {"decode": decode(shape, batches, args.prompt_len, args.new_tokens)}
        if not args.skip_train:
            entry["train"] = []
            for b, t in TRAIN[shape]:
                try:
                    entry["train"] += train(shape, b, t, args.steps, args.peak_tflops)
                except torch.cuda.OutOfMemoryError as e:
                    entry["train"].append({"batch": b, "seq": t, "error": f"out of memory: {e}"})
                    torch.cuda.empty_cache()
        result["shapes"][shape] = entry
        print(json.dumps({shape: entry}, indent=1), flush=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
