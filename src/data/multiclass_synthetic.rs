//! `multiclass-synthetic`: k classes with exact softmax p0 and tunable nonlinearity.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::{check_dim, check_rows, non_negative, softmax_rows, standard_normal_matrix, DataKind, DataSize, DataStore, Draw, Problem};
use crate::seed;

/// x ~ N(0, I_d); logits_c(x) = signal · (w_c·x + nonlinearity · Σ_m u_cm sin(2 v_m·x)).
/// `signal` sets the difficulty (larger = more separable), `nonlinearity` how far p0 is from a
/// linear-softmax model; w, u, v are drawn once from `problem_seed`, so every replicate samples
/// the same population.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MulticlassSyntheticSpec {
    pub n_train: usize,
    #[serde(default = "super::default_n_test")]
    pub n_test: usize,
    #[serde(default = "super::default_n_population")]
    pub n_population: usize,
    #[serde(default = "super::default_dim")]
    pub dim: usize,
    #[serde(default = "super::default_n_classes")]
    pub n_classes: usize,
    #[serde(default = "super::default_signal")]
    pub signal: f64,
    #[serde(default)]
    pub nonlinearity: f64,
    #[serde(default)]
    pub problem_seed: u64,
}

impl DataKind for MulticlassSyntheticSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        check_rows("n_train", self.n_train)?;
        check_rows("n_test", self.n_test)?;
        check_rows("n_population", self.n_population)?;
        check_dim(self.dim)?;
        if self.n_classes < 2 || self.n_classes > 1000 {
            return Err(("n_classes", format!("must be between 2 and 1000, got {}", self.n_classes)));
        }
        non_negative("signal", self.signal)?;
        non_negative("nonlinearity", self.nonlinearity)
    }

    fn n_classes(&self) -> Option<usize> {
        Some(self.n_classes)
    }

    fn problem(&self) -> Option<Box<dyn Problem>> {
        Some(Box::new(self.multiclass()))
    }

    fn fresh_rows(&self) -> bool {
        true
    }

    fn draw(&self, seed: u64, _store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_problem(&self.multiclass(), (self.n_train, self.n_test, self.n_population), seed))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train, test: self.n_test, population: self.n_population, features: self.dim, classes: self.n_classes, table: 0 }
    }
}

impl MulticlassSyntheticSpec {
    fn multiclass(&self) -> MulticlassSynthetic {
        MulticlassSynthetic::new(self.dim, self.n_classes, self.signal, self.nonlinearity, self.problem_seed)
    }
}

/// A k-class problem with exact softmax Bayes probabilities and tunable nonlinearity.
pub struct MulticlassSynthetic {
    dim: usize,
    n_classes: usize,
    signal: f64,
    nonlinearity: f64,
    w: Array2<f64>, // k × d
    u: Array2<f64>, // k × m
    v: Array2<f64>, // m × d, unit rows
}

const N_WAVES: usize = 8;

impl MulticlassSynthetic {
    pub fn new(dim: usize, n_classes: usize, signal: f64, nonlinearity: f64, problem_seed: u64) -> Self {
        let mut w = standard_normal_matrix(n_classes, dim, seed::derive(problem_seed, &["w"]));
        let u = standard_normal_matrix(n_classes, N_WAVES, seed::derive(problem_seed, &["u"]));
        let mut v = standard_normal_matrix(N_WAVES, dim, seed::derive(problem_seed, &["v"]));
        // Unit rows, so that `signal` alone sets the logit scale.
        for mut row in w.rows_mut().into_iter().chain(v.rows_mut()) {
            let norm = row.dot(&row).sqrt().max(1e-12);
            row.mapv_inplace(|a| a / norm);
        }
        MulticlassSynthetic { dim, n_classes, signal, nonlinearity, w, u, v }
    }
}

impl Problem for MulticlassSynthetic {
    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn bayes_probabilities(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let linear = x.dot(&self.w.t()); // n × k
        let waves = x.dot(&self.v.t()).mapv(|a| (2.0 * a).sin()); // n × m
        let logits = (linear + waves.dot(&self.u.t()) * self.nonlinearity) * self.signal;
        softmax_rows(&logits)
    }

    fn sample_x(&self, n: usize, seed: u64) -> Array2<f64> {
        standard_normal_matrix(n, self.dim, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiclass_probabilities_sum_to_one_and_sampling_is_seeded() {
        let m = MulticlassSynthetic::new(4, 5, 2.0, 0.5, 3);
        let a = m.sample(100, 11);
        let b = m.sample(100, 11);
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        for row in a.p0.unwrap().rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
        assert_ne!(m.sample(100, 12).y, b.y);
    }
}
