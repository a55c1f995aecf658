//! Collation layout, alignment, and micro-batch equivalence.

use candle_core::{Device, Var};
use vine_rl::batch::{micro_batches, micro_batches_by_length, minibatches, SplitMix64};
use vine_rl::loss::{actor_loss, ActorInputs, KlConfig, Normalizer, PpoConfig};
use vine_rl::{Batch, Episode};

use crate::common::{assert_close, episode, flat};

fn sample_episodes() -> Vec<Episode> {
    vec![
        episode(0, &[1, 5, 6], &[10, 11, 12, 2], true, 1.0, &[0, 2]),
        episode(0, &[1, 5, 6], &[13], false, 0.0, &[0]),
        episode(1, &[1, 7], &[14, 15, 16, 17, 18], false, 0.0, &[0, 3]),
        episode(1, &[1, 7], &[19, 2], true, 1.0, &[0]),
        episode(
            2,
            &[1, 8, 8, 8],
            &[20, 21, 22, 23, 24, 25, 2],
            true,
            0.0,
            &[0, 1, 4],
        ),
    ]
}

/// Input ids, shifted targets and the response mask, checked against a direct reading of the
/// layout: position j of row b predicts `input_ids[b][j + 1]` and is valid iff that token is a
/// response token.
#[test]
fn layout_matches_the_definition() {
    let episodes = sample_episodes();
    let batch = Batch::collate(&episodes, &Device::Cpu).unwrap();
    let l = episodes.iter().map(Episode::len).max().unwrap();
    assert_eq!(batch.input_ids.dims(), &[5, l]);
    let ids = batch.input_ids.to_vec2::<u32>().unwrap();
    let targets = batch.targets.to_vec2::<u32>().unwrap();
    let mask = batch.response_mask.to_vec2::<f32>().unwrap();
    for (b, e) in episodes.iter().enumerate() {
        let full: Vec<u32> = e.prompt().iter().chain(e.response()).copied().collect();
        assert_eq!(&ids[b][..full.len()], full.as_slice());
        assert!(ids[b][full.len()..].iter().all(|&x| x == 0));
        for j in 0..l - 1 {
            assert_eq!(targets[b][j], ids[b][j + 1]);
            let is_resp = j + 1 >= e.prompt().len() && j + 1 < e.len();
            assert_eq!(mask[b][j], f32::from(u8::from(is_resp)), "row {b} pos {j}");
        }
    }
    assert_eq!(batch.n_tokens(), 19);
    assert_eq!(batch.left_pad(), vec![0; 5]);
}

/// `align` puts token t of row b at position P_b − 1 + t (where `targets` holds that token), and
/// `response_rows` reads it back; wrong lengths are errors naming the row.
#[test]
fn align_and_response_rows_are_inverse() {
    let episodes = sample_episodes();
    let batch = Batch::collate(&episodes, &Device::Cpu).unwrap();
    let per_token: Vec<Vec<f32>> = episodes
        .iter()
        .map(|e| e.response().iter().map(|&t| t as f32 + 0.5).collect())
        .collect();
    let aligned = batch.align(&per_token).unwrap();
    let targets = batch.targets.to_vec2::<u32>().unwrap();
    let a = aligned.to_vec2::<f32>().unwrap();
    let mask = batch.response_mask.to_vec2::<f32>().unwrap();
    for b in 0..5 {
        for (j, &m) in mask[b].iter().enumerate() {
            let want = if m > 0.0 {
                targets[b][j] as f32 + 0.5
            } else {
                0.0
            };
            assert_eq!(a[b][j], want);
        }
    }
    assert_eq!(batch.response_rows(&aligned).unwrap(), per_token);
    let mut bad = per_token.clone();
    bad[3].push(1.0);
    let err = batch.align(&bad).unwrap_err().to_string();
    assert!(err.contains("episode 3"), "{err}");
}

/// Gradient accumulation: the actor loss summed over micro-batches, each normalised by the
/// minibatch totals, has the same value and gradient as the loss of the whole minibatch.
/// Tolerance 1e-6.
#[test]
fn micro_batches_with_a_normalizer_reproduce_the_minibatch_gradient() {
    let episodes = sample_episodes();
    let mut rng = SplitMix64::new(5);
    let table: Vec<f32> = (0..32)
        .map(|_| -0.1 - 3.0 * rng.next_f64() as f32)
        .collect();
    let advs: Vec<Vec<f32>> = episodes
        .iter()
        .map(|e| {
            e.response()
                .iter()
                .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
                .collect()
        })
        .collect();
    let w = Var::from_vec(table, 32, &Device::Cpu).unwrap();

    let run = |idx: &[usize], norm: Option<&Normalizer>| -> (f32, Vec<f32>) {
        let eps: Vec<&Episode> = idx.iter().map(|&i| &episodes[i]).collect();
        let batch = Batch::collate(eps.iter().copied(), &Device::Cpu).unwrap();
        let (b, t) = batch.targets.dims2().unwrap();
        let logp = w
            .as_tensor()
            .index_select(&batch.targets.flatten_all().unwrap(), 0)
            .unwrap();
        let logp = logp.reshape((b, t)).unwrap();
        let old = (logp.detach() + 0.05).unwrap();
        let rf = (logp.detach() - 0.3).unwrap();
        let adv_rows: Vec<&[f32]> = idx.iter().map(|&i| advs[i].as_slice()).collect();
        let adv = batch.align(&adv_rows).unwrap();
        let inputs = ActorInputs {
            logp: &logp,
            old_logp: &old,
            ref_logp: Some(&rf),
            advantages: &adv,
            mask: &batch.response_mask,
        };
        let kl = KlConfig {
            coef: 0.1,
            ..KlConfig::default()
        };
        let out = actor_loss(&inputs, &PpoConfig::default(), Some(&kl), norm).unwrap();
        let g = out.loss.backward().unwrap();
        (
            out.loss.to_scalar().unwrap(),
            flat(g.get(w.as_tensor()).unwrap()),
        )
    };

    let all: Vec<usize> = (0..episodes.len()).collect();
    let (full_loss, full_grad) = run(&all, None);
    let micro = micro_batches_by_length(&episodes, &all, 2).unwrap();
    let batches: Vec<Batch> = micro
        .iter()
        .map(|m| Batch::collate(m.iter().map(|&i| &episodes[i]), &Device::Cpu).unwrap())
        .collect();
    let norm = Normalizer::of_batches(&batches);
    assert_eq!(
        norm,
        Normalizer {
            tokens: 19.0,
            sequences: 5.0
        }
    );
    let mut loss = 0.0;
    let mut acc = vec![0.0f32; 32];
    for m in &micro {
        let (l, g) = run(m, Some(&norm));
        loss += l;
        acc.iter_mut().zip(g).for_each(|(a, g)| *a += g);
    }
    assert!((loss - full_loss).abs() < 1e-6, "{loss} vs {full_loss}");
    assert_close(&acc, &full_grad, 1e-6);
}

/// Minibatches partition the episodes; micro-batches partition a minibatch; sorting by length
/// keeps the same members.
#[test]
fn minibatches_partition_the_episodes() {
    let mbs = minibatches(10, 3, 42).unwrap();
    let mut all: Vec<usize> = mbs.concat();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(micro_batches(&mbs[0], 2).unwrap().concat(), mbs[0]);
    assert!(minibatches(4, 0, 1).is_err());
    let episodes = sample_episodes();
    let by_len = micro_batches_by_length(&episodes, &[4, 0, 3], 2).unwrap();
    assert_eq!(by_len, vec![vec![3, 0], vec![4]]);
    assert!(micro_batches_by_length(&episodes, &[9], 2).is_err());
    assert!(Batch::collate(std::iter::empty::<&Episode>(), &Device::Cpu).is_err());
}

/// SplitMix64 reproduces the published reference sequence (Vigna's `splitmix64.c`, seed 0), so
/// shuffles do not change across platforms or releases.
#[test]
fn splitmix_matches_the_reference_sequence() {
    let mut r = SplitMix64::new(0);
    assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
}
