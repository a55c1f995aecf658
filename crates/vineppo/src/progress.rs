//! Progress bars (indicatif, on stderr; hidden when stderr is not a terminal or when disabled).

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vine_rollout::Progress;

/// The bars of one command: an optional outer bar (iterations, epochs) and per-stage bars.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
}

impl Bars {
    /// Bars drawn to stderr when `enabled` (and stderr is a terminal).
    pub fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// An outer bar over `total` units (`iter`, `epoch`, …).
    pub fn main(&self, total: u64, unit: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(&format!("{{prefix:>10.bold}} [{{bar:30.cyan/blue}}] {{pos}}/{{len}} {unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(style);
        bar
    }

    /// A bar for one generation call: samples finished out of `total`, with tokens/s.
    pub fn generation(&self, stage: &str) -> GenerationBar {
        let style =
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} samples {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(style);
        bar.set_prefix(stage.to_string());
        GenerationBar {
            bar,
            start: Instant::now(),
            last: Instant::now() - Duration::from_secs(1),
        }
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

/// Updated from the engine's progress callback.
pub struct GenerationBar {
    bar: ProgressBar,
    start: Instant,
    last: Instant,
}

impl GenerationBar {
    /// Feeds one engine progress report.
    pub fn update(&mut self, p: Progress) {
        if self.last.elapsed() < Duration::from_millis(100) && p.finished_samples < p.total_samples
        {
            return;
        }
        self.last = Instant::now();
        self.bar.set_length(p.total_samples as u64);
        self.bar.set_position(p.finished_samples as u64);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{:.0} tok/s, batch {}",
            p.generated_tokens as f64 / secs,
            p.batch_rows
        ));
    }
}

impl Drop for GenerationBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
