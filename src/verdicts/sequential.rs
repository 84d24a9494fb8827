//! Seeds until decided: the looks of a sequential design and the α each one spends.
//!
//! A design `seeds = { min, max, step }` looks at min, min + step, …, max seeds. Testing at
//! every look at the full α would inflate false positives (five looks at 0.05 reject a true
//! null about 14% of the time), so the looks share α by the Lan–DeMets spending function of
//! O'Brien–Fleming type, α(t) = 2 − 2Φ(z_{1−α/2} / √t) with t = seeds at the look / max seeds:
//! look k may spend α(t_k) − α(t_{k−1}), and Holm runs at that level over the predictions still
//! undecided. By the union bound over looks and predictions the family-wise error of the whole
//! procedure is at most α. Early looks spend little, so only large effects stop early.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::study::SeedPlan;

/// The α each look of `plan` may spend, in look order; they sum to `alpha`.
pub fn alpha_per_look(plan: &SeedPlan, alpha: f64) -> Vec<f64> {
    let mut spent = 0.0;
    plan.looks()
        .iter()
        .map(|&s| {
            let cumulative = if s == plan.max { alpha } else { obrien_fleming_spent(alpha, s as f64 / plan.max as f64) };
            let level = cumulative - spent;
            spent = cumulative;
            level
        })
        .collect()
}

/// α spent by information fraction `t` under the O'Brien–Fleming-type spending function.
pub fn obrien_fleming_spent(alpha: f64, t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let normal = Normal::new(0.0, 1.0).expect("standard normal parameters are valid");
    let z = normal.inverse_cdf(1.0 - alpha / 2.0);
    (2.0 - 2.0 * normal.cdf(z / t.min(1.0).sqrt())).min(alpha)
}

/// One look of a study, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// 1-based.
    pub index: usize,
    /// Seeds 0..seeds of the prediction's cells are used at this look.
    pub seeds: usize,
    /// The α this look spent (Holm runs at this level).
    pub alpha: f64,
    /// Predictions decided at this look (rejected, or stopped for futility, or left at the
    /// last look).
    pub decided: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_end_at_max_and_spend_alpha_in_full() {
        let plan = SeedPlan { min: 5, max: 40, step: 5 };
        assert_eq!(plan.looks(), vec![5, 10, 15, 20, 25, 30, 35, 40]);
        let levels = alpha_per_look(&plan, 0.05);
        assert!((levels.iter().sum::<f64>() - 0.05).abs() < 1e-15);
        assert!(levels.iter().all(|&a| a > 0.0));
        // O'Brien–Fleming type: the first look at t = 1/8 spends z = 1.96·√8 = 5.54 worth.
        assert!(levels[0] < 1e-7, "{}", levels[0]);
        assert_eq!(SeedPlan { min: 5, max: 12, step: 5 }.looks(), vec![5, 10, 12]);
        assert_eq!(SeedPlan::fixed(7).looks(), vec![7]);
        assert_eq!(alpha_per_look(&SeedPlan::fixed(7), 0.05), vec![0.05]);
    }

    #[test]
    fn spending_matches_the_closed_form() {
        // 2 − 2Φ(1.959964/√0.5) = 2 − 2Φ(2.771808) = 0.0055746 (scipy.stats.norm).
        let spent = obrien_fleming_spent(0.05, 0.5);
        assert!((spent - 0.0055746).abs() < 2e-7, "{spent}");
        assert!((obrien_fleming_spent(0.05, 1.0) - 0.05).abs() < 1e-9);
        assert_eq!(obrien_fleming_spent(0.05, 0.0), 0.0);
    }
}
