//! Reasoning-step splitters: cut a sampled response into the steps VinePPO assigns credit to.
//!
//! Both splitters return **byte** ranges into the UTF-8 response that partition it exactly
//! (contiguous, covering, non-empty unless the response is empty), so concatenating the steps
//! gives the response back. The reference works on Python character indices; thresholds it
//! states in characters are counted in `char`s here.

mod gsm8k;
mod hide;
mod long;
mod math;

pub use gsm8k::split_gsm8k;
pub use math::split_math;
