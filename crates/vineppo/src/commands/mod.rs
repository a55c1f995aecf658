//! One module per subcommand; `run` dispatches.

pub mod analyze_values;
pub mod baselines;
pub mod eval;
pub mod experiment;
pub mod generate;
pub mod grade;
pub mod train;

use anyhow::Result;

use crate::cli::{Command, ConfigKind};
use crate::config::{self, TrainConfig};
use crate::report;

/// Runs one parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train { args, resume } => train::run(args, resume),
        Command::Bench { what } => match what {
            crate::cli::BenchCommand::Generate {
                hf_dir,
                only,
                repeats,
            } => {
                let cfg = vine_rollout::bench::BenchConfig {
                    hf_dir,
                    only,
                    repeats: repeats.max(1),
                    ..Default::default()
                };
                print!("{}", vine_rollout::bench::run(&cfg)?);
                Ok(())
            }
        },
        Command::Sft { args, resume } => {
            let cfg: config::sft::SftConfig = match &resume {
                Some(dir) => config::load(Some(&dir.join("config.toml")), &args.sets)?,
                None => config::load(args.config.as_deref(), &args.sets)?,
            };
            let out = crate::sft::run(cfg, resume.as_deref())?;
            println!("saved `{}`", out.display());
            Ok(())
        }
        Command::Restem { args, resume } => baselines::restem(args, resume),
        Command::Dpo { args, resume } => baselines::dpo(args, resume),
        Command::Config { kind, args } => {
            let text = match kind {
                ConfigKind::Train => config::to_toml(&config::load::<TrainConfig>(
                    args.config.as_deref(),
                    &args.sets,
                )?)?,
                ConfigKind::Sft => config::to_toml(&config::load::<config::sft::SftConfig>(
                    args.config.as_deref(),
                    &args.sets,
                )?)?,
                ConfigKind::Restem => config::to_toml(&config::load::<
                    config::restem::RestemConfig,
                >(
                    args.config.as_deref(), &args.sets
                )?)?,
                ConfigKind::Dpo => config::to_toml(&config::load::<config::dpo::DpoConfig>(
                    args.config.as_deref(),
                    &args.sets,
                )?)?,
            };
            print!("{text}");
            Ok(())
        }
        Command::Generate {
            model,
            prompt,
            ids,
            no_bos,
            n,
            temperature,
            top_p,
            top_k,
            max_new_tokens,
            seed,
            greedy,
            ignore_eos,
            stop,
            json,
            placement,
        } => {
            let input = generate_input(prompt, ids, no_bos)?;
            let params = vine_rollout::SamplingParams {
                temperature: if greedy { 0.0 } else { temperature as f32 },
                top_p: top_p as f32,
                top_k,
                max_new_tokens,
                max_context: usize::MAX,
                stop_token_ids: Vec::new(),
                ignore_eos,
            };
            generate::generate(
                &model,
                &input,
                generate::GenerateArgs {
                    n,
                    params,
                    seed,
                    stop,
                    json,
                    placement,
                },
            )
        }
        Command::Logprobs {
            model,
            text,
            ids,
            no_bos,
            temperature,
            json,
            placement,
        } => generate::logprobs(
            &model,
            &generate_input(text, ids, no_bos)?,
            temperature,
            json,
            &placement,
        ),
        Command::Eval {
            model,
            task,
            data_dir,
            split,
            n,
            temperature,
            top_p,
            max_new_tokens,
            limit,
            seed,
            batch,
            out,
            placement,
        } => {
            let settings = crate::eval::EvalSettings {
                samples: n,
                temperature,
                top_p,
                max_new_tokens,
                max_context: usize::MAX,
                seed,
                stop_strings: Vec::new(),
            };
            eval::run(eval::EvalArgs {
                model,
                task,
                data_dir,
                split,
                limit,
                settings,
                batch,
                out,
                placement,
            })
            .map(|_| ())
        }
        Command::Grade {
            task,
            gold,
            pred,
            question,
            input,
            out,
            lenient,
        } => match (gold, pred, input) {
            (Some(gold), Some(pred), None) => {
                grade::grade_pair(task, lenient, &pred, &gold, question.as_deref())
            }
            (None, None, Some(input)) => {
                let (correct, total) = grade::grade_file(task, lenient, &input, out.as_deref())?;
                eprintln!(
                    "{correct}/{total} correct ({:.1}%)",
                    100.0 * correct as f64 / total as f64
                );
                Ok(())
            }
            _ => anyhow::bail!("give either --gold and --pred, or --input FILE"),
        },
        Command::Experiment(args) => experiment::run(args),
        Command::AnalyzeValues(args) => analyze_values::run(args),
        Command::Gpu(cmd) => crate::gpu::run(cmd),
        Command::Report { runs, out, title } => {
            let data = runs
                .iter()
                .map(|r| report::load_run(r))
                .collect::<Result<Vec<_>>>()?;
            let out = out.unwrap_or_else(|| {
                if runs.len() == 1 {
                    runs[0].clone()
                } else {
                    "report".into()
                }
            });
            let path = report::write_report(&data, &out, &title)?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

fn generate_input(
    text: Option<String>,
    ids: Option<String>,
    no_bos: bool,
) -> Result<generate::Input> {
    match (text, ids) {
        (_, Some(ids)) => Ok(generate::Input::Ids(generate::parse_ids(&ids)?)),
        (Some(text), None) => Ok(generate::Input::Text { text, bos: !no_bos }),
        (None, None) => anyhow::bail!("give a prompt text or --ids"),
    }
}
