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

/// Runs `vineppo analyze-values`.
pub fn run(args: AnalyzeValuesArgs) -> Result<()> {
    let cfg: TrainConfig = config::load(Some(&args.run.join("config.toml")), &[])
        .with_context(|| format!("`{}` is not a vineppo training run", args.run.display()))?;
    let (ck_dir, iteration) = checkpoint_dir(&args.run, &cfg, args.checkpoint.as_deref())?;
    let ck_name = Checkpointer::name(iteration);
    let settings = Settings {
        states: args.states,
        ground_truth: args.ground_truth,
        ks: args.ks,
        alternatives: args.alternatives,
        min_distinct: args.min_distinct,
        ranking_states: args.ranking_states.min(args.states),
        alternative_temperature: args.alternative_temperature,
        seed: args.seed,
    };
    settings.validate()?;
    let dev = device(&cfg.model.device)?;
    let dt = dtype(cfg.model.dtype);
    let policy = load_model(&ck_dir.join("policy"), &dev, dt, false)?;
    let critic_dir = ck_dir.join("critic");
    let critic_model = if critic_dir
        .join(vine_model::value::VALUE_HEAD_FILE)
        .is_file()
    {
        let opts = LoadOptions {
            dtype: dt,
            device: dev.clone(),
            trainable: false,
        };
        let seed = seed_for(cfg.run.seed, Purpose::Init, 0, 0);
        Some(
            ValueModel::load(&critic_dir, &opts, seed)
                .with_context(|| format!("loading the critic from `{}`", critic_dir.display()))?,
        )
    } else {
        None
    };
    let critic = critic_model.as_ref().map(|model| Critic {
        model,
        chunk: cfg.ppo.micro_batch_size,
    });
    let mut task = load_task(&cfg.task)?;
    task.drop_long_prompts(cfg.rollout.max_prompt_tokens, |q| {
        policy
            .tokenizer
            .encode(q, false)
            .map(|v| v.len() + 1)
            .unwrap_or(usize::MAX)
    });
    let eos = policy
        .tokenizer
        .eos_id()
        .context("the tokenizer defines no EOS token")?;
    let engine = Engine::new(EngineConfig {
        max_batch: args.max_batch.unwrap_or(cfg.run.max_batch),
        ..EngineConfig::default()
    })?;
    let inputs = Inputs {
        policy: &policy.model,
        critic: critic.as_ref().map(|c| c as &dyn StateValues),
        tokenizer: &policy.tokenizer,
        task: &task,
        engine: &engine,
        sampling: sampling_params(
            &cfg,
            policy.model.config().max_position_embeddings,
            policy.tokenizer.stop_ids(),
        ),
        stop_strings: stop_strings(&cfg, &task),
        eos,
        bars: Bars::new(true),
    };
    let analysis = analyze(&inputs, &settings)?;
    let out = args
        .out
        .unwrap_or_else(|| args.run.join("analysis").join(format!("values-{ck_name}")));
    let source = Source {
        run: Some(args.run.clone()),
        checkpoint: Some(ck_name),
        iteration: Some(iteration),
        method: Some(config::method_name(&cfg.credit).to_string()),
    };
    let s = summary::write(&analysis, source, &policy.tokenizer, &task, &out)?;
    for e in &s.errors {
        let mae = e
            .overall
            .map(|o| format!("{:.3}", o.mae))
            .unwrap_or_else(|| "–".into());
        let top1 = s
            .ranking
            .iter()
            .find(|r| r.name == e.name)
            .and_then(|r| r.top1);
        let top1 = top1
            .map(|t| format!("{t:.3}"))
            .unwrap_or_else(|| "–".into());
        eprintln!("{:>8}: MAE {mae}, top-1 {top1}", e.name);
    }
    eprintln!(
        "  chance: top-1 {} over {} ranked states; {} states in {:.1} s",
        s.chance_top1
            .map(|c| format!("{c:.3}"))
            .unwrap_or_else(|| "–".into()),
        s.ranking_states_informative,
        s.states,
        s.seconds
    );
    println!("{}", out.join("report.md").display());
    Ok(())
}
