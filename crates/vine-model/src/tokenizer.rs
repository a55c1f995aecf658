//! The tokenizer: `tokenizer.json` through Hugging Face's `tokenizers` crate, with BOS, EOS
//! and PAD resolved from the checkpoint's JSON files the way transformers resolves them.
//!
//! Resolution (first source that has the key wins; a key present with `null` means "none"):
//! - BOS/EOS/PAD tokens: `tokenizer_config.json` (`bos_token`, … as strings or AddedToken
//!   objects), then `special_tokens_map.json`, then the ids in `generation_config.json`, then
//!   `config.json`.
//! - Stop ids: the EOS token first, then every id of `generation_config.json`'s and
//!   `config.json`'s `eos_token_id` (an int or a list).
//! - `add_bos_token` (Llama-style tokenizers): with `add_special_tokens`, the ids start with BOS
//!   exactly when it is set, whatever `tokenizer.json`'s post-processor does, as transformers'
//!   Llama tokenizers rebuild their post-processor from it.
//!
//! Decoding never applies transformers' `clean_up_tokenization_spaces` (it is lossy, and
//! vineppo needs decode(encode(text)) == text); the tokenizers of the supported models have
//! it off.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{read_json, ModelError, ModelResult};

/// A byte range `(start, end)` of a text.
pub type ByteSpan = (usize, usize);

/// A tokenizer with its special ids resolved. See the module docs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    bos: Option<u32>,
    eos: Option<u32>,
    stop_ids: Vec<u32>,
    pad: Option<u32>,
    add_bos_token: Option<bool>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("stop_ids", &self.stop_ids)
            .field("pad", &self.pad)
            .finish()
    }
}

/// The JSON files special tokens are resolved from, in priority order (absent files are
/// `None`).
struct Sources {
    tokenizer_config: Option<Value>,
    special_tokens_map: Option<Value>,
    generation_config: Option<Value>,
    config: Option<Value>,
}

impl Sources {
    fn read(dir: &Path) -> ModelResult<Self> {
        let opt = |name: &str| -> ModelResult<Option<Value>> {
            let p = dir.join(name);
            if p.is_file() {
                read_json(&p).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            tokenizer_config: opt("tokenizer_config.json")?,
            special_tokens_map: opt("special_tokens_map.json")?,
            generation_config: opt("generation_config.json")?,
            config: opt("config.json")?,
        })
    }
}

/// The token string of a `bos_token`-style entry: a string or `{"content": …}`.
fn token_string(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

/// Ids of an `eos_token_id`-style entry: an int or a list of ints.
fn json_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect(),
        Some(x) => x
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json` and resolves special tokens from the JSON files of `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> ModelResult<Self> {
        let dir = dir.as_ref();
        let mut tok = Self::from_file(dir.join("tokenizer.json"))?;
        tok.resolve(&Sources::read(dir)?, dir)?;
        Ok(tok)
    }

    /// Loads a `tokenizer.json` alone (no BOS/EOS/PAD known).
    pub fn from_file(path: impl AsRef<Path>) -> ModelResult<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(ModelError::NotFound {
                path: path.to_path_buf(),
                hint: "a fast tokenizer file (`tokenizer.json`) is required; convert slow \
                       tokenizers with transformers' `save_pretrained`"
                    .into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            bos: None,
            eos: None,
            stop_ids: Vec::new(),
            pad: None,
            add_bos_token: None,
        })
    }

    /// Resolves one special token (`kind` = "bos", "eos" or "pad"); see the module docs.
    fn special(&self, src: &Sources, dir: &Path, kind: &str) -> ModelResult<Option<u32>> {
        let key = format!("{kind}_token");
        for (file, json) in [
            ("tokenizer_config.json", &src.tokenizer_config),
            ("special_tokens_map.json", &src.special_tokens_map),
        ] {
            let Some(v) = json.as_ref().and_then(|j| j.get(&key)) else {
                continue;
            };
            if v.is_null() {
                return Ok(None);
            }
            let text = token_string(v).ok_or_else(|| {
                ModelError::config(
                    dir.join(file),
                    &key,
                    "expected a string or {\"content\": …}",
                )
            })?;
            return match self.inner.token_to_id(text) {
                Some(id) => Ok(Some(id)),
                None => Err(ModelError::config(
                    dir.join(file),
                    &key,
                    format!("token `{text}` is not in `{}`", self.path.display()),
                )),
            };
        }
        let id_key = format!("{kind}_token_id");
        for json in [&src.generation_config, &src.config] {
            if let Some(v) = json.as_ref().and_then(|j| j.get(&id_key)) {
                return Ok(json_ids(Some(v)).first().copied());
            }
        }
        Ok(None)
    }

    fn resolve(&mut self, src: &Sources, dir: &Path) -> ModelResult<()> {
        self.bos = self.special(src, dir, "bos")?;
        self.eos = self.special(src, dir, "eos")?;
        self.pad = self.special(src, dir, "pad")?;
        let mut stops: Vec<u32> = self.eos.into_iter().collect();
        for json in [&src.generation_config, &src.config] {
            for id in json_ids(json.as_ref().and_then(|j| j.get("eos_token_id"))) {
                if !stops.contains(&id) {
                    stops.push(id);
                }
            }
        }
        self.stop_ids = stops;
        if self.eos.is_none() {
            self.eos = self.stop_ids.first().copied();
        }
        self.add_bos_token = src
            .tokenizer_config
            .as_ref()
            .and_then(|j| j.get("add_bos_token"))
            .and_then(Value::as_bool);
        Ok(())
    }

    fn err(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// BOS id (prepended to prompts), if the tokenizer has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The EOS id appended to finished responses.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Every id that ends generation (EOS first).
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// PAD id, if defined.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Number of ids the tokenizer can produce (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`; with `add_special_tokens`, the post-processor's specials (BOS
    /// enforced by `add_bos_token`, see the module docs).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> ModelResult<Vec<u32>> {
        Ok(self.encode_with_offsets(text, add_special_tokens)?.0)
    }

    /// Token ids and the byte range of `text` each one covers (`(0, 0)` for added specials).
    pub fn encode_with_offsets(
        &self,
        text: &str,
        add_special_tokens: bool,
    ) -> ModelResult<(Vec<u32>, Vec<ByteSpan>)> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.err(e))?;
        let mut ids = enc.get_ids().to_vec();
        let mut offsets = enc.get_offsets().to_vec();
        if let (true, Some(bos), Some(add)) = (add_special_tokens, self.bos, self.add_bos_token) {
            let starts = ids.first() == Some(&bos);
            if add && !starts {
                ids.insert(0, bos);
                offsets.insert(0, (0, 0));
            } else if !add && starts {
                ids.remove(0);
                offsets.remove(0);
            }
        }
        Ok((ids, offsets))
    }

    /// Text of `ids`; special tokens dropped when `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> ModelResult<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.err(e))
    }

    /// The text of `ids` (specials kept) and the byte offset in it where each token starts.
    ///
    /// Token `k` starts at the length of the part of `decode(ids[..k])` that is final, i.e.
    /// agrees with the full text: a token that completes a multi-byte character begun by
    /// earlier tokens starts, like them, at that character. Offsets are non-decreasing and lie
    /// on character boundaries. Computed incrementally: each token is decoded in a short
    /// window after the last clean anchor, not from the start of the text.
    pub fn decode_with_offsets(&self, ids: &[u32]) -> ModelResult<(String, Vec<usize>)> {
        let full = self.decode(ids, false)?;
        let mut offsets = Vec::with_capacity(ids.len());
        // Window state: `ctx` ≤ `anchor`; `anchor_text` = decode(ids[ctx..anchor]) is clean,
        // and token `anchor` starts at byte `base` of `full`.
        let (mut ctx, mut anchor, mut base) = (0usize, 0usize, 0usize);
        let mut anchor_text = String::new();
        let mut prev = 0usize;
        for k in 0..ids.len() {
            let window = self.decode(&ids[ctx..k], false)?;
            // `whole`: the decoded text up to token `k` is exactly a prefix of `full`. It is
            // not when byte-fallback tokens after `k` turn earlier bytes of their run into
            // replacement characters; an anchor placed there would misplace every later token.
            let (off, whole) = match window.strip_prefix(anchor_text.as_str()) {
                Some(tail) => {
                    let n = common_prefix_len(&full[base..], tail);
                    (base + n, n == tail.len())
                }
                None => {
                    let prefix = self.decode(&ids[..k], false)?;
                    (common_prefix_len(&full, &prefix), full.starts_with(&prefix))
                }
            };
            let off = off.max(prev);
            offsets.push(off);
            prev = off;
            if k > anchor && whole && !window.ends_with('\u{FFFD}') {
                // Slide: the previous anchor becomes the context start.
                ctx = anchor;
                anchor = k;
                base = off;
                anchor_text = self.decode(&ids[ctx..anchor], false)?;
            }
        }
        Ok((full, offsets))
    }
}

/// Length in bytes of the longest common prefix of `a` and `b`, on a char boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()))
}
