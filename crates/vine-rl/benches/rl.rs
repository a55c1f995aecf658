//! Timings of vine-rl's hot paths at the paper's scale (64 prompts × 8 samples per iteration,
//! minibatches of 64), on the CPU. Run with `cargo bench -p vine-rl`; prints the median of
//! several runs of each stage.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, Var};
use vine_rl::batch::SplitMix64;
use vine_rl::credit::gae::{gae_episodes, KlRows};
use vine_rl::credit::vine::{advantages, value_states, values_from_outcomes, RolloutOutcome};
use vine_rl::loss::{actor_loss, masked_entropy, ActorInputs, KlConfig, PpoConfig};
use vine_rl::stats::normalize;
use vine_rl::{AdvantageNorm, Batch, Episode, GaeParams};

const PROMPTS: usize = 64;
const SAMPLES: usize = 8;
const PROMPT_LEN: usize = 150;
const STEPS: usize = 10;
const STEP_LEN: usize = 30;

/// 512 episodes: 64 prompts × 8 samples, 10 steps of 30 tokens; the samples of a prompt share
/// their first step half of the time, as sampled solutions often do.
fn episodes(rng: &mut SplitMix64) -> Vec<Episode> {
    let mut out = Vec::new();
    for p in 0..PROMPTS {
        let prompt: Vec<u32> = (0..PROMPT_LEN).map(|_| rng.below(32_000) as u32).collect();
        let shared: Vec<u32> = (0..STEP_LEN).map(|_| rng.below(32_000) as u32).collect();
        for _ in 0..SAMPLES {
            let mut resp: Vec<u32> = if rng.below(2) == 0 {
                shared.clone()
            } else {
                Vec::new()
            };
            while resp.len() < STEPS * STEP_LEN {
                resp.push(rng.below(32_000) as u32);
            }
            let finished = rng.below(10) != 0;
            let reward = if finished { rng.below(2) as f32 } else { 0.0 };
            if finished {
                resp.push(2);
            }
            let starts = (0..STEPS).map(|s| s * STEP_LEN).collect();
            out.push(Episode::new(p, prompt.clone(), resp, finished, reward, starts).unwrap());
        }
    }
    out
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn report(name: &str, d: Duration, extra: &str) {
    println!("{name:<44} {:>10.3} ms  {extra}", d.as_secs_f64() * 1e3);
}

fn main() {
    let mut rng = SplitMix64::new(1);
    let eps = episodes(&mut rng);
    let dev = Device::Cpu;

    let states = value_states(&eps, None);
    let d = median(|| drop(value_states(&eps, None)), 9);
    report(
        "value_states (512 episodes, dedup)",
        d,
        &format!("{} queries -> {} unique", states.queries(), states.unique()),
    );

    let outcomes: Vec<Vec<RolloutOutcome>> = (0..states.unique())
        .map(|_| {
            (0..9)
                .map(|_| RolloutOutcome {
                    reward: rng.below(2) as f32,
                    truncated: false,
                })
                .collect()
        })
        .collect();
    let d = median(
        || {
            let v = values_from_outcomes(&eps, &states, &outcomes).unwrap();
            drop(advantages(&eps, &v.values).unwrap());
        },
        9,
    );
    report("MC values + token advantages (512 episodes)", d, "");

    let values: Vec<Vec<f32>> = eps.iter().map(|e| vec![0.5; e.response().len()]).collect();
    let logp: Vec<Vec<f32>> = eps.iter().map(|e| vec![-1.0; e.response().len()]).collect();
    let kl = KlRows {
        logp: &logp,
        ref_logp: &logp,
        coef: 0.05,
    };
    let d = median(
        || drop(gae_episodes(&eps, &values, &GaeParams::default(), Some(&kl)).unwrap()),
        9,
    );
    report("GAE with KL shaping (512 episodes)", d, "");

    let mb: Vec<&Episode> = eps.iter().take(64).collect();
    let adv: Vec<Vec<f32>> = mb.iter().map(|e| vec![0.3; e.response().len()]).collect();
    let d = median(
        || {
            let w = normalize(&adv, AdvantageNorm::Whiten);
            let b = Batch::collate(mb.iter().copied(), &dev).unwrap();
            drop(b.align(&w).unwrap());
        },
        9,
    );
    let batch = Batch::collate(mb.iter().copied(), &dev).unwrap();
    report(
        "whiten + collate + align (minibatch of 64)",
        d,
        &format!("L = {}", batch.seq_len()),
    );

    let (b, t) = batch.targets.dims2().unwrap();
    let advt = batch.align(&adv).unwrap();
    let old = Tensor::full(-1.0f32, (b, t), &dev).unwrap();
    let rf = Tensor::full(-1.1f32, (b, t), &dev).unwrap();
    let logp = Var::from_tensor(&Tensor::full(-0.9f32, (b, t), &dev).unwrap()).unwrap();
    let d = median(
        || {
            let inputs = ActorInputs {
                logp: logp.as_tensor(),
                old_logp: &old,
                ref_logp: Some(&rf),
                advantages: &advt,
                mask: &batch.response_mask,
            };
            let out = actor_loss(
                &inputs,
                &PpoConfig::default(),
                Some(&KlConfig::default()),
                None,
            )
            .unwrap();
            drop(out.loss.backward().unwrap());
        },
        9,
    );
    report("actor loss forward + backward (64 x L-1)", d, "");

    let logits = Tensor::randn(0f32, 2.0, (4, 256, 32_000), &dev).unwrap();
    let mask = Tensor::ones((4, 256), candle_core::DType::F32, &dev).unwrap();
    let d = median(|| assert!(masked_entropy(&logits, &mask).unwrap() > 0.0), 5);
    report("masked_entropy (4 x 256 x 32000 logits)", d, "");
}
