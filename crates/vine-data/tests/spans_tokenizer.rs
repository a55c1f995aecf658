//! Step spans through a real byte-level BPE tokenizer, trained here on `arith` text: the
//! splitter's byte ranges of a decoded response map to token steps that keep each solution
//! line's computation in its own step, even when tokens straddle line boundaries.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{TokenizerBuilder, TokenizerImpl};
use vine_data::arith::{generate, ArithConfig};
use vine_data::{step_token_starts, token_steps, Example};

type Bpe = TokenizerImpl<BPE, NormalizerWrapper, ByteLevel, PostProcessorWrapper, ByteLevelDecoder>;

/// A BPE over bytes trained on `corpus`. Without the GPT-2 regex, merges cross spaces and
/// newlines, so tokens such as `"marbles.\n"` straddle step boundaries.
fn train_bpe(corpus: &[String], use_regex: bool) -> Bpe {
    let mut tokenizer: Bpe = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(
            ByteLevel::default()
                .add_prefix_space(false)
                .use_regex(use_regex),
        ))
        .with_decoder(Some(ByteLevelDecoder::default()))
        .build()
        .unwrap();
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(600)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    tokenizer.train(&mut trainer, corpus.iter()).unwrap();
    tokenizer
}

/// The decoded text of `ids` and the byte where each token starts in it (decoding prefixes,
/// which is exact for byte-level BPE on ASCII text).
fn decode_with_offsets(tokenizer: &Bpe, ids: &[u32]) -> (String, Vec<usize>) {
    let starts = (0..ids.len())
        .map(|i| tokenizer.decode(&ids[..i], false).unwrap().len())
        .collect();
    (tokenizer.decode(ids, false).unwrap(), starts)
}

fn examples() -> Vec<Example> {
    let config = ArithConfig {
        train_size: 400,
        test_size: 50,
        ..ArithConfig::default()
    };
    let splits = generate(&config).unwrap();
    splits.train.into_iter().chain(splits.test).collect()
}

fn check(use_regex: bool) {
    let examples = examples();
    let corpus: Vec<String> = examples[..400]
        .iter()
        .map(|e| format!("{}\n{}\n", e.question, e.solution))
        .collect();
    let tokenizer = train_bpe(&corpus, use_regex);
    let mut straddling = 0;
    for ex in &examples[400..] {
        // The response as sampled under the reference prompt.
        let response = format!("\n{}\n", ex.solution);
        let ids = tokenizer
            .encode(response.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        let (text, token_starts) = decode_with_offsets(&tokenizer, &ids);
        assert_eq!(text, response);
        let steps = vine_math::split_gsm8k(&text).unwrap();
        let starts = step_token_starts(&token_starts, &steps).unwrap();
        let lines: Vec<&str> = ex.solution.lines().collect();
        // One step per computation line; the `####` line belongs to the last one.
        assert_eq!(starts.len(), lines.len() - 1, "{text:?}");
        let owner = token_steps(&starts, ids.len());
        for (k, line) in lines[..lines.len() - 1].iter().enumerate() {
            let first = starts[k];
            let end = starts.get(k + 1).map_or(text.len(), |&t| token_starts[t]);
            let step_text = &text[token_starts[first]..end];
            let calc = &line
                [line.find(|c: char| c.is_ascii_digit()).unwrap()..line.find('=').unwrap() + 1];
            assert!(
                step_text.contains(calc),
                "step {k} {step_text:?} lacks {calc:?}"
            );
            assert!(
                steps[k].contains(&token_starts[first]),
                "step {k} starts outside its range"
            );
            assert!(owner[first..].iter().take_while(|&&o| o == k).count() >= 1);
        }
        straddling += token_starts
            .iter()
            .zip(&ids)
            .filter(|(&s, &id)| {
                let token = tokenizer.decode(&[id], false).unwrap();
                steps
                    .iter()
                    .any(|r| r.start > s && r.start < s + token.len())
            })
            .count();
    }
    if !use_regex {
        assert!(
            straddling > 0,
            "the test should exercise tokens that straddle a step boundary"
        );
    }
}

#[test]
fn gpt2_style_pretokenization() {
    check(true);
}

#[test]
fn merges_across_newlines() {
    check(false);
}
