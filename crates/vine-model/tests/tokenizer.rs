//! The tokenizer against transformers' encodings (`fixtures/*/encodings.json`, written by
//! `scripts/make_parity_fixtures.py::encodings`), special-token resolution, and the
//! incremental decoder's offsets (property tests on a byte-level BPE and a SentencePiece-style
//! tokenizer).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;
use vine_model::{ModelError, Tokenizer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn encodings_match_transformers() {
    for name in ["bpe", "spm"] {
        let tok = Tokenizer::from_dir(fixture(name)).unwrap();
        let text = std::fs::read_to_string(fixture(name).join("encodings.json")).unwrap();
        let reference: Value = serde_json::from_str(&text).unwrap();
        for case in reference["cases"].as_array().unwrap() {
            let s = case["text"].as_str().unwrap();
            let (ids, offsets) = tok.encode_with_offsets(s, false).unwrap();
            assert_eq!(ids, u32s(&case["ids"]), "{name}: {s:?}");
            let expected: Vec<(usize, usize)> = case["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().unwrap() as usize,
                        p[1].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            assert_eq!(offsets, expected, "{name}: {s:?}");
            assert_eq!(
                tok.encode(s, true).unwrap(),
                u32s(&case["ids_with_specials"])
            );
            assert_eq!(
                tok.decode(&ids, false).unwrap(),
                case["decoded"].as_str().unwrap()
            );
            let (text, _) = tok.decode_with_offsets(&ids).unwrap();
            assert_eq!(text, s, "{name}: round trip");
        }
        let as_id = |v: &Value| v.as_u64().map(|x| x as u32);
        assert_eq!(tok.bos_id(), as_id(&reference["bos_token_id"]));
        assert_eq!(tok.eos_id(), as_id(&reference["eos_token_id"]));
        assert_eq!(tok.pad_id(), as_id(&reference["pad_token_id"]));
    }
}

#[test]
fn special_tokens_resolve_like_transformers() {
    // Qwen-style: `bos_token: null` in tokenizer_config.json wins over config.json's
    // bos_token_id; generation_config.json lists a second stop id.
    let qwen = Tokenizer::from_dir(fixture("qwen2")).unwrap();
    assert_eq!(qwen.bos_id(), None);
    assert_eq!(qwen.eos_id(), Some(1));
    assert_eq!(qwen.stop_ids(), &[1, 2]);
    assert_eq!(qwen.pad_id(), Some(2));
    // SentencePiece-style with `add_bos_token: true`.
    let spm = Tokenizer::from_dir(fixture("spm")).unwrap();
    assert_eq!(spm.encode("hi", true).unwrap()[0], spm.bos_id().unwrap());
    assert_ne!(spm.encode("hi", false).unwrap()[0], spm.bos_id().unwrap());
}

#[test]
fn add_bos_token_false_removes_the_post_processor_bos() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("spm/tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>", "add_bos_token": false}"#,
    )
    .unwrap();
    let tok = Tokenizer::from_dir(dir.path()).unwrap();
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(
        tok.encode("hi", true).unwrap(),
        tok.encode("hi", false).unwrap()
    );
}

#[test]
fn bad_tokenizer_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").unwrap();
    let err = Tokenizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Tokenizer { .. }), "{err}");

    std::fs::copy(
        fixture("bpe/tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"eos_token": "<nope>"}"#,
    )
    .unwrap();
    let err = Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("eos_token") && err.contains("<nope>"), "{err}");
}

/// Byte-fallback tokens whose run is not valid UTF-8 turn into replacement characters only
/// once the whole run is decoded, so a prefix of the ids does not decode to a prefix of the
/// text; the tokens after the run must still get their place in the full text (a case the
/// property test below found).
#[test]
fn offsets_after_an_invalid_byte_run() {
    let tok = Tokenizer::from_dir(fixture("spm")).unwrap();
    let (text, offsets) = tok.decode_with_offsets(&[3, 35, 131, 0, 0]).unwrap();
    assert_eq!(text, "\u{FFFD}\u{FFFD}\u{FFFD}<unk><unk>");
    assert_eq!(offsets, vec![0, 0, 0, 9, 14]);
}

/// Checks the contract of `decode_with_offsets` on `ids`.
fn check_offsets(tok: &Tokenizer, ids: &[u32]) -> Result<(), TestCaseError> {
    let (text, offsets) = tok.decode_with_offsets(ids).unwrap();
    prop_assert_eq!(&text, &tok.decode(ids, false).unwrap());
    prop_assert_eq!(offsets.len(), ids.len());
    for (k, &off) in offsets.iter().enumerate() {
        prop_assert!(
            text.is_char_boundary(off),
            "offset {} not on a char boundary",
            off
        );
        if k > 0 {
            prop_assert!(off >= offsets[k - 1]);
        }
        // Where the prefix decodes to a final piece of the text, the offset is its length.
        let prefix = tok.decode(&ids[..k], false).unwrap();
        if !prefix.ends_with('\u{FFFD}') && text.starts_with(&prefix) {
            prop_assert_eq!(off, prefix.len(), "token {}", k);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn offsets_of_random_ids_agree_with_full_decodes(
        ids in proptest::collection::vec(0u32..420, 0..40),
        spm in any::<bool>(),
    ) {
        let tok = Tokenizer::from_dir(fixture(if spm { "spm" } else { "bpe" })).unwrap();
        let ids: Vec<u32> = ids.into_iter().map(|i| i % tok.vocab_size() as u32).collect();
        check_offsets(&tok, &ids)?;
    }

    #[test]
    fn offsets_of_encoded_text_are_token_starts(
        text in "[a-zA-Z0-9 +=\\n.,éπ€😀]{0,60}",
        spm in any::<bool>(),
    ) {
        let tok = Tokenizer::from_dir(fixture(if spm { "spm" } else { "bpe" })).unwrap();
        let ids = tok.encode(&text, false).unwrap();
        let (decoded, offsets) = tok.decode_with_offsets(&ids).unwrap();
        prop_assert_eq!(&decoded, &text);
        check_offsets(&tok, &ids)?;
        // On ASCII text every token starts where the encoder says it does.
        if text.is_ascii() && !spm {
            let (_, spans) = tok.encode_with_offsets(&text, false).unwrap();
            let starts: Vec<usize> = spans.iter().map(|s| s.0).collect();
            prop_assert_eq!(offsets, starts);
        }
    }
}
