//! The generation engine: requests in, samples out.
//!
//! [`Engine::generate`] runs the loop
//! 1. **plan** ([`Plan`]): one row per sample; rows whose prefixes are equal or nested share
//!    one prefilled *leaf* (VinePPO's step-boundary states of one trajectory are all prefixes
//!    of it);
//! 2. **admit** ([`Pool`], [`Batch`]): while fewer than `max_batch` rows decode, prefill the next
//!    leaves in bounded chunks and gather each row's prefix (`L − 1` tokens) from its leaf into
//!    the running cache, in place where it fits — forking a prefix `n` ways is `n` gathers of
//!    the same leaf row;
//! 3. **decode** one token for every live row (the last prefix token is the first input),
//!    sample each row from its own random stream, and apply the stop rules;
//! 4. **retire** finished rows at once: their slots are refilled or compacted away before the
//!    next step, and left padding no live row needs is trimmed.
//!
//! Reproducibility: a sample's random draws depend only on `(request seed, sample index)`. With
//! the mock model results are therefore bit-identical whatever the batch composition and engine
//! settings; with a real model the logits themselves change by float rounding (about 1e-6) with
//! batch size and padding, which can, rarely, flip a sampled token between runs with different
//! engine settings. Same settings, same machine: same samples.
//!
//! Deviations from the reference (vLLM behind an HTTP API, spec §5): prefixes are token ids, not
//! text that is re-tokenised (spec §7.3, the cleaner choice); every request carries its own seed
//! and every sample its own stream, where the reference gives all requests of one call the same
//! vLLM seed; and the sampler is exactly reproducible on CPU for a given model and seed.

use candle_core::{DType, Tensor};
use vine_model::CausalLm;

use rayon::prelude::*;

use crate::batch::{Batch, Live};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::request::{FinishReason, Request, Sample, SamplingParams, StopKind, StopStrings};
use crate::sampling::{Choice, SampleRng, Sampler};
use crate::scheduler::Pool;

/// Knobs of the engine; they change speed and memory, never the samples.
///
/// Memory is roughly `(max_batch × longest row + pool_tokens) × KV bytes per token` for caches
/// (KV bytes per token = `2 × layers × kv_heads × head_dim × dtype size`, 45 KB for a 1B
/// Llama in f32), plus one prefill call's activations, whose attention scores grow as
/// `heads × prefill_chunk_tokens × row length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most rows decoding at once: 32–64 suits a 2-core CPU and small models, a few hundred a
    /// GPU.
    pub max_batch: usize,
    /// Most padded positions (`rows × length`) per prefill call; a longer prefix is prefilled
    /// alone in pieces of this many tokens.
    pub prefill_chunk_tokens: usize,
    /// Most prefilled positions kept waiting for a free decode slot.
    pub pool_tokens: usize,
    /// Prefill equal and nested prefixes once and fork them; off prefills every sample's prefix
    /// separately (for benchmarks and equivalence tests).
    pub prefix_sharing: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_batch: 64,
            prefill_chunk_tokens: 4096,
            pool_tokens: 65536,
            prefix_sharing: true,
        }
    }
}

/// Where a [`Engine::generate`] call stands, reported after every decode step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Tokens sampled so far (stop tokens included).
    pub generated_tokens: usize,
    /// Samples finished so far.
    pub finished_samples: usize,
    /// Samples requested in total.
    pub total_samples: usize,
    /// Prefix tokens prefilled so far (padding excluded).
    pub prefill_tokens: usize,
    /// Rows in the decode step just taken.
    pub batch_rows: usize,
    /// Cached key positions attended so far, padding included (Σ over steps of `B × len`).
    pub attended_positions: usize,
    /// The part of `attended_positions` that belongs to rows; the rest is left padding.
    pub valid_positions: usize,
    /// Times the decode batch's whole cache was rebuilt (to grow the batch, admit a longer
    /// prefix than it holds, or drop unneeded padding).
    pub cache_rebuilds: usize,
    /// Rows admitted into a finished row's slot in place, copying only that row.
    pub refills_in_place: usize,
}

/// The batched, prefix-sharing generation engine. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    config: EngineConfig,
}

/// Per-sample state while it is generated.
struct RowState {
    rng: SampleRng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    finish: Option<FinishReason>,
}

impl Engine {
    /// An engine with `config`; fails if a size is zero.
    pub fn new(config: EngineConfig) -> Result<Self> {
        if config.max_batch == 0 || config.prefill_chunk_tokens == 0 {
            return Err(Error::InvalidParams(
                "`max_batch` and `prefill_chunk_tokens` must be at least 1".to_string(),
            ));
        }
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Generates `requests[i].n` samples for every request; returns them per request, in sample
    /// order. `stop` adds stop strings; `progress` is called after every decode step.
    pub fn generate(
        &self,
        lm: &dyn CausalLm,
        requests: &[Request],
        params: &SamplingParams,
        stop: Option<&dyn StopStrings>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Vec<Sample>>> {
        params.validate()?;
        validate_requests(requests, lm.vocab_size())?;
        let plan = Plan::new(requests, params, self.config.prefix_sharing);
        let rows: Vec<RowState> = plan
            .rows
            .iter()
            .map(|r| RowState {
                rng: SampleRng::new(requests[r.request].seed, r.sample as u64),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                finish: (r.budget == 0).then_some(FinishReason::Length),
            })
            .collect();
        let report = Progress {
            total_samples: rows.len(),
            finished_samples: rows.iter().filter(|r| r.finish.is_some()).count(),
            ..Progress::default()
        };
        let mut run = Run {
            lm,
            requests,
            params,
            stop,
            plan,
            rows,
            report,
            pool: Pool::new(self.config.prefill_chunk_tokens, self.config.pool_tokens),
            batch: Batch::default(),
        };
        while run.refill(self.config.max_batch)? {
            run.step()?;
            progress(run.report);
        }
        collect(requests, run.rows)
    }
}

/// The state of one [`Engine::generate`] call.
struct Run<'a> {
    lm: &'a dyn CausalLm,
    requests: &'a [Request],
    params: &'a SamplingParams,
    stop: Option<&'a dyn StopStrings>,
    plan: Plan,
    rows: Vec<RowState>,
    report: Progress,
    pool: Pool,
    batch: Batch,
}

impl Run<'_> {
    /// Fills free slots from the pool, drops dead ones and trims padding; false when no row is
    /// left to decode.
    fn refill(&mut self, max_batch: usize) -> Result<bool> {
        let free = max_batch.saturating_sub(self.batch.live());
        if free > 0 && !self.pool.is_exhausted(&self.plan) {
            let admitted = self.pool.take(self.lm, self.requests, &self.plan, free)?;
            let plan = &self.plan;
            let reserve = admitted
                .iter()
                .map(|a| plan.rows[a.row].budget)
                .fold(self.headroom(), usize::max);
            self.batch
                .admit(&admitted, &self.pool, |r| plan.rows[r].first, reserve)?;
            self.pool.release();
        }
        self.batch.compact()?;
        if self.batch.is_empty() {
            return Ok(false);
        }
        self.batch.trim(self.headroom())?;
        Ok(true)
    }

    /// The most tokens a live row may still append: a rebuilt cache reserves that many
    /// positions, so that no decode step has to regrow it (a copy of the whole cache into
    /// fresh memory). The engine's memory bound, longest row × batch, is unchanged.
    fn headroom(&self) -> usize {
        self.batch
            .slots()
            .iter()
            .flatten()
            .map(|l| {
                let generated = self.rows[l.row].tokens.len();
                self.plan.rows[l.row].budget.saturating_sub(generated)
            })
            .max()
            .unwrap_or(0)
    }

    /// One decode step: logits for every row, a token for every row, stop rules.
    fn step(&mut self) -> Result<()> {
        let (attended, valid) = self.batch.occupancy();
        self.report.attended_positions += attended;
        self.report.valid_positions += valid;
        let (ids, cache) = self.batch.step_inputs(self.lm.device())?;
        let logits = self.lm.decode_step(&ids, cache)?; // (B, V)
        let v = self.lm.vocab_size();
        let logits = host_logits(&logits, self.batch.slots().len(), v)?;
        let slots: Vec<_> = self.batch.slots().to_vec();
        let choices = sample_rows(&logits, v, &slots, &mut self.rows, self.params)?;
        for (s, live, choice) in choices {
            let row = &mut self.rows[live.row];
            self.report.generated_tokens += 1;
            let budget = self.plan.rows[live.row].budget;
            match push_token(row, choice, budget, self.params, self.stop) {
                Some(finish) => {
                    row.finish = Some(finish);
                    self.report.finished_samples += 1;
                    self.batch.finish(s);
                }
                None => self.batch.set_next(s, choice.token),
            }
        }
        self.report.prefill_tokens = self.pool.prefilled;
        self.report.batch_rows = slots.len();
        self.report.cache_rebuilds = self.batch.copies;
        self.report.refills_in_place = self.batch.in_place;
        Ok(())
    }
}

/// Samples the next token of every live slot from its logits row `(V,)` of `logits` `(B·V)`,
/// rows in parallel; each row draws from its own random stream.
fn sample_rows(
    logits: &[f32],
    v: usize,
    slots: &[Option<Live>],
    rows: &mut [RowState],
    params: &SamplingParams,
) -> Result<Vec<(usize, Live, Choice)>> {
    let draws: Vec<(usize, Live, f64)> = slots
        .iter()
        .enumerate()
        .filter_map(|(s, l)| l.map(|l| (s, l, rows[l.row].rng.uniform())))
        .collect();
    draws
        .par_iter()
        .map_init(Sampler::default, |sampler, &(s, live, u)| {
            let choice = sampler.sample(&logits[s * v..(s + 1) * v], params, u)?;
            Ok((s, live, choice))
        })
        .collect()
}

/// Records a sampled token and returns why the row ends, if it does.
fn push_token(
    row: &mut RowState,
    choice: Choice,
    budget: usize,
    params: &SamplingParams,
    stop: Option<&dyn StopStrings>,
) -> Option<FinishReason> {
    if params.is_stop_token(choice.token) {
        return Some(FinishReason::Stop(StopKind::Token(choice.token)));
    }
    row.tokens.push(choice.token);
    row.logprobs.push(choice.logprob);
    if let Some(hit) = stop.and_then(|s| s.check(&row.tokens)) {
        let keep = hit.keep.min(row.tokens.len());
        row.tokens.truncate(keep);
        row.logprobs.truncate(keep);
        return Some(FinishReason::Stop(StopKind::String(hit.index)));
    }
    (row.tokens.len() >= budget).then_some(FinishReason::Length)
}

/// Logits `(B, V)` as one host vector, checking the shape.
fn host_logits(logits: &Tensor, b: usize, v: usize) -> Result<Vec<f32>> {
    let dims = logits.dims();
    if dims != [b, v] {
        return Err(Error::BadLogits(format!(
            "expected shape ({b}, {v}) from decode_step, got {dims:?}"
        )));
    }
    Ok(logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// Rejects empty prefixes and token ids outside the vocabulary.
fn validate_requests(requests: &[Request], vocab: usize) -> Result<()> {
    for (index, r) in requests.iter().enumerate() {
        let invalid = |reason: String| Err(Error::InvalidRequest { index, reason });
        if r.prefix.is_empty() {
            return invalid("empty prefix; start it with the model's BOS token".to_string());
        }
        if let Some(p) = r.prefix.iter().position(|&t| t as usize >= vocab) {
            return invalid(format!(
                "token id {} at position {p} is outside the model's vocabulary of {vocab}",
                r.prefix[p]
            ));
        }
    }
    Ok(())
}

/// Per-request samples from per-row states (rows are request-major).
fn collect(requests: &[Request], rows: Vec<RowState>) -> Result<Vec<Vec<Sample>>> {
    let mut rows = rows.into_iter();
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let mut samples = Vec::with_capacity(r.n);
        for row in rows.by_ref().take(r.n) {
            let finish = row
                .finish
                .ok_or_else(|| Error::Internal("a sample never finished".to_string()))?;
            samples.push(Sample {
                tokens: row.tokens,
                logprobs: row.logprobs,
                finish,
            });
        }
        out.push(samples);
    }
    Ok(out)
}
