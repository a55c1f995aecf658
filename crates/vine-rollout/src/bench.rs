//! `vineppo bench generate`: generation throughput of the engine on a random-init Llama.
//!
//! Builds a ~4M-parameter Llama (4 layers, hidden 256, vocabulary 2048, HF init) and measures
//! end-to-end tokens/s (prefill included) of [`Engine::generate`] for
//! - **batch**: plain batched sampling, one distinct prompt per row, at each batch size;
//! - **vine**: VinePPO's Monte-Carlo pattern, `P` distinct prefixes × `K` continuations, with
//!   and without prefix sharing (without: every row prefills its own copy of the prefix, as
//!   `generate(num_return_sequences=K)` does in transformers);
//! - **vine-nested**: the real VinePPO shape, `K` continuations from several step boundaries of
//!   each trajectory (nested prefixes), with and without sharing.
//!
//! Sampling uses the trainer's settings (T = 0.6, top-p 0.9) and ignores EOS so every row
//! generates exactly its budget. When [`BenchConfig::hf_dir`] is set the model is saved there
//! as a Hugging Face directory together with `bench.json` (the scenarios), which
//! `scripts/bench_transformers_generate.py` reads to time transformers on the same shapes.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};
use vine_model::{ModelConfig, SaveOptions, Transformer};

use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::request::{Request, SamplingParams};
use crate::sampling::{SampleRng, Sampler};

/// What to measure. [`Default`] is the configuration the targets refer to.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Attention heads (key/value heads are the same number).
    pub heads: usize,
    /// SwiGLU width.
    pub intermediate: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Batch sizes of the plain batched scenario.
    pub batch_sizes: Vec<usize>,
    /// Prompt length of the plain batched scenario.
    pub prompt_len: usize,
    /// Tokens generated per row in the plain batched scenario.
    pub new_tokens: usize,
    /// Distinct prefixes `P` of the VinePPO scenario.
    pub vine_prefixes: usize,
    /// Continuations per prefix `K`.
    pub vine_k: usize,
    /// Prefix length of the VinePPO scenario.
    pub vine_prefix_len: usize,
    /// Continuation length of the VinePPO scenarios.
    pub vine_new_tokens: usize,
    /// Trajectories of the nested scenario; each contributes `vine_states` nested prefixes.
    pub nested_trajectories: usize,
    /// Nested prefixes (step boundaries) per trajectory.
    pub vine_states: usize,
    /// Engine `max_batch` for the VinePPO scenarios.
    pub max_batch: usize,
    /// Seed of the model and the prompts.
    pub seed: u64,
    /// Where to save the model and `bench.json` for the transformers script (`None`: don't).
    pub hf_dir: Option<PathBuf>,
    /// Run only the scenarios whose name starts with this.
    pub only: Option<String>,
    /// Runs per scenario; the fastest is reported (the machine may be shared).
    pub repeats: usize,
    /// Vocabulary sizes at which to time the sampler alone.
    pub sampler_vocabs: Vec<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            layers: 4,
            hidden: 256,
            heads: 4,
            intermediate: 688,
            vocab: 2048,
            batch_sizes: vec![32, 64],
            prompt_len: 64,
            new_tokens: 128,
            vine_prefixes: 8,
            vine_k: 9,
            vine_prefix_len: 256,
            vine_new_tokens: 64,
            nested_trajectories: 4,
            vine_states: 4,
            max_batch: 72,
            seed: 0,
            hf_dir: None,
            only: None,
            repeats: 1,
            sampler_vocabs: vec![2048, 32_000, 151_936],
        }
    }
}

/// One measured scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// Scenario name.
    pub name: String,
    /// Rows (samples) generated.
    pub rows: usize,
    /// Longest prefix length.
    pub prefix_len: usize,
    /// Tokens generated per row.
    pub new_tokens: usize,
    /// Whether prefix sharing was on.
    pub sharing: bool,
    /// Prefix tokens prefilled (padding excluded).
    pub prefill_tokens: usize,
    /// Tokens generated in total.
    pub generated: usize,
    /// Fraction of the cached positions attended that belong to rows (1 = no left padding).
    pub attention_fill: f64,
    /// Wall-clock seconds of the `generate` call.
    pub seconds: f64,
    /// CPU seconds of the process (all threads) during the call: less sensitive than wall
    /// time to other load on a shared machine.
    pub cpu_seconds: f64,
}

impl BenchRow {
    /// Generated tokens per second.
    pub fn tokens_per_s(&self) -> f64 {
        self.generated as f64 / self.seconds.max(1e-9)
    }

    /// Generated tokens per CPU-second.
    pub fn tokens_per_cpu_s(&self) -> f64 {
        self.generated as f64 / self.cpu_seconds.max(1e-9)
    }
}

/// Host-side sampling cost for one vocabulary size.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerRow {
    /// Vocabulary size.
    pub vocab: usize,
    /// Microseconds per row at T = 0.6, top-p 0.9 on peaked logits (a trained model).
    pub peaked_us: f64,
    /// Microseconds per row at T = 0.6, top-p 0.9 on near-uniform logits (an untrained model).
    pub flat_us: f64,
}

/// All measured scenarios; [`fmt::Display`] prints them as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Model parameters.
    pub parameters: usize,
    /// Threads candle used.
    pub threads: usize,
    /// The scenarios, in the order run.
    pub rows: Vec<BenchRow>,
    /// Sampler cost per logits row (single thread).
    pub sampler: Vec<SamplerRow>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generation benchmark: {:.1}M-parameter Llama, {} threads",
            self.parameters as f64 / 1e6,
            self.threads
        )?;
        writeln!(
            f,
            "{:<22} {:>5} {:>7} {:>5} {:>8} {:>9} {:>8} {:>5} {:>8} {:>8} {:>10}",
            "scenario",
            "rows",
            "prefix",
            "new",
            "sharing",
            "prefilled",
            "tokens",
            "fill",
            "seconds",
            "tok/s",
            "tok/cpu-s"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<22} {:>5} {:>7} {:>5} {:>8} {:>9} {:>8} {:>5.2} {:>8.2} {:>8.0} {:>10.0}",
                r.name,
                r.rows,
                r.prefix_len,
                r.new_tokens,
                if r.sharing { "on" } else { "off" },
                r.prefill_tokens,
                r.generated,
                r.attention_fill,
                r.seconds,
                r.tokens_per_s(),
                r.tokens_per_cpu_s()
            )?;
        }
        writeln!(
            f,
            "sampling one row on the host (T 0.6, top-p 0.9, one thread):"
        )?;
        for r in &self.sampler {
            writeln!(
                f,
                "  vocab {:>6}: {:>7.1} us peaked, {:>7.1} us flat",
                r.vocab, r.peaked_us, r.flat_us
            )?;
        }
        Ok(())
    }
}

/// Times [`Sampler::sample`] on synthetic rows of each vocabulary size.
fn sampler_cost(vocabs: &[usize]) -> Result<Vec<SamplerRow>> {
    let params = SamplingParams::default();
    let mut rng = SampleRng::new(1, 1);
    let mut out = Vec::new();
    for &v in vocabs {
        let flat: Vec<f32> = (0..v).map(|_| rng.uniform() as f32 * 2.0).collect();
        let peaked: Vec<f32> = (0..v)
            .map(|_| (rng.uniform() as f32).powi(8) * 30.0)
            .collect();
        let mut time = |logits: &[f32]| -> Result<f64> {
            let mut sampler = Sampler::default();
            let n = (4_000_000 / v).max(10);
            sampler.sample(logits, &params, 0.5)?;
            let start = Instant::now();
            for _ in 0..n {
                sampler.sample(logits, &params, rng.uniform())?;
            }
            Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
        };
        out.push(SamplerRow {
            vocab: v,
            peaked_us: time(&peaked)?,
            flat_us: time(&flat)?,
        });
    }
    Ok(out)
}

/// A scenario: requests and the engine settings to run them with.
struct Scenario {
    name: String,
    requests: Vec<Request>,
    new_tokens: usize,
    engine: EngineConfig,
}

/// Runs every scenario of `cfg` and returns the measurements.
pub fn run(cfg: &BenchConfig) -> Result<BenchReport> {
    vine_model::tune_allocator();
    let mut mc = ModelConfig::tiny_llama(
        cfg.vocab,
        cfg.hidden,
        cfg.layers,
        cfg.heads,
        cfg.heads,
        cfg.intermediate,
    );
    mc.max_position_embeddings = mc
        .max_position_embeddings
        .max(cfg.vine_prefix_len + cfg.vine_new_tokens);
    let lm = Transformer::new_random(mc, cfg.seed, DType::F32, &Device::Cpu, false)
        .map_err(|e| Error::Bench(format!("building the model: {e}")))?;
    let scenarios = scenarios(cfg);
    if let Some(dir) = &cfg.hf_dir {
        save_for_transformers(&lm, dir, &scenarios)?;
    }
    // Warm-up: first-touch allocations and thread pools.
    let warm = Engine::new(EngineConfig::default())?;
    warm.generate(
        &lm,
        &scenarios[0].requests[..1],
        &params(8),
        None,
        &mut |_| {},
    )?;
    let mut rows = Vec::new();
    let wanted = |s: &&Scenario| {
        cfg.only
            .as_ref()
            .is_none_or(|o| s.name.starts_with(o.as_str()))
    };
    for s in scenarios.iter().filter(wanted) {
        let mut best: Option<BenchRow> = None;
        for _ in 0..cfg.repeats.max(1) {
            let row = measure(&lm, s)?;
            if best.as_ref().is_none_or(|b| row.seconds < b.seconds) {
                best = Some(row);
            }
        }
        rows.extend(best);
    }
    Ok(BenchReport {
        parameters: lm.config().num_parameters(),
        threads: candle_core::utils::get_num_threads(),
        rows,
        sampler: sampler_cost(&cfg.sampler_vocabs)?,
    })
}

/// Times one `generate` call of scenario `s`.
fn measure(lm: &Transformer, s: &Scenario) -> Result<BenchRow> {
    let engine = Engine::new(s.engine.clone())?;
    let mut last = crate::Progress::default();
    let (start, cpu) = (Instant::now(), process_cpu_seconds());
    engine.generate(lm, &s.requests, &params(s.new_tokens), None, &mut |p| {
        last = p
    })?;
    let cpu_seconds = process_cpu_seconds() - cpu;
    Ok(BenchRow {
        name: s.name.clone(),
        rows: s.requests.iter().map(|r| r.n).sum(),
        prefix_len: s.requests.iter().map(|r| r.prefix.len()).max().unwrap_or(0),
        new_tokens: s.new_tokens,
        sharing: s.engine.prefix_sharing,
        prefill_tokens: last.prefill_tokens,
        generated: last.generated_tokens,
        attention_fill: last.valid_positions as f64 / last.attended_positions.max(1) as f64,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds,
    })
}

/// User + system CPU time of this process so far (0 where unsupported).
fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return secs(usage.ru_utime) + secs(usage.ru_stime);
        }
    }
    0.0
}

/// The trainer's sampling settings with a fixed budget and no EOS.
fn params(new_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_new_tokens: new_tokens,
        max_context: usize::MAX,
        ignore_eos: true,
        ..SamplingParams::default()
    }
}

/// Random token ids in `[2, vocab)` (0 and 1 are left to padding and BOS).
fn random_ids(len: usize, vocab: usize, seed: u64, stream: u64) -> Vec<u32> {
    let mut rng = SampleRng::new(seed, stream);
    (0..len)
        .map(|_| 2 + (rng.uniform() * (vocab - 2) as f64) as u32)
        .collect()
}

fn scenarios(cfg: &BenchConfig) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut stream = 0u64;
    let mut ids = |len: usize| {
        stream += 1;
        random_ids(len, cfg.vocab, cfg.seed, stream)
    };
    for &b in &cfg.batch_sizes {
        out.push(Scenario {
            name: format!("batch-{b}"),
            requests: (0..b)
                .map(|i| Request::new(ids(cfg.prompt_len), 1, i as u64))
                .collect(),
            new_tokens: cfg.new_tokens,
            engine: EngineConfig {
                max_batch: b,
                ..EngineConfig::default()
            },
        });
    }
    let vine: Vec<Request> = (0..cfg.vine_prefixes)
        .map(|i| Request::new(ids(cfg.vine_prefix_len), cfg.vine_k, i as u64))
        .collect();
    let mut nested = Vec::new();
    for t in 0..cfg.nested_trajectories {
        let traj = ids(cfg.vine_prefix_len);
        for s in 0..cfg.vine_states {
            // Step boundaries spread over the second half of the trajectory, prompt first.
            let cut = cfg.vine_prefix_len / 2 * (cfg.vine_states + s) / cfg.vine_states.max(1);
            let seed = (t * cfg.vine_states + s) as u64;
            nested.push(Request::new(traj[..cut.max(1)].to_vec(), cfg.vine_k, seed));
        }
    }
    for (name, requests) in [("vine", vine), ("vine-nested", nested)] {
        for sharing in [true, false] {
            out.push(Scenario {
                name: format!("{name}-{}x{}", requests.len(), cfg.vine_k),
                requests: requests.clone(),
                new_tokens: cfg.vine_new_tokens,
                engine: EngineConfig {
                    max_batch: cfg.max_batch,
                    prefix_sharing: sharing,
                    ..EngineConfig::default()
                },
            });
        }
    }
    out
}

/// Saves the model and `bench.json` (`[{name, prompts, k, prompt_len, new_tokens}]`) under
/// `dir`.
fn save_for_transformers(lm: &Transformer, dir: &std::path::Path, s: &[Scenario]) -> Result<()> {
    let io = |e: String| Error::Bench(format!("writing `{}`: {e}", dir.display()));
    lm.save_pretrained(dir, &SaveOptions::default())
        .map_err(|e| io(e.to_string()))?;
    // transformers has no prefix sharing: one entry per shape.
    let mut seen = std::collections::HashSet::new();
    let list: Vec<serde_json::Value> = s
        .iter()
        .filter(|s| !s.name.starts_with("vine-nested") && seen.insert(s.name.clone()))
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "prompts": s.requests.len(),
                "k": s.requests.first().map_or(1, |r| r.n),
                "prompt_len": s.requests.iter().map(|r| r.prefix.len()).max().unwrap_or(0),
                "new_tokens": s.new_tokens,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&list).map_err(|e| io(e.to_string()))?;
    std::fs::write(dir.join("bench.json"), text).map_err(|e| io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_benchmark_runs_and_saves_the_model() {
        let dir = std::env::temp_dir().join(format!("vine-bench-{}", std::process::id()));
        let cfg = BenchConfig {
            layers: 1,
            hidden: 16,
            heads: 2,
            intermediate: 24,
            vocab: 64,
            batch_sizes: vec![3],
            prompt_len: 5,
            new_tokens: 4,
            vine_prefixes: 2,
            vine_k: 3,
            vine_prefix_len: 12,
            vine_new_tokens: 3,
            nested_trajectories: 2,
            vine_states: 3,
            max_batch: 4,
            hf_dir: Some(dir.clone()),
            sampler_vocabs: vec![100],
            ..BenchConfig::default()
        };
        let report = run(&cfg).unwrap();
        let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "batch-3",
                "vine-2x3",
                "vine-2x3",
                "vine-nested-6x3",
                "vine-nested-6x3"
            ]
        );
        assert_eq!(report.rows[0].generated, 12);
        assert_eq!(report.rows[1].generated, 18);
        // Sharing prefills each prefix once instead of once per continuation.
        assert_eq!(
            report.rows[1].prefill_tokens * 3,
            report.rows[2].prefill_tokens
        );
        assert!(report.rows[3].prefill_tokens < report.rows[4].prefill_tokens);
        assert!(report.to_string().contains("vine-nested-6x3"));
        let scenarios: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap())
                .unwrap();
        assert_eq!(scenarios.as_array().unwrap().len(), 2);
        assert!(dir.join("config.json").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
