//! Building a [`Trainer`] (fresh or resumed), the run loop around iterations, evaluation and
//! checkpoints.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use vine_data::Task;
use vine_model::{LoadOptions, SaveOptions, Tokenizer, Transformer, ValueModel};
use vine_rollout::{Engine, EngineConfig, SamplingParams};

use super::update::Critic;
use crate::checkpoint::{Checkpointer, TrainState};
use crate::config::{self, TrainConfig};
use crate::eval::{evaluate, EvalReport, EvalSettings};
use crate::gpu::memory::{gib, PeakMemory};
use crate::metrics::{Metrics, MetricsLog};
use crate::optim::{AdamW, AdamWConfig, LrSchedule};
use crate::progress::Bars;
use crate::seeds::{seed_for, Purpose};
use crate::session::{device, dtype, load_model, load_task};
use crate::text::encode_prompt;

/// Everything one training run holds.
pub struct Trainer {
    pub(super) cfg: TrainConfig,
    pub(super) run_dir: PathBuf,
    pub(super) task: Task,
    pub(super) tokenizer: Tokenizer,
    pub(super) eos: u32,
    /// Prompt ids of every training problem.
    pub(super) prompts: Vec<Vec<u32>>,
    /// This iteration's prompts and their problems (for grading MC rollouts).
    pub(super) iteration_prompts: Vec<(Vec<u32>, usize)>,
    pub(super) policy: Transformer,
    pub(super) reference: Transformer,
    pub(super) critic: Option<Critic>,
    pub(super) last_old_values: Option<Vec<Vec<f32>>>,
    pub(super) optimizer: AdamW,
    pub(super) schedule: LrSchedule,
    pub(super) engine: Engine,
    pub(super) sampling: SamplingParams,
    pub(super) stop_strings: Vec<String>,
    pub(super) state: TrainState,
    pub(super) bars: Bars,
    log: MetricsLog,
    checkpoints: Checkpointer,
    session_start: Instant,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Run directory.
    pub run_dir: PathBuf,
    /// Held-out pass@1 before training (if evaluated in this run's history).
    pub initial_pass1: Option<f64>,
    /// Held-out pass@1 at the end.
    pub final_pass1: Option<f64>,
    /// Wall-clock seconds of the whole run (all sessions).
    pub elapsed_s: f64,
    /// Iterations completed.
    pub iterations: u64,
}

fn adamw(cfg: &config::OptimSection) -> AdamWConfig {
    AdamWConfig {
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
        max_grad_norm: (cfg.max_grad_norm > 0.0).then_some(cfg.max_grad_norm),
    }
}

/// The sampling settings of trajectories and MC rollouts: the `[rollout]` section, with the
/// context capped at what the model supports.
pub fn sampling_params(
    cfg: &TrainConfig,
    max_position_embeddings: usize,
    stop_ids: &[u32],
) -> SamplingParams {
    let r = &cfg.rollout;
    SamplingParams {
        temperature: r.temperature as f32,
        top_p: r.top_p as f32,
        top_k: r.top_k,
        max_new_tokens: r.max_new_tokens,
        max_context: r.max_context.min(max_position_embeddings),
        stop_token_ids: stop_ids.to_vec(),
        ignore_eos: false,
    }
}

/// Stop strings of sampling: the prompt template's, then `rollout.stop_strings`.
pub fn stop_strings(cfg: &TrainConfig, task: &Task) -> Vec<String> {
    let mut out = task.prompt().stop().to_vec();
    out.extend(cfg.rollout.stop_strings.iter().cloned());
    out
}

impl Trainer {
    /// A fresh run of `cfg`, or the continuation of the run in `resume` (whose saved config is
    /// used; `cfg` is ignored then).
    pub fn setup(cfg: TrainConfig, resume: Option<&Path>) -> Result<Self> {
        let (cfg, run_dir, latest) = match resume {
            Some(dir) => {
                let cfg: TrainConfig = config::load(Some(&dir.join("config.toml")), &[])
                    .with_context(|| {
                        format!("`{}` is not a resumable run directory", dir.display())
                    })?;
                let latest = Checkpointer::new(dir, cfg.run.keep_checkpoints).latest()?;
                (cfg, dir.to_path_buf(), latest)
            }
            None => {
                let dir = cfg.run_dir();
                if dir.join("checkpoints").exists() || dir.join("metrics.jsonl").exists() {
                    bail!("run directory `{}` already holds a run: resume it with `--resume {}` or set `run.out_dir` to a new directory", dir.display(), dir.display());
                }
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating `{}`", dir.display()))?;
                crate::atomic::write_file(
                    &dir.join("config.toml"),
                    config::to_toml(&cfg)?.as_bytes(),
                )?;
                (cfg, dir, None)
            }
        };
        let dev = device(&cfg.model.device)?;
        let dt = dtype(cfg.model.dtype);
        let initial = load_model(&cfg.model.path, &dev, dt, false)?;
        let eos = initial.tokenizer.eos_id().with_context(|| {
            format!("`{}` defines no EOS token; vineppo appends EOS to finished responses, so the tokenizer needs one", cfg.model.path.display())
        })?;
        let mut task = load_task(&cfg.task)?;
        let dropped = task.drop_long_prompts(cfg.rollout.max_prompt_tokens, |q| {
            initial
                .tokenizer
                .encode(q, false)
                .map(|v| v.len() + 1)
                .unwrap_or(usize::MAX)
        });
        if task.train().is_empty() {
            bail!(
                "every training problem is longer than `rollout.max_prompt_tokens` = {}",
                cfg.rollout.max_prompt_tokens
            );
        }
        if dropped > 0 {
            tracing::warn!(
                "dropped {dropped} training problems longer than {} tokens",
                cfg.rollout.max_prompt_tokens
            );
        }
        let prompts = task
            .train()
            .iter()
            .map(|ex| encode_prompt(&task, &initial.tokenizer, ex))
            .collect::<Result<Vec<_>>>()?;
        let opts = LoadOptions {
            dtype: dt,
            device: dev.clone(),
            trainable: true,
        };
        let policy_dir = latest
            .as_ref()
            .map(|(d, _)| d.join("policy"))
            .unwrap_or_else(|| cfg.model.path.clone());
        let policy = Transformer::load(&policy_dir, &opts)
            .with_context(|| format!("loading the policy from `{}`", policy_dir.display()))?;
        let mut optimizer = AdamW::new(policy.vars(), adamw(&cfg.optim))?;
        let critic = match &cfg.credit {
            vine_rl::Credit::Gae(p) => {
                let dir = latest
                    .as_ref()
                    .map(|(d, _)| d.join("critic"))
                    .unwrap_or_else(|| cfg.model.path.clone());
                let model =
                    ValueModel::load(&dir, &opts, seed_for(cfg.run.seed, Purpose::Init, 0, 0))
                        .with_context(|| format!("loading the critic from `{}`", dir.display()))?;
                let optimizer = AdamW::new(model.vars(), adamw(&cfg.optim))?;
                Some(Critic {
                    model,
                    optimizer,
                    clip: p.value_clip,
                })
            }
            _ => None,
        };
        let mut critic = critic;
        let state = match &latest {
            Some((dir, state)) => {
                optimizer.load(&dir.join("optimizer.safetensors"))?;
                if let Some(c) = critic.as_mut() {
                    c.optimizer
                        .load(&dir.join("critic_optimizer.safetensors"))?;
                }
                state.clone()
            }
            None => TrainState::fresh(),
        };
        let log = MetricsLog::open(
            &run_dir,
            crate::checkpoint::keep_metrics_through(latest.as_ref(), resume.is_some()),
        )?;
        let total = cfg.total_steps();
        let schedule = LrSchedule {
            peak: cfg.optim.lr,
            warmup_steps: LrSchedule::warmup_steps_for(total, cfg.optim.warmup_fraction),
            total_steps: total,
            warmup: cfg.optim.warmup,
            decay: cfg.optim.decay,
        };
        let sampling = sampling_params(
            &cfg,
            initial.model.config().max_position_embeddings,
            initial.tokenizer.stop_ids(),
        );
        let stop_strings = stop_strings(&cfg, &task);
        let engine = Engine::new(EngineConfig {
            max_batch: cfg.run.max_batch,
            ..EngineConfig::default()
        })?;
        let checkpoints = Checkpointer::new(&run_dir, cfg.run.keep_checkpoints);
        let bars = Bars::new(cfg.run.progress);
        Ok(Self {
            run_dir,
            task,
            tokenizer: initial.tokenizer,
            eos,
            prompts,
            iteration_prompts: Vec::new(),
            reference: initial.model,
            policy,
            critic,
            last_old_values: None,
            optimizer,
            schedule,
            engine,
            sampling,
            stop_strings,
            state,
            bars,
            log,
            checkpoints,
            session_start: Instant::now(),
            cfg,
        })
    }

    fn elapsed(&self) -> f64 {
        self.state.elapsed_s + self.session_start.elapsed().as_secs_f64()
    }

    /// Runs the remaining iterations, evaluating and checkpointing on schedule.
    pub fn run(&mut self) -> Result<Summary> {
        let total = self.cfg.run.iterations;
        let bar = self.bars.main(total, "iter");
        bar.set_prefix(config::method_name(&self.cfg.credit));
        bar.set_position(self.state.iteration);
        if self.state.iteration == 0 && self.cfg.eval.at_start && self.log_is_empty() {
            let mut m = Metrics::new(0);
            m.time("eval", || self.evaluate(0, &mut Metrics::new(0)))
                .and_then(|r| self.record_eval(&mut m, &r))?;
            m.set("time/elapsed_s", self.elapsed());
            self.log.append(&m)?;
        }
        for it in self.state.iteration + 1..=total {
            // Device memory high-water mark of the iteration (GPU runs only).
            let memory = PeakMemory::start(self.policy.device(), Duration::from_millis(20));
            let mut m = self.iteration(it)?;
            let last = it == total;
            if last || (self.cfg.eval.every > 0 && it % self.cfg.eval.every == 0) {
                let report = m.time("eval", || self.evaluate(it, &mut Metrics::new(it)))?;
                self.record_eval(&mut m, &report)?;
            }
            self.state.iteration = it;
            m.set("time/elapsed_s", self.elapsed());
            if last || (self.cfg.run.save_every > 0 && it % self.cfg.run.save_every == 0) {
                m.time("checkpoint", || self.save_checkpoint())?;
            }
            if let Some((_, peak)) = memory.finish() {
                m.set("gpu/peak_memory_gib", gib(peak));
            }
            self.log.append(&m)?;
            bar.set_position(it);
            bar.set_message(progress_message(&m));
        }
        bar.finish();
        self.finish()
    }

    fn log_is_empty(&self) -> bool {
        crate::metrics::read_metrics(&self.run_dir.join("metrics.jsonl"))
            .map(|v| v.is_empty())
            .unwrap_or(true)
    }

    /// Samples and grades the held-out problems with the current policy.
    fn evaluate(&mut self, it: u64, _m: &mut Metrics) -> Result<EvalReport> {
        let e = &self.cfg.eval;
        let settings = EvalSettings {
            samples: e.samples,
            temperature: e.temperature,
            top_p: e.top_p,
            max_new_tokens: e.max_new_tokens.unwrap_or(self.cfg.rollout.max_new_tokens),
            max_context: self.sampling.max_context,
            seed: e.seed,
            stop_strings: self.cfg.rollout.stop_strings.clone(),
        };
        let test = self.task.test();
        let examples = &test[..e.limit.unwrap_or(test.len()).min(test.len())];
        let mut bar = self.bars.generation("eval");
        let report = evaluate(
            &self.policy,
            &self.tokenizer,
            &self.task,
            examples,
            &settings,
            &self.engine,
            &mut |p| bar.update(p),
        )?;
        drop(bar);
        let path = self.run_dir.join("eval").join(format!("iter_{it:06}.json"));
        crate::atomic::write_file(&path, serde_json::to_string(&report)?.as_bytes())?;
        self.bars.println(&format!(
            "iteration {it:>4}: held-out pass@1 {:.1}%  maj@{n} {:.1}%  pass@{n} {:.1}%",
            report.pass1 * 100.0,
            report.majority * 100.0,
            report.pass_n * 100.0,
            n = e.samples
        ));
        Ok(report)
    }

    fn record_eval(&mut self, m: &mut Metrics, r: &EvalReport) -> Result<()> {
        m.set("eval/pass1", r.pass1);
        m.set("eval/majority", r.majority);
        m.set("eval/pass_n", r.pass_n);
        m.set("eval/problems", r.problems as f64);
        m.set("eval/mean_tokens", r.mean_tokens);
        m.set("eval/truncated_frac", r.truncated_frac);
        let it = m.get("iteration").unwrap_or(0.0) as u64;
        if self.state.best.is_none_or(|(b, _)| r.pass1 > b) {
            self.state.best = Some((r.pass1, it));
        }
        Ok(())
    }

    /// Writes a checkpoint of the current iteration.
    fn save_checkpoint(&mut self) -> Result<()> {
        self.state.elapsed_s = self.elapsed();
        self.session_start = Instant::now();
        let source = Some(self.cfg.model.path.clone());
        self.checkpoints.save(&self.state, |dir| {
            let policy = dir.join("policy");
            std::fs::create_dir_all(&policy)?;
            self.policy.write_hf_files(
                &policy,
                &SaveOptions {
                    dtype: None,
                    source_dir: source.clone(),
                },
            )?;
            self.optimizer.save(&dir.join("optimizer.safetensors"))?;
            if let Some(c) = &self.critic {
                c.model.save_pretrained(
                    dir.join("critic"),
                    &SaveOptions {
                        dtype: None,
                        source_dir: source.clone(),
                    },
                )?;
                c.optimizer
                    .save(&dir.join("critic_optimizer.safetensors"))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Final policy as a Hugging Face directory, report, summary.
    fn finish(&mut self) -> Result<Summary> {
        let source = Some(self.cfg.model.path.clone());
        self.policy.save_pretrained(
            self.run_dir.join("final"),
            &SaveOptions {
                dtype: None,
                source_dir: source,
            },
        )?;
        let run = crate::report::load_run(&self.run_dir)?;
        let evals = crate::report::points(&run, "iteration", crate::report::EVAL_KEY, 1.0);
        crate::report::write_report(
            std::slice::from_ref(&run),
            &self.run_dir,
            &format!("{} on {}", run.label, self.cfg.task.kind.name()),
        )?;
        let summary = Summary {
            run_dir: self.run_dir.clone(),
            initial_pass1: evals.first().filter(|p| p.0 == 0.0).map(|p| p.1),
            final_pass1: evals.last().map(|p| p.1),
            elapsed_s: self.state.elapsed_s,
            iterations: self.state.iteration,
        };
        Ok(summary)
    }

    /// Test hook: `VINEPPO_TEST_CRASH_AT=<iteration>:<stage>` aborts the process there, as a
    /// crash or kill would, to test resuming a run interrupted mid-iteration.
    pub(super) fn crash_point(&self, it: u64, stage: &str) {
        crate::checkpoint::crash_point(it, stage);
    }

    /// The device the policy lives on.
    pub fn device(&self) -> &Device {
        self.policy.device()
    }
}

fn progress_message(m: &Metrics) -> String {
    let mut s = format!("reward {:.3}", m.get("reward/mean").unwrap_or(f64::NAN));
    if let Some(kl) = m.get("kl/k1_seq_mean") {
        s.push_str(&format!(" kl {kl:.4}"));
    }
    if let Some(e) = m.get("eval/pass1") {
        s.push_str(&format!(" | held-out {:.1}%", e * 100.0));
    }
    s
}
