//! Aggregating runs over seeds: the numbers behind the paper's accuracy curves (Fig. 1/4: test
//! accuracy against gradient steps, wall-clock and KL to the reference) and its efficiency claim
//! (VinePPO reaches PPO's peak accuracy in up to 9× fewer steps and 3× less wall-clock).
//!
//! Each run's held-out evaluations become [`EvalPoint`]s carrying every x-coordinate the paper
//! plots against. Runs of one arm (one per seed) evaluate at the same iterations, so they are
//! aligned by iteration: [`aggregate`] keeps the iterations every seed has reached and gives the
//! pass@1 [`Spread`] (mean, sample standard deviation, min, max) at each, with the x-coordinates
//! averaged over seeds. [`peak`] and [`first_reaching`] read the mean curve.
//!
//! Conventions, where the metrics leave a choice:
//! - The evaluation before training (iteration 0) sits at 0 optimizer steps and KL 0 (the policy
//!   is the reference); its wall-clock is that of the line (the initial evaluation itself).
//! - KL is `kl/k1_seq_mean` of the same metrics line: measured on the iteration's samples, i.e.
//!   for the policy *before* that iteration's update, while the evaluation follows the update.
//!   The reference logs it the same way; the lag is one iteration.
//! - The iteration time that value estimation is a share of is the sum of the training stages
//!   (generate, reward, reference, values, update); evaluation and checkpoints are excluded.

use serde::Serialize;

use super::{RunData, EVAL_KEY};

/// One held-out evaluation of one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalPoint {
    /// Iteration after which the policy was evaluated (0 = before training).
    pub iteration: u64,
    /// Optimizer steps taken so far.
    pub steps: f64,
    /// Wall-clock seconds of the run so far.
    pub elapsed_s: f64,
    /// KL to the reference (per-sequence sum of k1), see the module docs.
    pub kl: f64,
    /// Held-out pass@1.
    pub pass1: f64,
}

/// The evaluations of a run, in log order. Missing x-coordinates carry the last known value
/// (0 before any).
pub fn eval_points(run: &RunData) -> Vec<EvalPoint> {
    let (mut steps, mut elapsed, mut kl) = (0.0, 0.0, 0.0);
    let mut out = Vec::new();
    for m in &run.metrics {
        let iteration = m.get("iteration").unwrap_or(0.0).max(0.0) as u64;
        steps = m.get("progress/optimizer_steps").unwrap_or(steps);
        elapsed = m.get("time/elapsed_s").unwrap_or(elapsed);
        kl = m.get("kl/k1_seq_mean").unwrap_or(kl);
        if let Some(pass1) = m.get(EVAL_KEY) {
            out.push(EvalPoint {
                iteration,
                steps,
                elapsed_s: elapsed,
                kl,
                pass1,
            });
        }
    }
    out
}

/// Mean, sample standard deviation (n − 1; 0 for a single value), min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// The spread of `xs`; `None` when empty.
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let ss: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
        let std = if n > 1 {
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self {
            mean,
            std,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n,
        })
    }

    /// `(lower, upper)` of the band `band` draws around the mean.
    pub fn band(&self, band: Band) -> (f64, f64) {
        match band {
            Band::MinMax => (self.min, self.max),
            Band::Std => (self.mean - self.std, self.mean + self.std),
        }
    }
}

/// Which spread over seeds the plots shade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// From the worst to the best seed.
    #[default]
    MinMax,
    /// Mean ± one sample standard deviation.
    Std,
}

/// One evaluation iteration of an arm, over its seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeedPoint {
    /// The iteration.
    pub iteration: u64,
    /// Mean optimizer steps.
    pub steps: f64,
    /// Mean wall-clock seconds.
    pub elapsed_s: f64,
    /// Mean KL to the reference.
    pub kl: f64,
    /// Held-out pass@1 over seeds.
    pub pass1: Spread,
}

/// Aligns the curves of several seeds by iteration, keeping the iterations all of them have
/// evaluated (in increasing order). A seed that evaluated an iteration twice (a log written
/// across a resume) counts its last evaluation.
pub fn aggregate(curves: &[Vec<EvalPoint>]) -> Vec<SeedPoint> {
    let Some(first) = curves.first() else {
        return Vec::new();
    };
    let mut iterations: Vec<u64> = first.iter().map(|p| p.iteration).collect();
    iterations.sort_unstable();
    iterations.dedup();
    let at = |c: &[EvalPoint], it: u64| c.iter().rev().find(|p| p.iteration == it).copied();
    iterations
        .into_iter()
        .filter_map(|it| {
            let points: Vec<EvalPoint> = curves.iter().map(|c| at(c, it)).collect::<Option<_>>()?;
            let mean =
                |f: fn(&EvalPoint) -> f64| points.iter().map(f).sum::<f64>() / points.len() as f64;
            let pass1: Vec<f64> = points.iter().map(|p| p.pass1).collect();
            Some(SeedPoint {
                iteration: it,
                steps: mean(|p| p.steps),
                elapsed_s: mean(|p| p.elapsed_s),
                kl: mean(|p| p.kl),
                pass1: Spread::of(&pass1)?,
            })
        })
        .collect()
}

/// The point with the highest mean pass@1 (the earliest on ties).
pub fn peak(points: &[SeedPoint]) -> Option<&SeedPoint> {
    points
        .iter()
        .fold(None, |best: Option<&SeedPoint>, p| match best {
            Some(b) if b.pass1.mean >= p.pass1.mean => Some(b),
            _ => Some(p),
        })
}

/// The first point whose mean pass@1 is at least `target` (up to 1e-9, so that an arm reaches
/// its own peak despite rounding).
pub fn first_reaching(points: &[SeedPoint], target: f64) -> Option<&SeedPoint> {
    points.iter().find(|p| p.pass1.mean >= target - 1e-9)
}

/// Training stages whose sum is an iteration's time (evaluation and checkpoints excluded).
pub const TRAINING_STAGES: [&str; 5] = ["generate", "reward", "reference", "values", "update"];

fn iteration_lines(run: &RunData) -> impl Iterator<Item = &crate::metrics::Metrics> {
    run.metrics
        .iter()
        .filter(|m| m.get("iteration").is_some_and(|i| i >= 1.0))
}

fn training_seconds(m: &crate::metrics::Metrics) -> Option<f64> {
    let parts: Vec<f64> = TRAINING_STAGES
        .iter()
        .filter_map(|s| m.get(&format!("timing/{s}_s")))
        .collect();
    (!parts.is_empty()).then(|| parts.iter().sum())
}

/// Mean over iterations of `timing/values_s` divided by the iteration's training time; `None`
/// for a run with no timed iteration.
pub fn value_time_share(run: &RunData) -> Option<f64> {
    let shares: Vec<f64> = iteration_lines(run)
        .filter_map(|m| {
            let total = training_seconds(m)?;
            (total > 0.0).then(|| m.get("timing/values_s").unwrap_or(0.0) / total)
        })
        .collect();
    (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64)
}

/// Mean training seconds per iteration (the stages of [`TRAINING_STAGES`]).
pub fn seconds_per_iteration(run: &RunData) -> Option<f64> {
    let secs: Vec<f64> = iteration_lines(run).filter_map(training_seconds).collect();
    (!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64)
}

/// The last `kl/k1_seq_mean` a run logged.
pub fn final_kl(run: &RunData) -> Option<f64> {
    run.metrics
        .iter()
        .rev()
        .find_map(|m| m.get("kl/k1_seq_mean"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A run evaluated at iterations 0, 2, 4 with 4 optimizer steps and 10 s per iteration.
    fn run(pass1: [f64; 3], kl: f64) -> RunData {
        let mut metrics = Vec::new();
        for it in 0..=4u64 {
            let mut m = Metrics::new(it);
            m.set("time/elapsed_s", 10.0 * it as f64 + 1.0);
            if it > 0 {
                m.set("progress/optimizer_steps", 4.0 * it as f64);
                m.set("kl/k1_seq_mean", kl * it as f64);
                m.set("timing/generate_s", 2.0);
                m.set("timing/values_s", 6.0);
                m.set("timing/update_s", 2.0);
                m.set("timing/eval_s", 50.0);
            }
            if it % 2 == 0 {
                m.set(EVAL_KEY, pass1[it as usize / 2]);
            }
            metrics.push(m);
        }
        RunData {
            dir: "r".into(),
            label: "r".into(),
            metrics,
        }
    }

    #[test]
    fn eval_points_carry_steps_time_and_kl() {
        let p = eval_points(&run([0.1, 0.2, 0.3], 0.5));
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            EvalPoint {
                iteration: 0,
                steps: 0.0,
                elapsed_s: 1.0,
                kl: 0.0,
                pass1: 0.1
            }
        );
        assert_eq!((p[2].steps, p[2].elapsed_s, p[2].kl), (16.0, 41.0, 2.0));
    }

    #[test]
    fn spread_is_mean_sample_std_min_max() {
        // numpy: np.mean([0.2, 0.4, 0.9]) = 0.5, np.std([0.2, 0.4, 0.9], ddof=1) = 0.36055512754639896
        let s = Spread::of(&[0.2, 0.4, 0.9]).unwrap();
        assert!((s.mean - 0.5).abs() < 1e-12);
        assert!((s.std - 0.36055512754639896).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.n), (0.2, 0.9, 3));
        assert_eq!(s.band(Band::MinMax), (0.2, 0.9));
        let (lo, hi) = s.band(Band::Std);
        assert!((lo - 0.13944487245360104).abs() < 1e-12 && (hi - 0.860555127546399).abs() < 1e-12);
        assert_eq!(Spread::of(&[0.7]).unwrap().std, 0.0);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn seeds_align_by_iteration_and_drop_unshared_points() {
        let a = eval_points(&run([0.1, 0.3, 0.5], 1.0));
        let mut b = eval_points(&run([0.3, 0.5, 0.4], 3.0));
        b.pop(); // seed b has not reached iteration 4 yet
        let agg = aggregate(&[a, b]);
        assert_eq!(agg.len(), 2);
        assert_eq!(agg[1].iteration, 2);
        assert!((agg[1].pass1.mean - 0.4).abs() < 1e-12);
        assert_eq!((agg[1].pass1.min, agg[1].pass1.max), (0.3, 0.5));
        assert_eq!(agg[1].kl, 4.0); // mean of 2.0 and 6.0
        assert_eq!(agg[1].steps, 8.0);
        assert!(aggregate(&[]).is_empty());
    }

    #[test]
    fn steps_to_reach_a_peak() {
        // Baseline (PPO-like) peaks at 0.4 at iteration 4 (16 steps); the other arm gets there at
        // iteration 2 (8 steps): 2x fewer steps.
        let base = aggregate(&[eval_points(&run([0.1, 0.2, 0.4], 1.0))]);
        let fast = aggregate(&[eval_points(&run([0.1, 0.45, 0.5], 1.0))]);
        let slow = aggregate(&[eval_points(&run([0.1, 0.2, 0.3], 1.0))]);
        let target = peak(&base).unwrap();
        assert_eq!((target.iteration, target.steps), (4, 16.0));
        assert_eq!(first_reaching(&fast, target.pass1.mean).unwrap().steps, 8.0);
        assert!(first_reaching(&slow, target.pass1.mean).is_none());
        // An arm reaches its own peak exactly there.
        assert_eq!(
            first_reaching(&base, target.pass1.mean).unwrap().iteration,
            4
        );
        // Ties keep the earliest peak.
        let flat = aggregate(&[eval_points(&run([0.2, 0.2, 0.2], 1.0))]);
        assert_eq!(peak(&flat).unwrap().iteration, 0);
        assert!(peak(&[]).is_none());
    }

    #[test]
    fn value_share_excludes_eval_and_checkpoint_time() {
        let r = run([0.1, 0.2, 0.3], 1.0);
        assert!((value_time_share(&r).unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(seconds_per_iteration(&r), Some(10.0));
        assert_eq!(final_kl(&r), Some(4.0));
        let empty = RunData {
            dir: "e".into(),
            label: "e".into(),
            metrics: vec![Metrics::new(0)],
        };
        assert_eq!(value_time_share(&empty), None);
    }
}
