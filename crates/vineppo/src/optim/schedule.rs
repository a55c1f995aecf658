//! Learning-rate schedules.
//!
//! The reference trains with DeepSpeed's `WarmupDecayLR`: a warmup over `ceil(3 %)` of all
//! optimizer steps, then a linear decay to 0 at the last step. DeepSpeed's default warmup is
//! *logarithmic*: `lr(s) = peak · ln(s + 1) / ln(W)` for `s < W` (so the very first update, at
//! `s = 0`, has learning rate 0). [`Warmup::Log`] reproduces that exactly; [`Warmup::Linear`]
//! (`peak · (s + 1) / W`) is offered as the common alternative and is a documented deviation when
//! chosen.

use serde::{Deserialize, Serialize};

/// Shape of the warmup ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    /// DeepSpeed's default: `peak · ln(s + 1) / ln(W)`.
    Log,
    /// `peak · (s + 1) / W`.
    Linear,
}

/// What happens after the warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Linear decay to 0 at the last step (`WarmupDecayLR`).
    Linear,
    /// Stay at the peak.
    Constant,
}

/// Learning rate as a function of the optimizer step (0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Number of warmup steps `W` (0 = no warmup).
    pub warmup_steps: u64,
    /// Total number of optimizer steps of the run.
    pub total_steps: u64,
    /// Warmup shape.
    pub warmup: Warmup,
    /// Decay after the warmup.
    pub decay: Decay,
}

impl LrSchedule {
    /// `warmup_fraction` of `total_steps`, rounded up, as the reference computes it.
    pub fn warmup_steps_for(total_steps: u64, warmup_fraction: f64) -> u64 {
        (total_steps as f64 * warmup_fraction).ceil() as u64
    }

    /// Learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        let w = self.warmup_steps;
        if step < w {
            let gamma = match self.warmup {
                // ln(W) = 0 for W = 1: there is no ramp to speak of; use the peak.
                Warmup::Log if w > 1 => (step as f64).ln_1p() / (w as f64).ln(),
                Warmup::Log => 1.0,
                Warmup::Linear => (step + 1) as f64 / w as f64,
            };
            return self.peak * gamma;
        }
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => {
                let span = self.total_steps.saturating_sub(w).max(1) as f64;
                let left = self.total_steps.saturating_sub(step) as f64;
                self.peak * (left / span).clamp(0.0, 1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(warmup: Warmup) -> LrSchedule {
        LrSchedule {
            peak: 1e-6,
            warmup_steps: 30,
            total_steps: 1000,
            warmup,
            decay: Decay::Linear,
        }
    }

    /// Golden values from DeepSpeed's `WarmupDecayLR` formulas (deepspeed/runtime/lr_schedules.py):
    /// ```python
    /// import math
    /// W, T, peak = 30, 1000, 1e-6
    /// def lr(s):
    ///     if s < W: return peak * math.log(s + 1) / math.log(W)
    ///     return peak * max(0.0, (T - s) / max(1.0, T - W))
    /// print([lr(s) for s in (0, 1, 29, 30, 500, 1000)])
    /// ```
    #[test]
    fn log_warmup_then_linear_decay_matches_deepspeed() {
        let s = sched(Warmup::Log);
        let want = [0.0, 2.0379504709e-7, 1e-6, 1e-6, 5.154639175e-7, 0.0];
        for (step, w) in [0, 1, 29, 30, 500, 1000].into_iter().zip(want) {
            assert!(
                (s.lr(step) - w).abs() < 1e-15,
                "step {step}: {} vs {w}",
                s.lr(step)
            );
        }
    }

    #[test]
    fn linear_warmup_and_constant_decay() {
        let mut s = sched(Warmup::Linear);
        assert!((s.lr(0) - 1e-6 / 30.0).abs() < 1e-18);
        assert!((s.lr(29) - 1e-6).abs() < 1e-18);
        s.decay = Decay::Constant;
        assert_eq!(s.lr(999), 1e-6);
        assert_eq!(LrSchedule::warmup_steps_for(16_000, 0.03), 480);
        assert_eq!(LrSchedule::warmup_steps_for(10, 0.03), 1);
    }
}
