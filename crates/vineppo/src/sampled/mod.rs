//! What the sample-then-fine-tune baselines (`vineppo restem`, `vineppo dpo`) share: a
//! [`SampleSession`] that samples N graded responses for a set of training problems, evaluates a
//! model on a list of problems, and turns samples into episodes; and [`store`], which saves a
//! round of samples compactly so a resumed run trains on exactly the same data.
//!
//! Scoring follows the trainer's (spec §1.6): a response is correct when it finished (EOS or a
//! stop string) and the grader accepts its answer; an unfinished one scores 0 and gets no EOS.
//! Unlike `vineppo train`, responses are not split into steps, so none is dropped as
//! unsplittable; only empty responses (nothing to train on) are skipped when building episodes.
//!
//! Sampling goes through the engine in chunks of problems (every sample's randomness depends
//! only on its problem's seed, so chunking changes nothing but peak memory).

pub mod store;

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use serde::Serialize;
use vine_data::{Example, Task};
use vine_model::{LoadOptions, Tokenizer, Transformer};
use vine_rl::Episode;
use vine_rollout::{Engine, EngineConfig, FinishReason, Request, SamplingParams};

use crate::config::sampled::SampledRolloutSection;
use crate::config::{self, EvalSection, ModelSection};
use crate::eval::{evaluate, EvalReport, EvalSettings};
use crate::metrics::Metrics;
use crate::progress::Bars;
use crate::seeds::{seed_for, Purpose};
use crate::session::{device, dtype, load_task};
use crate::text::{decode_response, encode_prompt, TextStops};
use crate::train::Summary;

/// One graded response to a training problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    /// Index of the problem in the task's training split.
    pub problem: usize,
    /// Generated tokens, without EOS or the stop string.
    pub tokens: Vec<u32>,
    /// Stopped on EOS or a stop string (not cut by a length limit).
    pub finished: bool,
    /// Finished and graded correct: reward 1, else 0.
    pub correct: bool,
}

impl Graded {
    /// The 0/1 reward.
    pub fn reward(&self) -> f32 {
        if self.correct {
            1.0
        } else {
            0.0
        }
    }
}

/// Counts over a round of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleStats {
    /// Problems sampled.
    pub problems: usize,
    /// Responses sampled.
    pub samples: usize,
    /// Responses that finished.
    pub finished: usize,
    /// Correct responses.
    pub correct: usize,
    /// Generated tokens.
    pub tokens: usize,
    /// Problems with at least one correct response.
    pub solved: usize,
}

impl SampleStats {
    /// Counts `graded`, the responses to `problems` problems.
    pub fn of(graded: &[Graded], problems: usize) -> Self {
        let mut solved: Vec<usize> = graded
            .iter()
            .filter(|g| g.correct)
            .map(|g| g.problem)
            .collect();
        solved.sort_unstable();
        solved.dedup();
        Self {
            problems,
            samples: graded.len(),
            finished: graded.iter().filter(|g| g.finished).count(),
            correct: graded.iter().filter(|g| g.correct).count(),
            tokens: graded.iter().map(|g| g.tokens.len()).sum(),
            solved: solved.len(),
        }
    }

    /// Logs `reward/*` and `response/*` as `vineppo train` does, and `{method}/problems`,
    /// `{method}/samples`, `{method}/solved_frac` (pass@N on the sampled training problems).
    pub fn log(&self, m: &mut Metrics, method: &str) {
        let n = self.samples.max(1) as f64;
        m.set("reward/mean", self.correct as f64 / n);
        m.set("reward/finished_frac", self.finished as f64 / n);
        m.set("response/truncated_frac", 1.0 - self.finished as f64 / n);
        m.set("response/length_mean", self.tokens as f64 / n);
        m.set(&format!("{method}/problems"), self.problems as f64);
        m.set(&format!("{method}/samples"), self.samples as f64);
        m.set(
            &format!("{method}/solved_frac"),
            self.solved as f64 / self.problems.max(1) as f64,
        );
    }
}

/// Device, task, tokenizer, prompts and engine of a baseline run.
pub struct SampleSession {
    /// The task (long prompts already dropped from its training split).
    pub task: Task,
    /// The initial model's tokenizer.
    pub tokenizer: Tokenizer,
    /// EOS id, appended to finished responses.
    pub eos: u32,
    /// Prompt ids of every training problem.
    pub prompts: Vec<Vec<u32>>,
    /// The generation engine.
    pub engine: Engine,
    /// Training-sample settings.
    pub params: SamplingParams,
    /// The template's stop strings plus the config's.
    pub stop_strings: Vec<String>,
    /// The config's extra stop strings (evaluation adds the template's itself).
    pub extra_stops: Vec<String>,
    /// Where the models live.
    pub device: Device,
    /// Weight dtype.
    pub dtype: DType,
    /// Context length of the model.
    pub max_position_embeddings: usize,
}

impl SampleSession {
    /// Loads the tokenizer and config of the initial model and the task.
    pub fn open(
        model: &ModelSection,
        task: &vine_data::TaskConfig,
        rollout: &SampledRolloutSection,
        max_batch: usize,
    ) -> Result<Self> {
        let dir = &model.path;
        let tokenizer = Tokenizer::from_dir(dir)
            .with_context(|| format!("loading the tokenizer of `{}`", dir.display()))?;
        let model_cfg = vine_model::ModelConfig::from_dir(dir)
            .with_context(|| format!("reading the config of `{}`", dir.display()))?;
        if tokenizer.vocab_size() > model_cfg.vocab_size {
            bail!(
                "`{}`: the tokenizer has {} tokens but config.json's vocab_size is {}; the checkpoint and tokenizer do not belong together",
                dir.display(),
                tokenizer.vocab_size(),
                model_cfg.vocab_size
            );
        }
        let eos = tokenizer.eos_id().with_context(|| {
            format!("`{}` defines no EOS token; finished responses get EOS appended, so the tokenizer needs one", dir.display())
        })?;
        let (task, prompts) = training_task(task, &tokenizer, rollout.max_prompt_tokens)?;
        let max_position_embeddings = model_cfg.max_position_embeddings;
        let params = SamplingParams {
            temperature: rollout.temperature as f32,
            top_p: rollout.top_p as f32,
            top_k: rollout.top_k,
            max_new_tokens: rollout.max_new_tokens,
            max_context: rollout.max_context.min(max_position_embeddings),
            stop_token_ids: tokenizer.stop_ids().to_vec(),
            ignore_eos: false,
        };
        let mut stop_strings = task.prompt().stop().to_vec();
        stop_strings.extend(rollout.stop_strings.iter().cloned());
        let engine = Engine::new(EngineConfig {
            max_batch,
            ..EngineConfig::default()
        })?;
        Ok(Self {
            task,
            tokenizer,
            eos,
            prompts,
            engine,
            params,
            stop_strings,
            extra_stops: rollout.stop_strings.clone(),
            device: device(&model.device)?,
            dtype: dtype(model.dtype),
            max_position_embeddings,
        })
    }

    /// Loads a model directory onto the session's device.
    pub fn load(&self, dir: &Path, trainable: bool) -> Result<Transformer> {
        let opts = LoadOptions {
            dtype: self.dtype,
            device: self.device.clone(),
            trainable,
        };
        Transformer::load(dir, &opts).with_context(|| format!("loading model `{}`", dir.display()))
    }

    /// `n` graded samples of each training problem in `problems` from `lm`, in problem order;
    /// problem `problems[g]` is sampled with seed `(seed, Trajectories, iteration, g)`.
    pub fn sample(
        &self,
        lm: &Transformer,
        problems: &[usize],
        n: usize,
        (seed, iteration): (u64, u64),
        bars: &Bars,
    ) -> Result<Vec<Graded>> {
        let stops = TextStops::new(&self.tokenizer, &self.stop_strings);
        let chunk = (8 * self.engine_rows() / n.max(1)).max(1);
        let total = problems.len() * n;
        let mut bar = bars.generation("sample");
        let (mut done, mut tokens) = (0usize, 0usize);
        let mut out = Vec::with_capacity(total);
        for (c, part) in problems.chunks(chunk).enumerate() {
            let requests: Vec<Request> = part
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let g = (c * chunk + i) as u64;
                    let s = seed_for(seed, Purpose::Trajectories, iteration, g);
                    Request::new(self.prompts[p].clone(), n, s)
                })
                .collect();
            let samples = self.engine.generate(
                lm,
                &requests,
                &self.params,
                (!stops.is_empty()).then_some(&stops as _),
                &mut |mut p| {
                    p.finished_samples += done;
                    p.total_samples = total;
                    p.generated_tokens += tokens;
                    bar.update(p)
                },
            )?;
            for (&p, group) in part.iter().zip(samples) {
                for s in group {
                    done += 1;
                    tokens += s.tokens.len();
                    out.push(self.grade(p, s.tokens, matches!(s.finish, FinishReason::Stop(_)))?);
                }
            }
        }
        Ok(out)
    }

    fn engine_rows(&self) -> usize {
        self.engine.config().max_batch
    }

    fn grade(&self, problem: usize, tokens: Vec<u32>, finished: bool) -> Result<Graded> {
        let text = decode_response(&self.tokenizer, &tokens)?.text;
        let correct = finished && self.task.grade(&text, &self.task.train()[problem]).correct;
        Ok(Graded {
            problem,
            tokens,
            finished,
            correct,
        })
    }

    /// The training episode of a response: prompt, tokens (+ EOS iff finished), reward, one
    /// step. `None` for an empty response, which has nothing to train on.
    pub fn episode(&self, g: &Graded) -> Result<Option<Episode>> {
        if g.tokens.is_empty() {
            return Ok(None);
        }
        let mut response = g.tokens.clone();
        if g.finished {
            response.push(self.eos);
        }
        let prompt = self.prompts.get(g.problem).with_context(|| {
            format!("sample of problem {} outside the training split", g.problem)
        })?;
        let ep = Episode::new(0, prompt.clone(), response, g.finished, g.reward(), vec![0])
            .context("building an episode")?;
        Ok(Some(ep))
    }

    /// Samples and grades `examples` with the `[eval]` settings.
    pub fn evaluate(
        &self,
        lm: &Transformer,
        examples: &[Example],
        e: &EvalSection,
        bars: &Bars,
        label: &str,
    ) -> Result<EvalReport> {
        let settings = EvalSettings {
            samples: e.samples,
            temperature: e.temperature,
            top_p: e.top_p,
            max_new_tokens: e.max_new_tokens.unwrap_or(self.params.max_new_tokens),
            max_context: self.params.max_context,
            seed: e.seed,
            stop_strings: self.extra_stops.clone(),
        };
        let mut bar = bars.generation(label);
        evaluate(
            lm,
            &self.tokenizer,
            &self.task,
            examples,
            &settings,
            &self.engine,
            &mut |p| bar.update(p),
        )
    }

    /// Evaluates `lm` on the first `eval.limit` test problems, writes the report to `path` and
    /// prints a summary line headed `what` (e.g. `iteration    3`); adds `eval/*` and
    /// `timing/eval_s` to `m`.
    pub fn evaluate_held_out(
        &self,
        lm: &Transformer,
        e: &EvalSection,
        bars: &Bars,
        (path, what): (&Path, &str),
        m: &mut Metrics,
    ) -> Result<()> {
        let start = std::time::Instant::now();
        let report = self.evaluate(lm, self.test_examples(e), e, bars, "eval")?;
        crate::atomic::write_file(path, serde_json::to_string(&report)?.as_bytes())?;
        bars.println(&format!(
            "{what}: held-out pass@1 {:.1}%  maj@{n} {:.1}%  pass@{n} {:.1}%",
            report.pass1 * 100.0,
            report.majority * 100.0,
            report.pass_n * 100.0,
            n = e.samples
        ));
        record_eval(m, &report);
        m.add_time("eval", start);
        Ok(())
    }

    /// The first `eval.limit` test problems.
    pub fn test_examples(&self, e: &EvalSection) -> &[Example] {
        let test = self.task.test();
        &test[..e.limit.unwrap_or(test.len()).min(test.len())]
    }
}

/// The training problems of an iteration: `per_iteration` of the `n` (all of them when `None`),
/// in the order of a shuffle seeded by `(seed, iteration)` (vine-data's `iteration_sample`).
pub fn problem_set(
    n: usize,
    per_iteration: Option<usize>,
    seed: u64,
    iteration: u64,
) -> Vec<usize> {
    vine_data::sample::iteration_sample(n, seed, iteration, per_iteration.unwrap_or(n))
}

/// The task with training problems longer than `max_prompt_tokens` dropped (as the reference's
/// `max_question_length`), and the prompt ids of every remaining training problem.
fn training_task(
    cfg: &vine_data::TaskConfig,
    tokenizer: &Tokenizer,
    max_prompt_tokens: usize,
) -> Result<(Task, Vec<Vec<u32>>)> {
    let mut task = load_task(cfg)?;
    let dropped = task.drop_long_prompts(max_prompt_tokens, |q| {
        tokenizer
            .encode(q, false)
            .map(|v| v.len() + 1)
            .unwrap_or(usize::MAX)
    });
    if task.train().is_empty() {
        bail!("every training problem is longer than `rollout.max_prompt_tokens` = {max_prompt_tokens}");
    }
    if dropped > 0 {
        tracing::warn!(
            "dropped {dropped} training problems longer than {max_prompt_tokens} tokens"
        );
    }
    let prompts = task
        .train()
        .iter()
        .map(|ex| encode_prompt(&task, tokenizer, ex))
        .collect::<Result<Vec<_>>>()?;
    Ok((task, prompts))
}

/// Sets `eval/*` from a held-out report.
pub fn record_eval(m: &mut Metrics, r: &EvalReport) {
    m.set("eval/pass1", r.pass1);
    m.set("eval/majority", r.majority);
    m.set("eval/pass_n", r.pass_n);
    m.set("eval/problems", r.problems as f64);
    m.set("eval/mean_tokens", r.mean_tokens);
    m.set("eval/truncated_frac", r.truncated_frac);
}

/// The run directory of a fresh run, created with the resolved config in `config.toml`; an
/// error if it already holds a run.
pub fn create_run_dir<T: Serialize>(cfg: &T, dir: &Path) -> Result<()> {
    if dir.join("checkpoints").exists() || dir.join("metrics.jsonl").exists() {
        bail!("run directory `{}` already holds a run: resume it with `--resume {}` or set `run.out_dir` to a new directory", dir.display(), dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    crate::atomic::write_file(&dir.join("config.toml"), config::to_toml(cfg)?.as_bytes())
}

/// Whether `metrics.jsonl` has a line for `iteration`.
pub fn logged(run_dir: &Path, iteration: u64) -> bool {
    crate::metrics::read_metrics(&run_dir.join("metrics.jsonl"))
        .map(|v| {
            v.iter()
                .any(|m| m.get("iteration") == Some(iteration as f64))
        })
        .unwrap_or(false)
}

/// Writes the run's report and returns its summary.
pub fn finish_report(
    run_dir: &Path,
    title: &str,
    iterations: u64,
    elapsed_s: f64,
) -> Result<Summary> {
    let run = crate::report::load_run(run_dir)?;
    let evals = crate::report::points(&run, "iteration", crate::report::EVAL_KEY, 1.0);
    crate::report::write_report(std::slice::from_ref(&run), run_dir, title)?;
    Ok(Summary {
        run_dir: run_dir.to_path_buf(),
        initial_pass1: evals.first().filter(|p| p.0 == 0.0).map(|p| p.1),
        final_pass1: evals.last().map(|p| p.1),
        elapsed_s,
        iterations,
    })
}
