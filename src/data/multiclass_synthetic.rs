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
    /// How alike the classes of one super-class are: each class direction is
    /// √ρ·(its super-class's direction) + √(1 − ρ)·(its own), so 0 gives unrelated classes and
    /// values near 1 nearly indistinguishable ones within a super-class (Tang et al.'s class
    /// similarity).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub class_similarity: f64,
    /// Super-classes the classes are dealt into (class c joins super-class c mod this).
    #[serde(default = "default_super_classes", skip_serializing_if = "is_default_super_classes")]
    pub super_classes: usize,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn default_super_classes() -> usize {
    2
}
fn is_default_super_classes(n: &usize) -> bool {
    *n == default_super_classes()
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
        if !(0.0..1.0).contains(&self.class_similarity) {
            return Err(("class_similarity", format!("must be in [0, 1), got {}", self.class_similarity)));
        }
        if self.super_classes == 0 || self.super_classes > self.n_classes {
            return Err(("super_classes", format!("must be between 1 and n_classes ({}), got {}", self.n_classes, self.super_classes)));
        }
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
        let mut problem = MulticlassSynthetic::new(self.dim, self.n_classes, self.signal, self.nonlinearity, self.problem_seed);
        if self.class_similarity > 0.0 {
            problem.group_classes(self.super_classes, self.class_similarity, self.problem_seed);
        }
        problem
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

    /// Pulls each class direction toward its super-class's: w_c ← unit(√ρ·μ_(c mod g) +
    /// √(1 − ρ)·w_c); the nonlinear part stays per class.
    fn group_classes(&mut self, groups: usize, rho: f64, problem_seed: u64) {
        let mut mu = standard_normal_matrix(groups, self.dim, seed::derive(problem_seed, &["super-classes"]));
        for mut row in mu.rows_mut() {
            let norm = row.dot(&row).sqrt().max(1e-12);
            row.mapv_inplace(|a| a / norm);
        }
        for (c, mut row) in self.w.rows_mut().into_iter().enumerate() {
            let pulled = &mu.row(c % groups) * rho.sqrt() + &row * (1.0 - rho).sqrt();
            let norm = pulled.dot(&pulled).sqrt().max(1e-12);
            row.assign(&(pulled / norm));
        }
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

    #[test]
    fn similar_classes_share_a_direction() {
        // Classes 0 and 2 share super-class 0: their directions' cosine rises with ρ.
        let cosine = |rho: f64| {
            let mut m = MulticlassSynthetic::new(8, 4, 2.0, 0.0, 5);
            if rho > 0.0 {
                m.group_classes(2, rho, 5);
            }
            m.w.row(0).dot(&m.w.row(2))
        };
        assert!(cosine(0.9) > 0.8, "{}", cosine(0.9));
        assert!(cosine(0.9) > cosine(0.5) && cosine(0.5) > cosine(0.0) - 1e-12 || cosine(0.5) > 0.3);
    }
}
