//! A round of graded samples saved to disk, so a resumed RestEM or DPO+ run trains on exactly
//! the data the interrupted run drew (sampling it again would cost as much as the first time).
//!
//! ```text
//! DIR/samples.safetensors   tokens u32 [Σ len], lengths u32 [n], problems u32 [n],
//!                           flags u8 [n] (bit 0 finished, bit 1 correct),
//!                           ref_logp f32 [n]?  (DPO+: Σ_t log π_ref of each response)
//!                           pairs u32 [m, 2]?  (DPO+: chosen, rejected response indices)
//! DIR/metrics.jsonl         one line: the metrics of the round (sampling counts, timings)
//! ```
//!
//! The directory is written under a temporary name and renamed into place, so it either exists
//! whole or not at all.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use super::Graded;
use crate::atomic::StagedDir;
use crate::metrics::{read_metrics, Metrics};

const SAMPLES: &str = "samples.safetensors";
const METRICS: &str = "metrics.jsonl";

/// What a round saves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stored {
    /// The responses kept for training.
    pub responses: Vec<Graded>,
    /// Per-response summed reference log-probs (empty when unused).
    pub ref_logp: Vec<f32>,
    /// `(chosen, rejected)` indices into `responses` (empty when unused).
    pub pairs: Vec<(usize, usize)>,
    /// Metrics of the round.
    pub metrics: Metrics,
}

fn u32s(v: impl Iterator<Item = usize>, what: &str) -> Result<Vec<u32>> {
    v.map(|x| u32::try_from(x).with_context(|| format!("{what} {x} does not fit in u32")))
        .collect()
}

/// Writes `set` into the directory `dir` (replacing it).
pub fn save(dir: &Path, set: &Stored) -> Result<()> {
    let r = &set.responses;
    let cpu = Device::Cpu;
    let flat: Vec<u32> = r.iter().flat_map(|g| g.tokens.iter().copied()).collect();
    let lengths = u32s(r.iter().map(|g| g.tokens.len()), "response length")?;
    let problems = u32s(r.iter().map(|g| g.problem), "problem index")?;
    let flags: Vec<u8> = r
        .iter()
        .map(|g| u8::from(g.finished) | (u8::from(g.correct) << 1))
        .collect();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let n = r.len();
    tensors.insert(
        "tokens".into(),
        Tensor::from_vec(flat.clone(), flat.len(), &cpu)?,
    );
    tensors.insert("lengths".into(), Tensor::from_vec(lengths, n, &cpu)?);
    tensors.insert("problems".into(), Tensor::from_vec(problems, n, &cpu)?);
    tensors.insert("flags".into(), Tensor::from_vec(flags, n, &cpu)?);
    if !set.ref_logp.is_empty() {
        if set.ref_logp.len() != n {
            bail!(
                "{} reference log-probs for {n} responses",
                set.ref_logp.len()
            );
        }
        tensors.insert(
            "ref_logp".into(),
            Tensor::from_vec(set.ref_logp.clone(), n, &cpu)?,
        );
    }
    if !set.pairs.is_empty() {
        let flat = u32s(set.pairs.iter().flat_map(|&(c, r)| [c, r]), "pair index")?;
        tensors.insert(
            "pairs".into(),
            Tensor::from_vec(flat, (set.pairs.len(), 2), &cpu)?,
        );
    }
    let staged = StagedDir::new(dir)?;
    candle_core::safetensors::save(&tensors, staged.path().join(SAMPLES))
        .with_context(|| format!("writing `{}`", dir.join(SAMPLES).display()))?;
    crate::atomic::write_file(
        &staged.path().join(METRICS),
        (set.metrics.to_json_line() + "\n").as_bytes(),
    )?;
    staged.commit()
}

/// Reads the round saved in `dir`, or `None` when there is none; `n_problems` is the size of the
/// training split the problem indices point into.
pub fn load(dir: &Path, n_problems: usize) -> Result<Option<Stored>> {
    let path = dir.join(SAMPLES);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |what: String| -> anyhow::Error {
        anyhow::anyhow!(
            "`{}`: {what}; delete the directory `{}` to sample this round again",
            path.display(),
            dir.display()
        )
    };
    let mut t = candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("reading `{}`", path.display()))?;
    let mut take = |name: &str, dt: DType| -> Result<Option<Tensor>> {
        match t.remove(name) {
            Some(x) if x.dtype() == dt => Ok(Some(x)),
            Some(x) => Err(bad(format!(
                "`{name}` has dtype {:?}, expected {dt:?}",
                x.dtype()
            ))),
            None => Ok(None),
        }
    };
    let need = |x: Option<Tensor>, name: &str| x.ok_or_else(|| bad(format!("missing `{name}`")));
    let tokens = need(take("tokens", DType::U32)?, "tokens")?.to_vec1::<u32>()?;
    let lengths = need(take("lengths", DType::U32)?, "lengths")?.to_vec1::<u32>()?;
    let problems = need(take("problems", DType::U32)?, "problems")?.to_vec1::<u32>()?;
    let flags = need(take("flags", DType::U8)?, "flags")?.to_vec1::<u8>()?;
    let ref_logp = match take("ref_logp", DType::F32)? {
        Some(x) => x.to_vec1::<f32>()?,
        None => Vec::new(),
    };
    let pairs = match take("pairs", DType::U32)? {
        Some(x) => x.to_vec2::<u32>()?,
        None => Vec::new(),
    };
    let n = lengths.len();
    if problems.len() != n || flags.len() != n || !(ref_logp.is_empty() || ref_logp.len() == n) {
        return Err(bad("per-response columns have different lengths".into()));
    }
    if lengths.iter().map(|&l| l as usize).sum::<usize>() != tokens.len() {
        return Err(bad("lengths do not add up to the token count".into()));
    }
    if let Some(p) = problems.iter().find(|&&p| p as usize >= n_problems) {
        return Err(bad(format!("problem {p} is outside the {n_problems}-problem training split (was the task changed?)")));
    }
    let mut responses = Vec::with_capacity(n);
    let mut at = 0usize;
    for i in 0..n {
        let len = lengths[i] as usize;
        responses.push(Graded {
            problem: problems[i] as usize,
            tokens: tokens[at..at + len].to_vec(),
            finished: flags[i] & 1 != 0,
            correct: flags[i] & 2 != 0,
        });
        at += len;
    }
    let pairs = pairs
        .into_iter()
        .map(|p| match p.as_slice() {
            &[c, r] if (c as usize) < n && (r as usize) < n => Ok((c as usize, r as usize)),
            _ => Err(bad(format!("pair {p:?} points outside the {n} responses"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let metrics = read_metrics(&dir.join(METRICS))?
        .into_iter()
        .next()
        .ok_or_else(|| bad("metrics.jsonl is empty".into()))?;
    Ok(Some(Stored {
        responses,
        ref_logp,
        pairs,
        metrics,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(problem: usize, tokens: &[u32], finished: bool, correct: bool) -> Graded {
        Graded {
            problem,
            tokens: tokens.to_vec(),
            finished,
            correct,
        }
    }

    #[test]
    fn round_trips_responses_pairs_and_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("round");
        assert!(load(&path, 4).unwrap().is_none());
        let mut metrics = Metrics::new(3);
        metrics.set("reward/mean", 0.25);
        let set = Stored {
            responses: vec![
                graded(0, &[5, 6, 7], true, true),
                graded(3, &[], false, false),
                graded(1, &[9], true, false),
            ],
            ref_logp: vec![-1.5, 0.0, -2.25],
            pairs: vec![(0, 2), (0, 1)],
            metrics,
        };
        save(&path, &set).unwrap();
        assert_eq!(load(&path, 4).unwrap().unwrap(), set);
        let err = format!("{:#}", load(&path, 2).unwrap_err());
        assert!(err.contains("outside the 2-problem"), "{err}");
    }

    #[test]
    fn an_empty_round_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let set = Stored {
            metrics: Metrics::new(1),
            ..Stored::default()
        };
        save(dir.path(), &set).unwrap();
        assert_eq!(load(dir.path(), 1).unwrap().unwrap(), set);
    }
}
