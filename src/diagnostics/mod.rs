//! Diagnostics: numbers that describe a teacher, a student or the pair, each labelled with
//! exactly what it estimates.
//!
//! * [`mi`]: mutual information in **bits** — plug-in with the Miller–Madow correction for
//!   predicted labels, KSG (Kraskov et al. 2004) for continuous vectors, Ross (2014) for
//!   continuous vs discrete, each with an optional seeded permutation null.
//! * [`lipschitz`]: Lipschitz constants of ReLU MLPs given as plain weights, every value tagged
//!   as a lower bound, an upper bound, exact or a heuristic, global or local, with its timing.
//! * [`calibration`]: top-label and classwise ECE with equal-width or equal-mass bins,
//!   reliability-diagram data and bootstrap intervals.
//! * [`complexity`]: the critical radius of a student class: the √(d log n / n) proxy and an
//!   empirical local Rademacher complexity of a network's tangent class.
//! * [`suite`]: the `[diagnostics]` section of a study and the per-model numbers it asks for.
//!
//! Private helper: `kdtree` (max-norm neighbour search for the k-NN estimators).
//!
//! Conventions shared by the module:
//! * No global RNG. Every random draw takes a `u64` seed; a batch of draws gets one seed per
//!   item, drawn up front from `StdRng::seed_from_u64(seed)`, so results do not depend on the
//!   rayon thread count or scheduling. Parallel loops write per-item results into place and
//!   every sum over them runs sequentially in index order.
//! * User data never panics: malformed input comes back as [`DiagnosticsError`].

pub mod attention;
pub mod calibration;
pub mod complexity;
pub(crate) mod kdtree;
pub mod lipschitz;
pub mod mi;
pub mod suite;

use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Errors raised by the diagnostics on malformed input or out-of-range settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiagnosticsError {
    // === Shape errors ===
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Too few rows (samples) for the estimator.
    #[error("{what} needs at least {needed} samples, got {got}")]
    TooFewSamples {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// A matrix has no columns.
    #[error("{what} has no columns")]
    NoColumns { what: &'static str },

    // === Value errors ===
    /// A value is NaN or infinite.
    #[error("{what} has a non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        what: &'static str,
        row: usize,
        col: usize,
        value: f64,
    },
    /// A row of a probability matrix is not a probability vector.
    #[error("row {row} is not a probability vector: {reason} (value {value})")]
    NotProbabilities {
        row: usize,
        reason: &'static str,
        value: f64,
    },
    /// A label is not a valid class index.
    #[error("label {label} at row {row} is outside 0..{n_classes}")]
    LabelOutOfRange {
        row: usize,
        label: usize,
        n_classes: usize,
    },

    // === Parameter errors ===
    /// A setting is outside its allowed range.
    #[error("parameter {name} = {value} is invalid: must be {allowed}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        allowed: &'static str,
    },
    /// The problem is larger than an exact or exhaustive method accepts.
    #[error("{what}: size {got} exceeds the limit {limit}")]
    TooLarge {
        what: &'static str,
        limit: usize,
        got: usize,
    },

    /// A computation on a model failed, or its inputs do not fit together.
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    // === Network errors ===
    /// The network has no layers.
    #[error("the network has no layers")]
    EmptyNetwork,
    /// Consecutive layers do not fit together, or a bias has the wrong length.
    #[error("layer {layer}: {what} is {got}, expected {expected}")]
    LayerShape {
        layer: usize,
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A method needs a particular network architecture.
    #[error("{method} needs {needed}, got a network with {hidden_layers} hidden layers and input dimension {input_dim}")]
    Architecture {
        method: &'static str,
        needed: &'static str,
        hidden_layers: usize,
        input_dim: usize,
    },
    /// A user-supplied function returned an output of the wrong shape.
    #[error("the model function returned {got_rows}x{got_cols} for {expected_rows} input rows (expected {expected_rows}x{expected_cols})")]
    ModelOutputShape {
        expected_rows: usize,
        expected_cols: usize,
        got_rows: usize,
        got_cols: usize,
    },
    /// A LAPACK routine failed (it reports this only for numerically broken input).
    #[error("linear algebra failed in {what}: {message}")]
    Linalg { what: &'static str, message: String },
}

/// Result alias for the diagnostics.
pub type Result<T> = std::result::Result<T, DiagnosticsError>;

/// The null distribution of a statistic under a seeded permutation of one variable.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NullBand {
    /// `(1 + #{null >= observed}) / (1 + permutations)`: never 0, valid for any B.
    pub p_value: f64,
    /// 2.5th percentile of the null values (linear interpolation between order statistics).
    pub low: f64,
    /// 97.5th percentile of the null values.
    pub high: f64,
    /// Number of permutations B.
    pub permutations: usize,
}

/// Settings of a permutation null: B permutations drawn from `seed`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NullParams {
    /// Number of permutations B (default 200, NPEET's `shuffle_test` default).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for NullParams {
    fn default() -> Self {
        Self {
            permutations: 200,
            seed: 0,
        }
    }
}

impl NullParams {
    pub(crate) fn check(&self) -> Result<()> {
        if self.permutations == 0 {
            return Err(DiagnosticsError::InvalidParameter {
                name: "permutations",
                value: 0.0,
                allowed: "at least 1",
            });
        }
        Ok(())
    }
}

/// Builds a [`NullBand`] from the observed statistic and the null draws.
pub(crate) fn null_band(observed: f64, mut null: Vec<f64>) -> NullBand {
    let permutations = null.len();
    // Ties count against the observation, so a statistic equal to the whole null gives p = 1.
    let exceed = null.iter().filter(|&&v| v >= observed).count();
    null.sort_by(f64::total_cmp);
    NullBand {
        p_value: (1 + exceed) as f64 / (1 + permutations) as f64,
        low: quantile_sorted(&null, 0.025),
        high: quantile_sorted(&null, 0.975),
        permutations,
    }
}

/// Quantile `q` of sorted, non-empty data by linear interpolation between order statistics
/// (Hyndman–Fan type 7, numpy's default).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// `count` independent seeds drawn up front from `seed`, one per parallel work item.
pub(crate) fn item_seeds(seed: u64, count: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| rng.gen()).collect()
}

/// Rejects NaN and infinite entries, naming the first one.
pub(crate) fn check_finite(what: &'static str, x: ArrayView2<f64>) -> Result<()> {
    for ((row, col), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(DiagnosticsError::NonFinite {
                what,
                row,
                col,
                value,
            });
        }
    }
    Ok(())
}

/// Seconds elapsed since `start`, for the `seconds` field of estimates.
pub(crate) fn seconds_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_type7() {
        // numpy.percentile([1, 2, 3, 4], [0, 2.5, 50, 97.5, 100]) = 1, 1.075, 2.5, 3.925, 4.
        let v = [1.0, 2.0, 3.0, 4.0];
        let expect = [(0.0, 1.0), (0.025, 1.075), (0.5, 2.5), (0.975, 3.925), (1.0, 4.0)];
        for (q, want) in expect {
            assert!((quantile_sorted(&v, q) - want).abs() < 1e-12, "q = {q}");
        }
    }

    #[test]
    fn null_band_counts_ties_against_the_observation() {
        let band = null_band(1.0, vec![0.0, 1.0, 2.0, 0.5]);
        // #{null >= 1} = 2, so p = (1 + 2) / (1 + 4).
        assert!((band.p_value - 0.6).abs() < 1e-15);
        assert_eq!(band.permutations, 4);
    }

    #[test]
    fn item_seeds_are_reproducible() {
        assert_eq!(item_seeds(7, 5), item_seeds(7, 5));
        assert_ne!(item_seeds(7, 5), item_seeds(8, 5));
    }
}
