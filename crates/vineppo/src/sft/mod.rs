//! `vineppo sft`: supervised fine-tuning on a task's reference solutions (spec §3.1).
//!
//! Each example is `[BOS] + query` followed by the target `"\n{solution}\n" + EOS`; the loss is
//! the NLL of the target tokens, averaged over each sequence's tokens and then over the batch
//! (`per_instance_non_pad_tokens_then_batch`). Epoch `e` visits the training split in a
//! permutation seeded by `(seed, e)`; a checkpoint records the optimizer step, so a resumed run
//! skips exactly the batches already taken.

pub mod init;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use vine_data::Task;
use vine_model::{target_logprobs, LoadOptions, SaveOptions, Tokenizer, Transformer};
use vine_rl::loss::{sft_loss, Normalizer};
use vine_rl::{batch, Batch, Episode};
use vine_rollout::{Engine, EngineConfig};

use crate::checkpoint::{Checkpointer, TrainState};
use crate::config::sft::SftConfig;
use crate::config::{self};
use crate::eval::{evaluate, EvalSettings};
use crate::metrics::{Metrics, MetricsLog};
use crate::optim::{AdamW, AdamWConfig, GradAccumulator, LrSchedule};
use crate::progress::Bars;
use crate::seeds::{seed_for, Purpose};
use crate::session::{device, dtype, load_task};
use crate::text::encode_prompt;

/// Tokenised training examples as episodes (response = target + EOS); over-long ones dropped.
fn sft_examples(task: &Task, tokenizer: &Tokenizer, max_length: usize) -> Result<Vec<Episode>> {
    let eos = tokenizer.eos_id();
    let mut out = Vec::with_capacity(task.train().len());
    for ex in task.train() {
        let prompt = encode_prompt(task, tokenizer, ex)?;
        let mut response = tokenizer.encode(&task.target(ex), false)?;
        if task.prompt().eos() {
            response.extend(eos);
        }
        if response.is_empty() || prompt.len() + response.len() > max_length {
            continue;
        }
        out.push(Episode::new(0, prompt, response, true, 0.0, vec![0])?);
    }
    if out.is_empty() {
        bail!("no training example fits in `sft.max_length` = {max_length} tokens");
    }
    Ok(out)
}

/// Runs `vineppo sft` (or resumes the run in `resume`); returns the final model directory.
pub fn run(cfg: SftConfig, resume: Option<&Path>) -> Result<PathBuf> {
    let (cfg, run_dir) = match resume {
        Some(dir) => (
            config::load::<SftConfig>(Some(&dir.join("config.toml")), &[])?,
            dir.to_path_buf(),
        ),
        None => {
            let dir = cfg.run_dir();
            if dir.join("metrics.jsonl").exists() {
                bail!("run directory `{}` already holds a run: resume it with `--resume {}` or set `run.out_dir`", dir.display(), dir.display());
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
            crate::atomic::write_file(&dir.join("config.toml"), config::to_toml(&cfg)?.as_bytes())?;
            (cfg, dir)
        }
    };
    let dev = device(&cfg.model.device)?;
    let dt = dtype(cfg.model.dtype);
    let task = load_task(&cfg.task)?;
    let start_dir = match (&cfg.model.path, &cfg.model.init) {
        (Some(p), _) => p.clone(),
        (None, Some(init)) => {
            let dir = run_dir.join("init");
            if !dir.join("model.safetensors").exists() {
                let staged = crate::atomic::StagedDir::new(&dir)?;
                init::write_fresh_model(
                    init,
                    &task,
                    staged.path(),
                    seed_for(cfg.run.seed, Purpose::Init, 0, 0),
                )?;
                staged.commit()?;
            }
            dir
        }
        (None, None) => bail!("set `model.path` or `[model.init]`"),
    };
    let checkpoints = Checkpointer::new(&run_dir, cfg.run.keep_checkpoints);
    let latest = checkpoints.latest_if(resume.is_some())?;
    let tokenizer = Tokenizer::from_dir(&start_dir)?;
    let weights_dir = latest
        .as_ref()
        .map(|(d, _)| d.join("policy"))
        .unwrap_or_else(|| start_dir.clone());
    let model = Transformer::load(
        &weights_dir,
        &LoadOptions {
            dtype: dt,
            device: dev.clone(),
            trainable: true,
        },
    )
    .with_context(|| format!("loading `{}`", weights_dir.display()))?;
    let examples = sft_examples(
        &task,
        &tokenizer,
        cfg.sft
            .max_length
            .min(model.config().max_position_embeddings),
    )?;
    let o = &cfg.optim;
    let mut optimizer = AdamW::new(
        model.vars(),
        AdamWConfig {
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            max_grad_norm: (o.max_grad_norm > 0.0).then_some(o.max_grad_norm),
        },
    )?;
    let mut state = TrainState::fresh();
    if let Some((dir, s)) = &latest {
        optimizer.load(&dir.join("optimizer.safetensors"))?;
        state = s.clone();
    }
    let steps_per_epoch = examples.len().div_ceil(cfg.sft.batch_size) as u64;
    let total = steps_per_epoch * cfg.sft.epochs as u64;
    let schedule = LrSchedule {
        peak: o.lr,
        warmup_steps: LrSchedule::warmup_steps_for(total, o.warmup_fraction),
        total_steps: total,
        warmup: o.warmup,
        decay: o.decay,
    };
    let mut log = MetricsLog::open(
        &run_dir,
        crate::checkpoint::keep_metrics_through(latest.as_ref(), resume.is_some()),
    )?;
    let engine = Engine::new(EngineConfig {
        max_batch: cfg.run.max_batch,
        ..EngineConfig::default()
    })?;
    let bars = Bars::new(cfg.run.progress);
    let ctx = EvalCtx {
        cfg: &cfg,
        task: &task,
        tokenizer: &tokenizer,
        engine: &engine,
        bars: &bars,
        run_dir: &run_dir,
    };
    let session = Instant::now();
    let base_elapsed = state.elapsed_s;
    let elapsed = || base_elapsed + session.elapsed().as_secs_f64();
    if state.iteration == 0 && cfg.eval.at_start && latest.is_none() {
        let mut m = Metrics::new(0);
        m.time("eval", || ctx.eval(&model, 0, &mut Metrics::new(0)))?
            .record(&mut m);
        log.append(&m)?;
    }
    let bar = bars.main(total, "steps");
    bar.set_prefix("sft");
    bar.set_position(state.iteration);
    let mut window = Window::default();
    for step in state.iteration..total {
        let epoch = step / steps_per_epoch;
        let order = batch::shuffled(
            examples.len(),
            seed_for(cfg.run.seed, Purpose::SftOrder, epoch, 0),
        );
        let k = (step % steps_per_epoch) as usize * cfg.sft.batch_size;
        let ids: Vec<usize> = order[k..(k + cfg.sft.batch_size).min(order.len())].to_vec();
        let start = Instant::now();
        let (grads, loss, tokens) =
            sft_step(&model, &examples, &ids, cfg.sft.micro_batch_size, &dev, 1.0)?;
        let stats = optimizer.step(&grads, schedule.lr(step))?;
        window.add(tokens, loss, stats.grad_norm, start.elapsed().as_secs_f64());
        let done = step + 1;
        state.iteration = done;
        state.optimizer_steps = done;
        let last = done == total;
        if done % cfg.sft.log_every.max(1) == 0
            || last
            || (cfg.eval.every > 0 && done % cfg.eval.every == 0)
        {
            let mut m = Metrics::new(done);
            window.flush(&mut m, stats.lr, epoch);
            if last || (cfg.eval.every > 0 && done % cfg.eval.every == 0) {
                m.time("eval", || ctx.eval(&model, done, &mut Metrics::new(done)))?
                    .record(&mut m);
            }
            m.set("time/elapsed_s", elapsed());
            if last || (cfg.run.save_every > 0 && done % cfg.run.save_every == 0) {
                let saved = TrainState {
                    elapsed_s: elapsed(),
                    ..state.clone()
                };
                checkpoints.save(&saved, |dir| {
                    let p = dir.join("policy");
                    std::fs::create_dir_all(&p)?;
                    model.write_hf_files(
                        &p,
                        &SaveOptions {
                            dtype: None,
                            source_dir: Some(start_dir.clone()),
                        },
                    )?;
                    optimizer.save(&dir.join("optimizer.safetensors"))
                })?;
            }
            bar.set_message(format!(
                "loss {:.4}{}",
                m.get("sft/loss").unwrap_or(f64::NAN),
                m.get("eval/pass1")
                    .map(|e| format!(" | held-out {:.1}%", e * 100.0))
                    .unwrap_or_default()
            ));
            log.append(&m)?;
        }
        bar.set_position(done);
    }
    bar.finish();
    let final_dir = run_dir.join("final");
    let opts = SaveOptions {
        dtype: None,
        source_dir: Some(start_dir.clone()),
    };
    model.save_pretrained(&final_dir, &opts)?;
    if let Some(out) = &cfg.output {
        model.save_pretrained(out, &opts)?;
    }
    let run = crate::report::load_run(&run_dir)?;
    crate::report::write_report(
        std::slice::from_ref(&run),
        &run_dir,
        &format!("SFT on {}", cfg.task.kind.name()),
    )?;
    Ok(cfg.output.clone().unwrap_or(final_dir))
}

/// Per-token log-probs `(B, L−1)` of `b`'s targets under `model`, with logits divided by
/// `temperature`; differentiable when `model` is trainable.
pub(crate) fn target_token_logprobs(
    model: &Transformer,
    b: &Batch,
    temperature: f64,
) -> Result<candle_core::Tensor> {
    let (rows, l) = b.input_ids.dims2()?;
    let hidden = model
        .forward_hidden(&b.input_ids, &[], None)?
        .narrow(1, 0, l - 1)?; // (B, L−1, H)
    let logits = model
        .lm_head(&hidden)?
        .reshape((rows * (l - 1), model.config().vocab_size))?; // (N, V)
    Ok(target_logprobs(&logits, &b.targets.flatten_all()?, temperature)?.reshape((rows, l - 1))?)
}

/// One optimizer step's gradients over the examples `ids` (micro-batched), with the SFT loss on
/// logits divided by `temperature` (1 for plain SFT; RestEM uses the sampling temperature, as the
/// reference does); returns the summed gradients, the loss and the number of target tokens.
pub(crate) fn sft_step(
    model: &Transformer,
    examples: &[Episode],
    ids: &[usize],
    micro: usize,
    dev: &Device,
    temperature: f64,
) -> Result<(GradAccumulator, f64, usize)> {
    let parts = batch::micro_batches_by_length(examples, ids, micro)?;
    let batches: Vec<Batch> = parts
        .iter()
        .map(|p| Batch::collate(p.iter().map(|&i| &examples[i]), dev))
        .collect::<std::result::Result<_, _>>()?;
    let norm = Normalizer::of_batches(&batches);
    let mut grads = GradAccumulator::default();
    let mut loss_sum = 0.0;
    for b in &batches {
        let logp = target_token_logprobs(model, b, temperature)?; // (B, L−1)
        let loss = sft_loss(&logp, &b.response_mask, Some(&norm))?;
        loss_sum += loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        grads.add(&model.vars(), &loss.backward()?, 1.0)?;
    }
    Ok((grads, loss_sum, norm.tokens as usize))
}

/// Training metrics accumulated between log lines.
#[derive(Default)]
struct Window {
    loss: f64,
    grad_norm: f64,
    tokens: usize,
    seconds: f64,
    steps: f64,
}

impl Window {
    fn add(&mut self, tokens: usize, loss: f64, grad_norm: f64, seconds: f64) {
        self.loss += loss;
        self.grad_norm += grad_norm;
        self.tokens += tokens;
        self.seconds += seconds;
        self.steps += 1.0;
    }

    fn flush(&mut self, m: &mut Metrics, lr: f64, epoch: u64) {
        let s = self.steps.max(1.0);
        m.set("sft/loss", self.loss / s);
        m.set("sft/grad_norm", self.grad_norm / s);
        m.set("sft/lr", lr);
        m.set("sft/epoch", epoch as f64);
        m.set(
            "throughput/train_tokens_per_s",
            self.tokens as f64 / self.seconds.max(1e-9),
        );
        m.set(
            "progress/optimizer_steps",
            m.get("iteration").unwrap_or(0.0),
        );
        *self = Window::default();
    }
}

/// What evaluating during SFT needs.
struct EvalCtx<'a> {
    cfg: &'a SftConfig,
    task: &'a Task,
    tokenizer: &'a Tokenizer,
    engine: &'a Engine,
    bars: &'a Bars,
    run_dir: &'a Path,
}

struct Evaluated(crate::eval::EvalReport);

impl Evaluated {
    fn record(self, m: &mut Metrics) {
        m.set("eval/pass1", self.0.pass1);
        m.set("eval/majority", self.0.majority);
        m.set("eval/pass_n", self.0.pass_n);
        m.set("eval/mean_tokens", self.0.mean_tokens);
        m.set("eval/truncated_frac", self.0.truncated_frac);
    }
}

impl EvalCtx<'_> {
    fn eval(&self, model: &Transformer, step: u64, _m: &mut Metrics) -> Result<Evaluated> {
        let e = &self.cfg.eval;
        let settings = EvalSettings {
            samples: e.samples,
            temperature: e.temperature,
            top_p: e.top_p,
            max_new_tokens: e.max_new_tokens.unwrap_or(256),
            max_context: model.config().max_position_embeddings,
            seed: e.seed,
            stop_strings: Vec::new(),
        };
        let test = self.task.test();
        let examples = &test[..e.limit.unwrap_or(test.len()).min(test.len())];
        let mut bar = self.bars.generation("eval");
        let report = evaluate(
            model,
            self.tokenizer,
            self.task,
            examples,
            &settings,
            self.engine,
            &mut |p| bar.update(p),
        )?;
        drop(bar);
        crate::atomic::write_file(
            &self
                .run_dir
                .join("eval")
                .join(format!("step_{step:06}.json")),
            serde_json::to_string(&report)?.as_bytes(),
        )?;
        self.bars.println(&format!(
            "step {step:>6}: held-out pass@1 {:.1}%  maj@{n} {:.1}%  pass@{n} {:.1}%",
            report.pass1 * 100.0,
            report.majority * 100.0,
            report.pass_n * 100.0,
            n = e.samples
        ));
        Ok(Evaluated(report))
    }
}
