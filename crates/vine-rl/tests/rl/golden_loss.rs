//! Golden values (and gradients) of the losses and of whitening.

use candle_core::{Device, Tensor};
use vine_rl::loss::{
    actor_loss, dpo_positive_loss, kl_loss, masked_entropy, ppo_loss, sft_loss, value_loss,
    ActorInputs, DpoConfig, KlConfig, PairSide, PpoConfig,
};
use vine_rl::stats::{masked_whiten, normalize};
use vine_rl::AdvantageNorm;

use crate::common::{assert_close, assert_near, flat, grad, t2, var2};

const LOGP: [[f32; 5]; 2] = [
    [-1.0, -0.5, -4.0, -0.1, -3.0],
    [-0.7, -1.2, -0.3, -2.5, -0.9],
];
const OLD: [[f32; 5]; 2] = [
    [-1.1, -0.2, -4.3, -0.1, -1.0],
    [-0.7, -1.5, -0.1, -2.0, -5.0],
];
const REF: [[f32; 5]; 2] = [
    [-1.0, -0.9, -0.5, -0.2, 0.0],
    [-4.0, -1.0, -0.5, -2.5, -0.1],
];
const ADV: [[f32; 5]; 2] = [[0.5, -1.0, 2.0, 0.3, 9.0], [-0.4, 1.5, -2.0, 0.8, 7.0]];
const MASK: [[f32; 5]; 2] = [[0.0, 1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]];

/// PPO-clip + k3 KL against the reference's `_compute_actor_loss`, value, statistics and the
/// gradient with respect to the log-probs. Covers clipping on both sides, a k3 above the clamp
/// and masked positions with large ratios. Tolerance 1e-6 on values, 1e-6 on gradients.
///
/// ```python
/// import torch
/// from torch import tensor
/// logp = tensor([[-1.0, -0.5, -4.0, -0.1, -3.0], [-0.7, -1.2, -0.3, -2.5, -0.9]], requires_grad=True)
/// old = tensor([[-1.1, -0.2, -4.3, -0.1, -1.0], [-0.7, -1.5, -0.1, -2.0, -5.0]])
/// ref = tensor([[-1.0, -0.9, -0.5, -0.2, 0.0], [-4.0, -1.0, -0.5, -2.5, -0.1]])
/// adv = tensor([[0.5, -1.0, 2.0, 0.3, 9.0], [-0.4, 1.5, -2.0, 0.8, 7.0]])
/// mask = tensor([[0.0, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
/// mm = lambda v: (v * mask).sum() / mask.sum()
/// log_ratio = (logp - old) * mask
/// ratio = torch.exp(log_ratio)
/// pg1 = -adv * ratio
/// pg2 = -adv * torch.clamp(ratio, 0.8, 1.2)
/// pg_loss = mm(torch.max(pg1, pg2))
/// k3 = torch.exp(ref - logp) - (ref - logp) - 1
/// ref_kl = torch.clamp(k3 * mask, min=0, max=10)
/// kl_loss = 1e-4 * ref_kl.sum(dim=1).mean()
/// loss = pg_loss + kl_loss
/// loss.backward()
/// print(pg_loss.item(), kl_loss.item(), loss.item())           # -0.30682331 0.00062260864 -0.30620071
/// print(mm(torch.gt(pg2, pg1).float()).item(), mm(ratio).item())  # 0.42857143 0.98082823
/// print((0.5 * mm((logp - old) ** 2)).item(), mm(old - logp).item())  # 0.04000001 0.05714284
/// print(ref_kl.sum(1).mean().item(), ((logp - ref) * mask).sum(1).mean().item())  # 6.2260866 0.15
/// print(logp.grad.tolist())
/// ```
#[test]
fn actor_loss_matches_the_reference() {
    let logp = var2(&LOGP);
    let (old, rf, adv, mask) = (t2(&OLD), t2(&REF), t2(&ADV), t2(&MASK));
    let inputs = ActorInputs {
        logp: logp.as_tensor(),
        old_logp: &old,
        ref_logp: Some(&rf),
        advantages: &adv,
        mask: &mask,
    };
    let out = actor_loss(
        &inputs,
        &PpoConfig::default(),
        Some(&KlConfig::default()),
        None,
    )
    .unwrap();
    assert_near(out.loss.to_scalar::<f32>().unwrap(), -0.306_200_7, 1e-6);
    assert_near(out.total, -0.306_200_7, 1e-6);
    let p = out.policy;
    assert_near(p.loss, -0.306_823_3, 1e-6);
    assert_near(p.clip_frac, 3.0 / 7.0, 1e-6);
    assert_near(p.ratio_mean, 0.980_828_2, 1e-6);
    assert_near(p.approx_kl, 0.04, 1e-6);
    assert_near(p.policy_kl, 0.057_142_84, 1e-6);
    assert_near(p.ratio_min, (-0.5f32).exp(), 1e-6);
    assert_near(p.ratio_max, 0.3f32.exp(), 1e-6);
    assert_eq!((p.tokens, p.skipped), (7.0, false));
    let kl = out.kl.unwrap();
    assert_near(kl.k3, 6.226_086_6, 1e-5);
    assert_near(kl.k1, 0.15, 1e-6);
    assert_near(kl.loss, 0.000_622_608_6, 1e-9);
    let want = [
        0.0,
        1.648_399_8e-5,
        0.0,
        -0.042_852_39,
        0.0,
        0.057_191_02,
        -1.107_014e-5,
        0.233_932_14,
        -0.069_317_795,
        0.0,
    ];
    assert_close(&grad(&out.loss, &logp), &want, 1e-6);
}

/// The safety rule: a mean ratio above 10 zeroes the whole actor loss and removes its gradient
/// (the reference multiplies the loss by 0.0). Exact.
#[test]
fn ratio_threshold_zeroes_the_loss_and_its_gradient() {
    let logp = var2(&[[0.0f32, 0.0, 0.0]]);
    let old = t2(&[[-3.0f32, -3.0, -3.0]]); // ratio e^3 ≈ 20
    let adv = t2(&[[1.0f32, -1.0, 0.5]]);
    let mask = t2(&[[1.0f32, 1.0, 1.0]]);
    let inputs = ActorInputs {
        logp: logp.as_tensor(),
        old_logp: &old,
        ref_logp: Some(&old),
        advantages: &adv,
        mask: &mask,
    };
    let out = actor_loss(
        &inputs,
        &PpoConfig::default(),
        Some(&KlConfig::default()),
        None,
    )
    .unwrap();
    assert!(out.policy.skipped);
    assert_eq!(out.total, 0.0);
    assert_eq!(out.loss.to_scalar::<f32>().unwrap(), 0.0);
    // candle drops `0·L` from the graph: no gradient reaches the log-probs.
    assert!(out.loss.backward().unwrap().get(logp.as_tensor()).is_none());
    let off = PpoConfig {
        ratio_threshold: None,
        ..PpoConfig::default()
    };
    let kept = ppo_loss(logp.as_tensor(), &old, &adv, &mask, &off, None).unwrap();
    assert!(!kept.stats.skipped && kept.stats.loss != 0.0);
}

/// Non-finite values at masked positions must not reach the loss or the gradient (the
/// reference's multiply-by-mask would turn `inf · 0` into NaN).
#[test]
fn masked_positions_never_leak() {
    let logp = var2(&[[-1.0f32, f32::NEG_INFINITY], [-0.5, f32::NAN]]);
    let old = t2(&[[-1.2f32, 3.0], [-0.4, f32::INFINITY]]);
    let adv = t2(&[[1.0f32, f32::NAN], [-1.0, 2.0]]);
    let mask = t2(&[[1.0f32, 0.0], [1.0, 0.0]]);
    let out = ppo_loss(
        logp.as_tensor(),
        &old,
        &adv,
        &mask,
        &PpoConfig::default(),
        None,
    )
    .unwrap();
    let kl = kl_loss(logp.as_tensor(), &old, &mask, &KlConfig::default(), None).unwrap();
    let total = (out.loss + kl.loss).unwrap();
    assert!(total.to_scalar::<f32>().unwrap().is_finite());
    let g = grad(&total, &logp);
    assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    assert_eq!((g[1], g[3]), (0.0, 0.0));
}

/// The clipped value loss against the reference's `_compute_critics_loss`, with a clipped
/// position, a tie (V = clip(V)) and a masked garbage value. Tolerance 1e-6.
///
/// ```python
/// import torch
/// from torch import tensor
/// values = tensor([[0.5, 0.9, 0.1, 7.0], [0.3, 0.35, 0.8, 0.0]], requires_grad=True)
/// old = tensor([[0.4, 0.5, 0.2, 0.0], [0.3, 0.6, 0.5, 0.0]])
/// returns = tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
/// mask = tensor([[1.0, 1, 1, 0], [1, 1, 1, 0]])
/// mm = lambda v: (v * mask).sum() / mask.sum()
/// clipped = torch.clamp(values, old - 0.2, old + 0.2)
/// vf1 = (values - returns) ** 2
/// vf2 = (clipped - returns) ** 2
/// loss = 0.5 * mm(torch.max(vf1, vf2))
/// loss.backward()
/// print(loss.item(), mm(torch.gt(vf2, vf1).float()).item())  # 0.079375 0.33333334
/// print(mm(vf1).item(), mm(values).item())                     # 0.13708332 0.49166664
/// print(values.grad.tolist())
/// ```
#[test]
fn value_loss_matches_the_reference() {
    let values = var2(&[[0.5f32, 0.9, 0.1, 7.0], [0.3, 0.35, 0.8, 0.0]]);
    let old = t2(&[[0.4f32, 0.5, 0.2, 0.0], [0.3, 0.6, 0.5, 0.0]]);
    let returns = t2(&[[1.0f32, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]);
    let mask = t2(&[[1.0f32, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]]);
    let out = value_loss(values.as_tensor(), &old, &returns, &mask, 0.2, None).unwrap();
    assert_near(out.stats.loss, 0.079_375, 1e-6);
    assert_near(out.stats.clip_frac, 1.0 / 3.0, 1e-6);
    assert_near(out.stats.mse, 0.137_083_32, 1e-6);
    assert_near(out.stats.value_mean, 0.491_666_64, 1e-6);
    let want = [
        -0.083_333_336,
        0.0,
        0.016_666_668,
        0.0,
        0.05,
        -0.108_333_334,
        0.0,
        0.0,
    ];
    assert_close(&grad(&out.loss, &values), &want, 1e-6);
}

/// Whitening against the reference's `masked_whiten` (both `shift_mean` settings) and
/// `masked_rescale_by_std`, with unbiased variance; tensor and slice versions. Tolerance 1e-6.
///
/// ```python
/// import torch
/// from torch import tensor
/// values = tensor([[0.3, -1.2, 2.5, 9.0, 0.0], [1.0, 0.25, -0.5, 4.0, 7.0]])
/// mask = tensor([[1.0, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
/// mean = (values * mask).sum() / mask.sum()
/// var = (((values - mean) ** 2) * mask).sum() / mask.sum() * mask.sum() / (mask.sum() - 1)
/// w = (values - mean) * torch.rsqrt(var + 1e-8)
/// print((w * mask).tolist())                                 # shift_mean=True
/// print(((w + mean) * mask).tolist())                        # shift_mean=False
/// print((values * torch.rsqrt(var + 1e-8) * mask).tolist())  # masked_rescale_by_std
/// ```
#[test]
fn whitening_matches_the_reference() {
    let values = t2(&[[0.3f32, -1.2, 2.5, 9.0, 0.0], [1.0, 0.25, -0.5, 4.0, 7.0]]);
    let mask = t2(&[[1.0f32, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0]]);
    let rows = vec![vec![0.3f32, -1.2, 2.5], vec![1.0, 0.25, -0.5, 4.0]];
    let cases = [
        (
            AdvantageNorm::Whiten,
            [
                -0.338_241_25,
                -1.173_895_9,
                0.887_385_7,
                0.051_730_964,
                -0.366_096_4,
                -0.783_923_7,
                1.723_040_4,
            ],
        ),
        (
            AdvantageNorm::WhitenKeepMean,
            [
                0.568_901_66,
                -0.266_753,
                1.794_528_7,
                0.958_873_9,
                0.541_046_5,
                0.123_219_19,
                2.630_183_5,
            ],
        ),
        (
            AdvantageNorm::ScaleOnly,
            [
                0.167_130_95,
                -0.668_523_8,
                1.392_757_9,
                0.557_103_16,
                0.139_275_79,
                -0.278_551_58,
                2.228_412_6,
            ],
        ),
    ];
    for (norm, want) in cases {
        let t = flat(&masked_whiten(&values, &mask, norm).unwrap());
        let valid: Vec<f32> = [&t[0..3], &t[5..9]].concat();
        assert_close(&valid, &want, 1e-6);
        assert_eq!((t[3], t[4], t[9]), (0.0, 0.0, 0.0));
        let s: Vec<f32> = normalize(&rows, norm).concat();
        assert_close(&s, &want, 1e-6);
    }
}

/// SFT NLL with the reference's `per_instance_non_pad_tokens_then_batch` reduction. Tolerance
/// 1e-7.
///
/// ```python
/// import torch
/// from torch import tensor
/// logp = tensor([[-0.5, -1.5, -0.25, -7.0], [-2.0, -0.1, -0.3, -0.6]], requires_grad=True)
/// mask = tensor([[1.0, 1, 1, 0], [0, 1, 1, 1]])
/// loss = ((-logp * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)).sum() / 2
/// loss.backward()
/// print(loss.item(), logp.grad.tolist())  # 0.54166669, ±1/6 on valid tokens
/// ```
#[test]
fn sft_loss_matches_the_reference() {
    let logp = var2(&[[-0.5f32, -1.5, -0.25, -7.0], [-2.0, -0.1, -0.3, -0.6]]);
    let mask = t2(&[[1.0f32, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]]);
    let loss = sft_loss(logp.as_tensor(), &mask, None).unwrap();
    assert_near(loss.to_scalar::<f32>().unwrap(), 0.541_666_7, 1e-7);
    let s = -1.0 / 6.0;
    assert_close(&grad(&loss, &logp), &[s, s, s, 0.0, 0.0, s, s, s], 1e-7);
}

/// DPO+ against the reference's `dpo_positive_trainer._compute_actor_loss` (β = 0.1, λ = 50),
/// with the positive penalty active on the first pair only, without and with label smoothing.
/// Tolerance 1e-5 on the loss (the logit reaches −40), 1e-6 on gradients and statistics.
///
/// ```python
/// import torch
/// import torch.nn.functional as F
/// from torch import tensor
/// def run(ls):
///     c_logp = tensor([[-1.0, -2.0, -0.5], [-0.2, -0.3, -9.0]], requires_grad=True)
///     c_ref = tensor([[-0.8, -1.5, -0.5], [-0.4, -0.5, -3.0]])
///     c_mask = tensor([[1.0, 1, 1], [1, 1, 0]])
///     r_logp = tensor([[-2.0, -1.0, -3.0, -1.0], [-0.5, -0.5, -0.5, -0.5]], requires_grad=True)
///     r_ref = tensor([[-1.0, -1.0, -2.0, -5.0], [-0.7, -0.2, -0.4, -0.1]])
///     r_mask = tensor([[1.0, 1, 1, 0], [1, 1, 1, 1]])
///     beta, lam = 0.1, 50.0
///     pc, pr = (c_logp * c_mask).sum(-1), (r_logp * r_mask).sum(-1)
///     rc, rr = (c_ref * c_mask).sum(-1), (r_ref * r_mask).sum(-1)
///     logits = (pc - pr) - (rc - rr) - lam * torch.max(torch.zeros(1), rc - pc)
///     loss = (-F.logsigmoid(beta * logits) * (1 - ls) - F.logsigmoid(-beta * logits) * ls).mean()
///     loss.backward()
///     cr, rj = beta * (pc - rc), beta * (pr - rr)
///     print(loss.item(), (cr > rj).float().mean().item(), (cr - rj).mean().item(),
///           cr.mean().item(), rj.mean().item(), torch.clamp(rc - pc, min=0).mean().item(),
///           (pc > pr).float().mean().item())
///     print(c_logp.grad.tolist(), r_logp.grad.tolist())
/// run(0.0); run(0.1)
/// ```
#[test]
fn dpo_positive_matches_the_reference() {
    let cases = [
        (
            0.0,
            2.024_104_4,
            [-2.465_222_1, -0.023_751_04],
            [0.048_337_687, 0.023_751_04],
        ),
        (
            0.1,
            1.860_604_3,
            [-2.210_222, -0.018_751_042],
            [0.043_337_688, 0.018_751_042],
        ),
    ];
    for (ls, want_loss, c_g, r_g) in cases {
        let c_logp = var2(&[[-1.0f32, -2.0, -0.5], [-0.2, -0.3, -9.0]]);
        let c_ref = t2(&[[-0.8f32, -1.5, -0.5], [-0.4, -0.5, -3.0]]);
        let c_mask = t2(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let r_logp = var2(&[[-2.0f32, -1.0, -3.0, -1.0], [-0.5, -0.5, -0.5, -0.5]]);
        let r_ref = t2(&[[-1.0f32, -1.0, -2.0, -5.0], [-0.7, -0.2, -0.4, -0.1]]);
        let r_mask = t2(&[[1.0f32, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]);
        let chosen = PairSide {
            logp: c_logp.as_tensor(),
            ref_logp: &c_ref,
            mask: &c_mask,
        };
        let rejected = PairSide {
            logp: r_logp.as_tensor(),
            ref_logp: &r_ref,
            mask: &r_mask,
        };
        let cfg = DpoConfig {
            beta: 0.1,
            lambda: 50.0,
            label_smoothing: ls,
        };
        let out = dpo_positive_loss(&chosen, &rejected, &cfg, None).unwrap();
        let s = out.stats;
        assert_near(s.loss, want_loss, 1e-5);
        assert_eq!((s.reward_accuracy, s.policy_accuracy), (1.0, 1.0));
        assert_near(s.reward_margin, 0.115, 1e-6);
        assert_near(s.chosen_reward, -0.015, 1e-6);
        assert_near(s.rejected_reward, -0.13, 1e-6);
        assert_near(s.positive_penalty, 0.35, 1e-6);
        let grads = out.loss.backward().unwrap();
        let gc = flat(grads.get(c_logp.as_tensor()).unwrap());
        let gr = flat(grads.get(r_logp.as_tensor()).unwrap());
        assert_close(&gc, &[c_g[0], c_g[0], c_g[0], c_g[1], c_g[1], 0.0], 1e-5);
        assert_close(
            &gr,
            &[r_g[0], r_g[0], r_g[0], 0.0, r_g[1], r_g[1], r_g[1], r_g[1]],
            1e-6,
        );
    }
}

/// Masked entropy against the reference's `entropy_from_logits`, including a row with huge
/// logits and a uniform row. Tolerance 1e-5.
///
/// ```python
/// import torch
/// from torch import tensor
/// logits = tensor([[[1.0, 2.0, 3.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0, 0.0], [5.0, -5.0, 0.5, 0.5, 2.0]],
///                  [[100.0, 99.0, 0.0, 0.0, 0.0], [-3.0, 1.0, 1.0, 4.0, 0.2], [9.0, 9.0, 9.0, 9.0, 9.0]]])
/// mask = tensor([[1.0, 1, 0], [1, 1, 1]])
/// pd = torch.softmax(logits, -1)
/// ent = torch.logsumexp(logits, -1) - (pd * logits).sum(-1)
/// print(((ent * mask).sum() / mask.sum()).item())  # 1.0528710
/// ```
#[test]
fn entropy_matches_the_reference() {
    let logits = Tensor::new(
        &[
            [
                [1.0f32, 2.0, 3.0, 0.0, -1.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [5.0, -5.0, 0.5, 0.5, 2.0],
            ],
            [
                [100.0, 99.0, 0.0, 0.0, 0.0],
                [-3.0, 1.0, 1.0, 4.0, 0.2],
                [9.0, 9.0, 9.0, 9.0, 9.0],
            ],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let mask = t2(&[[1.0f32, 1.0, 0.0], [1.0, 1.0, 1.0]]);
    assert_near(masked_entropy(&logits, &mask).unwrap(), 1.052_871, 1e-5);
}
