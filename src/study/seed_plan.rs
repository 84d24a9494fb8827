//! How many seeds a study runs (`seeds = n` or `seeds = { min, max, step }`). The α each look
//! spends is the verdicts' business (`verdicts::sequential`).

use serde::{Deserialize, Serialize};

/// How many seeds a study runs: a fixed number, or looks from `min` to `max` in `step`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedPlan {
    pub min: usize,
    pub max: usize,
    pub step: usize,
}

impl SeedPlan {
    /// A fixed design: one look at `n` seeds.
    pub fn fixed(n: usize) -> SeedPlan {
        SeedPlan { min: n, max: n, step: 1 }
    }

    pub fn is_sequential(&self) -> bool {
        self.min < self.max
    }

    /// The seed count at each look: min, min + step, …, with max always the last.
    pub fn looks(&self) -> Vec<usize> {
        let mut out: Vec<usize> = (0..).map(|k| self.min + k * self.step.max(1)).take_while(|&s| s < self.max).collect();
        out.push(self.max);
        out
    }
}
