//! `vineppo analyze-values`: load a checkpoint of a run (its policy, and its critic when the run
//! trains one), measure how well the critic and K-sample MC estimates predict state values and
//! rank alternative next steps (`crate::analysis`), and write the report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use vine_model::{LoadOptions, ValueModel};
use vine_rollout::{Engine, EngineConfig};

use crate::analysis::critic::{Critic, StateValues};
use crate::analysis::summary::{self, Source};
use crate::analysis::{analyze, Inputs, Settings};
use crate::checkpoint::{read_state, Checkpointer};
use crate::config::{self, TrainConfig};
use crate::progress::Bars;
use crate::seeds::{seed_for, Purpose};
use crate::session::{device, dtype, load_model, load_task};
use crate::train::setup::{sampling_params, stop_strings};

/// Arguments of `vineppo analyze-values`.
#[derive(Debug, Args)]
pub struct AnalyzeValuesArgs {
    /// Run directory written by `vineppo train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Checkpoint to analyse: `iter_000010` or `10` (default: the latest).
    #[arg(long)]
    pub checkpoint: Option<String>,
    /// Value states to evaluate (the prompt and step boundaries of sampled trajectories). The
    /// analysis samples about (states + alternatives × ranking-states) × ground-truth rollouts;
    /// the defaults take a few minutes for the built-in model on a laptop CPU.
    #[arg(long, default_value_t = 32)]
    pub states: usize,
    /// MC rollouts per state for the ground-truth value (the paper: 256).
    #[arg(long, default_value_t = 256)]
    pub ground_truth: usize,
    /// K of the K-sample MC estimates, drawn from the ground-truth returns.
    #[arg(long, value_delimiter = ',', default_value = "1,3,9")]
    pub ks: Vec<usize>,
    /// Continuations sampled per state to find alternative next steps (the paper: 5).
    #[arg(long, default_value_t = 5)]
    pub alternatives: usize,
    /// Fewest distinct next steps for a state to enter the ranking test (the paper: 3).
    #[arg(long, default_value_t = 3)]
    pub min_distinct: usize,
    /// States used in the ranking test, the first of the evaluated ones (at most --states).
    /// Each costs about `alternatives × ground-truth` rollouts.
    #[arg(long, default_value_t = 16)]
    pub ranking_states: usize,
    /// Sampling temperature of the alternatives (the paper: 1).
    #[arg(long, default_value_t = 1.0)]
    pub alternative_temperature: f64,
    /// Seed of everything sampled.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rows decoded at once (default: the run's `run.max_batch`).
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Output directory (default: `RUN/analysis/values-<checkpoint>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The checkpoint directory `name` (`iter_000010`, `10`) of `run`, or its latest.
fn checkpoint_dir(run: &Path, cfg: &TrainConfig, name: Option<&str>) -> Result<(PathBuf, u64)> {
    let ck = Checkpointer::new(run, cfg.run.keep_checkpoints);
    match name {
        None => match ck.latest()? {
            Some((dir, state)) => Ok((dir, state.iteration)),
            None => bail!(
                "`{}` has no checkpoint yet; train at least `run.save_every` iterations",
                run.display()
            ),
        },
        Some(name) => {
            let it: u64 = name.trim_start_matches("iter_").parse().with_context(|| {
                format!("--checkpoint `{name}`: expected `iter_000010` or `10`")
            })?;
            let dir = run.join("checkpoints").join(Checkpointer::name(it));
            if !dir.join("state.json").exists() {
                let have: Vec<String> = ck
                    .list()?
                    .iter()
                    .map(|(i, _)| Checkpointer::name(*i))
                    .collect();
                bail!(
                    "`{}` has no checkpoint `{}`; it has: {}",
                    run.display(),
                    Checkpointer::name(it),
                    have.join(", ")
                );
            }
            let iteration = read_state(&dir)?.iteration;
            Ok((dir, iteration))
        }
    }
}

impl AnalyzeValuesArgs {
    fn settings(&self) -> Settings {
        Settings {
            states: self.states,
            ground_truth: self.ground_truth,
            ks: self.ks.clone(),
            alternatives: self.alternatives,
            min_distinct: self.min_distinct,
            ranking_states: self.ranking_states.min(self.states),
            alternative_temperature: self.alternative_temperature,
            seed: self.seed,
        }
    }
}

/// The checkpoint's critic, when it has one (`critic/` with a value head).
fn load_critic(ck_dir: &Path, cfg: &TrainConfig) -> Result<Option<ValueModel>> {
    let dir = ck_dir.join("critic");
    if !dir.join(vine_model::value::VALUE_HEAD_FILE).is_file() {
        return Ok(None);
    }
    let opts = LoadOptions {
        dtype: dtype(cfg.model.dtype),
        device: device(&cfg.model.device)?,
        trainable: false,
    };
    let seed = seed_for(cfg.run.seed, Purpose::Init, 0, 0);
    let model = ValueModel::load(&dir, &opts, seed)
        .with_context(|| format!("loading the critic from `{}`", dir.display()))?;
    Ok(Some(model))
}

/// Runs `vineppo analyze-values`.
pub fn run(args: AnalyzeValuesArgs) -> Result<()> {
    let cfg: TrainConfig = config::load(Some(&args.run.join("config.toml")), &[])
        .with_context(|| format!("`{}` is not a vineppo training run", args.run.display()))?;
    let (ck_dir, iteration) = checkpoint_dir(&args.run, &cfg, args.checkpoint.as_deref())?;
    let settings = args.settings();
    settings.validate()?;
    let dev = device(&cfg.model.device)?;
    let policy = load_model(&ck_dir.join("policy"), &dev, dtype(cfg.model.dtype), false)?;
    let critic_model = load_critic(&ck_dir, &cfg)?;
    let critic = critic_model.as_ref().map(|model| Critic {
        model,
        chunk: cfg.ppo.micro_batch_size,
    });
    let tokenizer = &policy.tokenizer;
    // The training problems the run trains on: over-long prompts dropped as the trainer does.
    let mut task = load_task(&cfg.task)?;
    task.drop_long_prompts(cfg.rollout.max_prompt_tokens, |q| {
        tokenizer
            .encode(q, false)
            .map_or(usize::MAX, |v| v.len() + 1)
    });
    let engine = Engine::new(EngineConfig {
        max_batch: args.max_batch.unwrap_or(cfg.run.max_batch),
        ..EngineConfig::default()
    })?;
    let max_positions = policy.model.config().max_position_embeddings;
    let inputs = Inputs {
        policy: &policy.model,
        critic: critic.as_ref().map(|c| c as &dyn StateValues),
        tokenizer,
        task: &task,
        engine: &engine,
        sampling: sampling_params(&cfg, max_positions, tokenizer.stop_ids()),
        stop_strings: stop_strings(&cfg, &task),
        eos: tokenizer
            .eos_id()
            .context("the tokenizer defines no EOS token")?,
        bars: Bars::new(true),
    };
    let analysis = analyze(&inputs, &settings)?;
    let ck_name = Checkpointer::name(iteration);
    let out = args
        .out
        .unwrap_or_else(|| args.run.join("analysis").join(format!("values-{ck_name}")));
    let source = Source {
        run: Some(args.run.clone()),
        checkpoint: Some(ck_name),
        iteration: Some(iteration),
        method: Some(config::method_name(&cfg.credit).to_string()),
    };
    let s = summary::write(&analysis, source, tokenizer, &task, &out)?;
    print_summary(&s);
    println!("{}", out.join("report.md").display());
    Ok(())
}

fn print_summary(s: &summary::Summary) {
    let num = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
    for e in &s.errors {
        let top1 = s
            .ranking
            .iter()
            .find(|r| r.name == e.name)
            .and_then(|r| r.top1);
        eprintln!(
            "{:>8}: MAE {}, top-1 {}",
            e.name,
            num(e.overall.map(|o| o.mae)),
            num(top1)
        );
    }
    eprintln!(
        "  chance: top-1 {} over {} ranked states; {} states in {:.1} s",
        num(s.chance_top1),
        s.ranking_states_informative,
        s.states,
        s.seconds
    );
}
