//! A fresh model directory for `vineppo sft` with `[model.init]`: a byte-level BPE tokenizer
//! trained on the task's training prompts and solutions (digits split), and a Llama with
//! Hugging Face-style random weights. The directory is a normal checkpoint, so SFT then proceeds
//! exactly as from a downloaded model.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use vine_data::Task;
use vine_model::{ModelConfig, RopeConfig, SaveOptions, Transformer};

use crate::config::sft::InitSection;
use crate::tokenizer_train::{save_tokenizer_dir, train_bpe, SPECIALS};

/// Writes tokenizer files, `config.json`, `model.safetensors` and `generation_config.json`
/// into `dir` (which must exist).
pub fn write_fresh_model(
    init: &InitSection,
    task: &Task,
    dir: &Path,
    seed: u64,
) -> Result<ModelConfig> {
    let vocab = match &init.tokenizer {
        Some(src) => {
            for name in [
                "tokenizer.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
            ] {
                let from = src.join(name);
                if from.is_file() {
                    std::fs::copy(&from, dir.join(name))
                        .with_context(|| format!("copying `{}`", from.display()))?;
                }
            }
            vine_model::Tokenizer::from_dir(dir)?.vocab_size()
        }
        None => {
            let texts = task
                .train()
                .iter()
                .map(|ex| format!("{}{}", task.query(ex), task.target(ex)));
            let tok = train_bpe(texts, init.vocab_size)?;
            save_tokenizer_dir(&tok, dir, init.max_position_embeddings)?;
            tok.get_vocab_size(true)
        }
    };
    let mut cfg = ModelConfig::tiny_llama(
        vocab,
        init.hidden_size,
        init.num_hidden_layers,
        init.num_attention_heads,
        init.num_key_value_heads,
        init.intermediate_size,
    );
    cfg.rope = RopeConfig {
        theta: init.rope_theta,
        ..RopeConfig::default()
    };
    cfg.max_position_embeddings = init.max_position_embeddings;
    cfg.tie_word_embeddings = init.tie_word_embeddings;
    cfg.initializer_range = init.initializer_range;
    if init.tokenizer.is_none() {
        // Ids of the trained tokenizer's specials: <s>, </s>, <pad>.
        debug_assert_eq!(SPECIALS.len(), 3);
        cfg.bos_token_id = Some(0);
        cfg.eos_token_ids = vec![1];
        cfg.pad_token_id = Some(2);
    }
    let model = Transformer::new_random(cfg.clone(), seed, DType::F32, &Device::Cpu, false)?;
    model.write_hf_files(dir, &SaveOptions::default())?;
    Ok(cfg)
}
