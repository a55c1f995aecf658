//! Training a small byte-level BPE tokenizer for models built from scratch (the built-in `arith`
//! model).
//!
//! Digits are split individually before BPE (as Llama-3/Qwen2 do for numbers), so arithmetic is
//! done digit by digit and no number is a single opaque token. The byte-level alphabet makes
//! every string encodable. Special tokens: `<s>` (BOS, id 0), `</s>` (EOS, id 1), `<pad>` (id 2).
//! The directory written is what `transformers.AutoTokenizer.from_pretrained` loads as a
//! `PreTrainedTokenizerFast`.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::atomic::write_file;

/// Special tokens, in id order.
pub const SPECIALS: [&str; 3] = ["<s>", "</s>", "<pad>"];

/// Trains a byte-level BPE tokenizer with `vocab_size` entries (specials included) on `texts`.
pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let alphabet = ByteLevel::alphabet();
    if vocab_size < alphabet.len() + SPECIALS.len() {
        anyhow::bail!(
            "vocab_size {vocab_size} is below the byte alphabet plus specials ({})",
            alphabet.len() + SPECIALS.len()
        );
    }
    let mut tokenizer = Tokenizer::new(BPE::default());
    let pre: Vec<PreTokenizerWrapper> = vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ];
    tokenizer.with_pre_tokenizer(Some(Sequence::new(pre)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = SPECIALS
        .iter()
        .map(|s| AddedToken::from(s.to_string(), true))
        .collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .special_tokens(specials)
        .initial_alphabet(alphabet.into_iter().collect())
        .show_progress(false)
        .build();
    let mut wrapped: tokenizers::models::TrainerWrapper = trainer.into();
    tokenizer
        .train(&mut wrapped, texts)
        .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
    Ok(tokenizer)
}

/// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `dir`.
pub fn save_tokenizer_dir(
    tokenizer: &Tokenizer,
    dir: &Path,
    model_max_length: usize,
) -> Result<()> {
    let json = tokenizer
        .to_string(true)
        .map_err(|e| anyhow!("serialising the tokenizer: {e}"))?;
    write_file(&dir.join("tokenizer.json"), json.as_bytes())?;
    let added: serde_json::Map<String, serde_json::Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let entry = serde_json::json!({"content": s, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true});
            (id.to_string(), entry)
        })
        .collect();
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIALS[0],
        "eos_token": SPECIALS[1],
        "pad_token": SPECIALS[2],
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length,
        "added_tokens_decoder": added,
    });
    let map = serde_json::json!({"bos_token": SPECIALS[0], "eos_token": SPECIALS[1], "pad_token": SPECIALS[2]});
    write_file(
        &dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    write_file(
        &dir.join("special_tokens_map.json"),
        serde_json::to_string_pretty(&map)?.as_bytes(),
    )
    .with_context(|| format!("writing the tokenizer into `{}`", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        (0..300)
            .map(|i| {
                format!(
                    "Mia has {} apples. She buys {} more.\nShe has {} + {} = {} apples.\n#### {}",
                    i,
                    i * 7 % 97,
                    i,
                    i * 7 % 97,
                    i + i * 7 % 97,
                    i + i * 7 % 97
                )
            })
            .collect()
    }

    #[test]
    fn digits_are_single_tokens_and_text_round_trips() {
        let tok = train_bpe(corpus().into_iter(), 320).unwrap();
        assert!(tok.get_vocab_size(true) <= 320);
        assert_eq!(tok.token_to_id("<s>"), Some(0));
        assert_eq!(tok.token_to_id("</s>"), Some(1));
        let text = "Mia has 1234 apples. Ünïcode too!\n#### 1234";
        let enc = tok.encode(text, false).unwrap();
        let pieces: Vec<String> = enc
            .get_ids()
            .iter()
            .map(|&i| tok.id_to_token(i).unwrap())
            .collect();
        for d in ["1", "2", "3", "4"] {
            assert!(pieces.iter().any(|p| p == d), "{pieces:?}");
        }
        assert!(
            !pieces
                .iter()
                .any(|p| p.chars().filter(|c| c.is_ascii_digit()).count() > 1),
            "{pieces:?}"
        );
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
    }

    #[test]
    fn saved_dir_reloads() {
        let tok = train_bpe(corpus().into_iter(), 300).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_tokenizer_dir(&tok, dir.path(), 512).unwrap();
        let back = Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
        let ids = back
            .encode("She has 12 + 7 = 19 apples.", false)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(
            ids,
            tok.encode("She has 12 + 7 = 19 apples.", false)
                .unwrap()
                .get_ids()
        );
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("tokenizer_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["eos_token"], "</s>");
    }
}
