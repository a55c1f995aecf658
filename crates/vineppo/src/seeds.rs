//! Counter-based seeds: every random draw of a run is seeded from `(run seed, purpose, iteration,
//! index)`, so a resumed run redraws exactly what the uninterrupted run would have drawn, and
//! a request's samples never depend on what else was generated alongside.

/// What a seed is for; each purpose gets an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Trajectory sampling: index = prompt position in the iteration.
    Trajectories = 1,
    /// Monte-Carlo value rollouts: index = unique state.
    McRollouts = 2,
    /// Held-out evaluation: index = problem.
    Eval = 3,
    /// Minibatch shuffling: index = epoch.
    Minibatches = 4,
    /// Refilling dropped episodes.
    Refill = 5,
    /// Model initialisation.
    Init = 6,
    /// SFT data order: index = epoch.
    SftOrder = 7,
    /// Value-analysis sampling.
    Analysis = 8,
    /// Carving a validation split out of the training split (RestEM epoch selection).
    Validation = 9,
    /// Choosing DPO+ preference pairs: index = problem.
    Pairs = 10,
}

/// SplitMix64 finaliser: a bijective 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of draw `index` of `purpose` in `iteration` of a run seeded `seed`.
pub fn seed_for(seed: u64, purpose: Purpose, iteration: u64, index: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ purpose as u64) ^ iteration) ^ index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_across_every_coordinate() {
        let base = seed_for(1, Purpose::Trajectories, 3, 4);
        assert_eq!(base, seed_for(1, Purpose::Trajectories, 3, 4));
        for other in [
            seed_for(2, Purpose::Trajectories, 3, 4),
            seed_for(1, Purpose::McRollouts, 3, 4),
            seed_for(1, Purpose::Trajectories, 4, 4),
            seed_for(1, Purpose::Trajectories, 3, 5),
            seed_for(1, Purpose::Trajectories, 4, 3),
        ] {
            assert_ne!(base, other);
        }
    }
}
