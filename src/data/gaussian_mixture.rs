//! `gaussian-mixture`: the two-Gaussian problem of the semiparametric KD paper, with exact p0.

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{check_dim, check_rows, non_negative, sigmoid, standard_normal_matrix, DataKind, DataSize, DataStore, Draw, Problem};
use crate::seed;

/// Two Gaussians N(±r·1, I) with equal priors: p0(class 1 | x) = σ(−2r Σ_j x_j).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianMixtureSpec {
    /// Training points (teacher and student share them; the student's validation split is
    /// carved from them).
    pub n_train: usize,
    /// Held-out test points for the reported test metrics.
    #[serde(default = "super::default_n_test")]
    pub n_test: usize,
    /// Fresh points for population quantities (excess risk, ‖p̂ − p0‖²).
    #[serde(default = "super::default_n_population")]
    pub n_population: usize,
    #[serde(default = "super::default_dim")]
    pub dim: usize,
    #[serde(default = "super::default_radius")]
    pub radius: f64,
}

impl DataKind for GaussianMixtureSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        check_rows("n_train", self.n_train)?;
        check_rows("n_test", self.n_test)?;
        check_rows("n_population", self.n_population)?;
        check_dim(self.dim)?;
        non_negative("radius", self.radius)
    }

    fn n_classes(&self) -> Option<usize> {
        Some(2)
    }

    fn problem(&self) -> Option<Box<dyn Problem>> {
        Some(Box::new(GaussianMixture { dim: self.dim, radius: self.radius }))
    }

    fn fresh_rows(&self) -> bool {
        true
    }

    fn draw(&self, seed: u64, _store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_problem(&GaussianMixture { dim: self.dim, radius: self.radius }, (self.n_train, self.n_test, self.n_population), seed))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train, test: self.n_test, population: self.n_population, features: self.dim, classes: 2, table: 0 }
    }
}

/// The two-Gaussian mixture of the semiparametric KD paper.
pub struct GaussianMixture {
    pub dim: usize,
    pub radius: f64,
}

impl Problem for GaussianMixture {
    fn n_classes(&self) -> usize {
        2
    }

    fn bayes_probabilities(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut p = Array2::zeros((x.nrows(), 2));
        for (i, row) in x.rows().into_iter().enumerate() {
            let p1 = sigmoid(-2.0 * self.radius * row.sum());
            p[[i, 0]] = 1.0 - p1;
            p[[i, 1]] = p1;
        }
        p
    }

    fn sample_x(&self, n: usize, seed: u64) -> Array2<f64> {
        let mut x = standard_normal_matrix(n, self.dim, seed::derive(seed, &["noise"]));
        let mut rng = seed::rng(seed::derive(seed, &["component"]));
        for mut row in x.rows_mut() {
            // Component 0 has mean +r·1, component 1 has mean −r·1.
            let shift = if rng.gen::<bool>() { -self.radius } else { self.radius };
            row.mapv_inplace(|v| v + shift);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_mixture_bayes_matches_closed_form_and_sums_to_one() {
        let g = GaussianMixture { dim: 3, radius: 0.5 };
        let x = ndarray::array![[0.1, 0.2, -0.3], [1.0, 1.0, 1.0]];
        let p = g.bayes_probabilities(x.view());
        assert!((p[[0, 1]] - sigmoid(0.0)).abs() < 1e-15);
        assert!((p[[1, 1]] - sigmoid(-3.0)).abs() < 1e-15);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn gaussian_mixture_labels_follow_p0() {
        // The mean of y (class 1) over n draws has sd ≤ 0.5/√n = 0.0035 around E[p0(1|x)];
        // 0.02 is more than 5 sd.
        let g = GaussianMixture { dim: 2, radius: 0.7 };
        let d = g.sample(20_000, 7);
        let y_mean = d.y.iter().filter(|&&y| y == 1).count() as f64 / d.len() as f64;
        let p_mean = d.p0.as_ref().unwrap().column(1).mean().unwrap();
        assert!((y_mean - p_mean).abs() < 0.02, "{y_mean} vs {p_mean}");
        assert!((p_mean - 0.5).abs() < 0.03);
    }
}
