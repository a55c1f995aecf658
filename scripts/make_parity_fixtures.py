#!/usr/bin/env python3
"""Builds the parity fixtures of `crates/vine-model/tests/fixtures/` with transformers.

Run by developers when the fixtures must change (CI has no Python ML stack and only reads the
committed files):

    python scripts/make_parity_fixtures.py            # writes crates/vine-model/tests/fixtures
    python scripts/make_parity_fixtures.py OUT_DIR

Everything is seeded, so a rerun with the same package versions (scripts/requirements-dev.txt)
reproduces the files. It writes:

- `bpe/`: a byte-level BPE tokenizer (digits split individually) trained on a synthetic
  arithmetic/English corpus generated here, saved by transformers (`tokenizer.json`,
  `tokenizer_config.json`), plus `encodings.json` (ids and byte offsets of test strings).
- `spm/`: a SentencePiece-style BPE tokenizer (Metaspace, byte fallback) and its encodings.
- `llama/`: a tiny random LlamaForCausalLM (GQA 4:2, llama3 RoPE scaling, untied head, 2 layers,
  hidden 64), f32, one `model.safetensors`; `config_v5.json` is the same config in the
  transformers-v5 `rope_parameters` layout; `reference.json` holds the numbers.
- `qwen2/`: a tiny random Qwen2ForCausalLM (q/k/v bias, tied embeddings, vocab_size larger than
  the tokenizer), bf16, sharded into two files with an index; `reference.json`.

Weights are drawn with a larger std than HF's 0.02 (and norm weights/biases are perturbed) so
that logits are far from uniform and every weight matters.
"""

import json
import random
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "crates" / "vine-model" / "tests" / "fixtures"

PROMPTS = [
    "Problem: Tom has 12 apples and buys 7 more. How many apples does he have?\nSolution:",
    "Problem: What is 3 + 4?\nSolution:",
]
CONTINUATION = " He has 12 + 7 = 19 apples.\n#### 19"
TEST_STRINGS = [
    "Problem: 1234 + 56 = 1290",
    "  leading spaces and trailing  ",
    "Prices: 5€ or £3, café naïve, π ≈ 3.14159, x ≤ y 😀",
    "line one\n\nline two\twith tab",
    "",
]


def corpus(rng: random.Random) -> list[str]:
    """Synthetic arithmetic word problems and English sentences, with a little non-ASCII."""
    names = ["Tom", "Ana", "Li", "Sam", "Zoë", "José", "Mia", "Omar"]
    things = ["apples", "books", "coins", "pencils", "cookies", "marbles", "cafés", "euros (€)"]
    words = (
        "the a of and to in is was he she it they has have had buys sells gives more less "
        "than each how many much what total left after before then so answer step first next "
        "finally problem solution because therefore number numbers equals times divided plus"
    ).split()
    lines = []
    for _ in range(1500):
        a, b = rng.randint(0, 999), rng.randint(0, 99)
        n, t = rng.choice(names), rng.choice(things)
        op = rng.choice(["+", "-", "*"])
        res = {"+": a + b, "-": a - b, "*": a * b}[op]
        lines.append(
            f"Problem: {n} has {a} {t} and gets {b} more. How many {t} does {n} have?\n"
            f"Solution: {n} has {a} {op} {b} = {res} {t}.\n#### {res}"
        )
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 15))).capitalize() + ".")
    return lines


def train_bpe(lines: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|pad|>",
    )


def train_spm(lines: list[str]) -> PreTrainedTokenizerFast:
    """Llama-2-style: Metaspace pre-tokenizer, byte fallback, `▁` decoded back to spaces."""
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
        show_progress=False,
    )
    # ASCII-only training text, so every non-ASCII character must use byte fallback.
    tok.train_from_iterator([l.encode("ascii", "ignore").decode() for l in lines], trainer)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", add_bos_token=True
    )


def byte_offsets(text: str, char_offsets) -> list[list[int]]:
    """transformers returns char offsets; the Rust side uses byte offsets."""
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + len(ch.encode()))
    return [[prefix[s], prefix[e]] for s, e in char_offsets]


def encodings(tok: PreTrainedTokenizerFast) -> dict:
    out = []
    for s in TEST_STRINGS:
        enc = tok(s, add_special_tokens=False, return_offsets_mapping=True)
        out.append(
            {
                "text": s,
                "ids": enc["input_ids"],
                "offsets": byte_offsets(s, enc["offset_mapping"]),
                "ids_with_specials": tok(s, add_special_tokens=True)["input_ids"],
                "decoded": tok.decode(enc["input_ids"]),
            }
        )
    return {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "cases": out,
    }


def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial norm weights and biases (HF init makes them 1 and 0)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def token_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(ids[t+1] | ids[..t]) with HF's own position ids from the attention mask."""
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
    lp = torch.log_softmax(logits[:, :-1] / temperature, dim=-1)
    return lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def reference(model, tok: PreTrainedTokenizerFast, bos: bool) -> dict:
    def enc(text):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return ([tok.bos_token_id] if bos else []) + ids

    prompt = enc(PROMPTS[0])
    sequence = prompt + tok(CONTINUATION, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([sequence])
    ones = torch.ones_like(ids)
    with torch.no_grad():
        last_logits = model(torch.tensor([prompt])).logits[0, -1].float()
        lp1 = token_logprobs(model, ids, ones, 1.0)[0]
        lp06 = token_logprobs(model, ids, ones, 0.6)[0]
        greedy = list(prompt)
        for _ in range(20):  # full recomputation each step, no stop token
            nxt = model(torch.tensor([greedy])).logits[0, -1].argmax().item()
            greedy.append(nxt)
        rows = [enc(p) for p in PROMPTS]
        width = max(map(len, rows))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        padded = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        batch_lp = token_logprobs(model, padded, mask, 1.0)
    model.zero_grad()
    nll = -token_logprobs(model, ids, ones, 1.0).mean()
    nll.backward()
    grad_sq = sum(p.grad.double().pow(2).sum() for p in model.parameters() if p.grad is not None)
    return {
        "prompt_text": PROMPTS[0],
        "continuation_text": CONTINUATION,
        "batch_texts": PROMPTS,
        "prompt_ids": prompt,
        "last_logits": last_logits.tolist(),
        "sequence_ids": sequence,
        "logprobs": lp1.tolist(),
        "logprobs_t06": lp06.tolist(),
        "greedy_ids": greedy[len(prompt):],
        "batch_ids": padded.tolist(),
        "batch_left_pad": [width - len(r) for r in rows],
        "batch_logprobs": batch_lp.tolist(),
        "nll": nll.item(),
        "grad_norm": grad_sq.sqrt().item(),
    }


def build_llama(tok, out: Path) -> None:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        initializer_range=0.15,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
    )
    model = LlamaForCausalLM(cfg).float().eval()
    perturb(model, torch.Generator().manual_seed(1))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    # Same model, config in the v5 `rope_parameters` layout; and in the legacy layout as the
    # main config.json (what Llama-3.x checkpoints on the Hub carry).
    v5 = json.loads((out / "config.json").read_text())
    (out / "config_v5.json").write_text(json.dumps(v5, indent=2, sort_keys=True) + "\n")
    legacy = dict(v5)
    rope = legacy.pop("rope_parameters")
    legacy["rope_theta"] = rope.pop("rope_theta")
    legacy["rope_scaling"] = rope
    (out / "config.json").write_text(json.dumps(legacy, indent=2, sort_keys=True) + "\n")
    write_reference(LlamaForCausalLM, tok, out, bos=True)


def build_qwen2(tok, out: Path) -> None:
    torch.manual_seed(2)
    cfg = Qwen2Config(
        vocab_size=len(tok) + 64,  # padded embedding rows, as Qwen2 checkpoints have
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        initializer_range=0.15,
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    )
    model = Qwen2ForCausalLM(cfg).eval()
    perturb(model, torch.Generator().manual_seed(3))
    # bf16 checkpoint; the reference is computed in f32 on the bf16-rounded weights.
    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="120KB")
    # Qwen-style special tokens: no BOS; EOS and a second stop id in generation_config.
    qtok = PreTrainedTokenizerFast(
        tokenizer_object=tok.backend_tokenizer, bos_token=None, eos_token="<|end_of_text|>",
        pad_token="<|pad|>",
    )
    qtok.save_pretrained(out)
    gen = json.loads((out / "generation_config.json").read_text())
    gen["eos_token_id"] = [tok.eos_token_id, tok.pad_token_id]
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    write_reference(Qwen2ForCausalLM, qtok, out, bos=False)


def write_reference(cls, tok, out: Path, bos: bool) -> None:
    """Numbers of the saved checkpoint as transformers loads it, in f32 (a model cast to bf16
    in memory would also have its RoPE `inv_freq` buffer rounded)."""
    model = cls.from_pretrained(out, dtype=torch.float32).eval()
    ref = reference(model, tok, bos)
    ref["transformers_tokenizer"] = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    (out / "reference.json").write_text(json.dumps(ref) + "\n")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    lines = corpus(random.Random(0))
    bpe = train_bpe(lines)
    bpe.save_pretrained(out / "bpe")
    (out / "bpe" / "encodings.json").write_text(json.dumps(encodings(bpe), ensure_ascii=False) + "\n")
    spm = train_spm(lines)
    spm.save_pretrained(out / "spm")
    # Llama-2-style checkpoints state `add_bos_token` explicitly; transformers v5 omits it.
    spm_cfg_path = out / "spm" / "tokenizer_config.json"
    spm_cfg = json.loads(spm_cfg_path.read_text())
    spm_cfg.update({"add_bos_token": True, "add_eos_token": False})
    spm_cfg_path.write_text(json.dumps(spm_cfg, indent=2) + "\n")
    (out / "spm" / "encodings.json").write_text(json.dumps(encodings(spm), ensure_ascii=False) + "\n")
    build_llama(bpe, out / "llama")
    build_qwen2(bpe, out / "qwen2")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
