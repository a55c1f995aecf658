//! Helpers shared by the integration tests.

use candle_core::{Device, Tensor, Var};
use vine_rl::Episode;

/// A `(B, T)` f32 tensor on the CPU.
pub fn t2<const T: usize>(rows: &[[f32; T]]) -> Tensor {
    Tensor::from_vec(rows.concat(), (rows.len(), T), &Device::Cpu).unwrap()
}

/// A trainable `(B, T)` f32 variable on the CPU.
pub fn var2<const T: usize>(rows: &[[f32; T]]) -> Var {
    Var::from_tensor(&t2(rows)).unwrap()
}

/// Asserts `|a − b| <= tol` elementwise, with a message naming the index.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "index {i}: got {g}, want {w} (tol {tol})\n{got:?}"
        );
    }
}

/// Asserts a scalar is within `tol` of `want`.
pub fn assert_near(got: f32, want: f32, tol: f32) {
    assert!(
        (got - want).abs() <= tol,
        "got {got}, want {want} (tol {tol})"
    );
}

/// A `(B, T)` tensor flattened row-major.
pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Gradient of `loss` with respect to `v`, flattened.
pub fn grad(loss: &Tensor, v: &Var) -> Vec<f32> {
    let grads = loss.backward().unwrap();
    flat(
        grads
            .get(v.as_tensor())
            .expect("no gradient reached the variable"),
    )
}

/// An episode with `resp` tokens, finished iff `finished` (then the last token is EOS = 2).
pub fn episode(
    group: usize,
    prompt: &[u32],
    resp: &[u32],
    finished: bool,
    reward: f32,
    starts: &[usize],
) -> Episode {
    Episode::new(
        group,
        prompt.to_vec(),
        resp.to_vec(),
        finished,
        reward,
        starts.to_vec(),
    )
    .unwrap()
}
