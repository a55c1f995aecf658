//! One module per subcommand; `run` dispatches.

pub mod grade;

use anyhow::Result;

use crate::cli::{Command, ConfigKind};
use crate::config::{self, TrainConfig};
use crate::report;

/// Runs one parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Config { kind, args } => {
            let text = match kind {
                ConfigKind::Train => config::to_toml(&config::load::<TrainConfig>(
                    args.config.as_deref(),
                    &args.sets,
                )?)?,
            };
            print!("{text}");
            Ok(())
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
