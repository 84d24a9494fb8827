//! `synthetic-images`: digit glyphs, shifted and noised, with exact p0.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::{check_rows, DataKind, DataSize, DataStore, Dataset, Draw, Problem};
use crate::datasets;

fn default_side() -> usize {
    12
}
fn default_image_classes() -> usize {
    10
}
fn default_max_shift() -> usize {
    1
}
fn default_sigma() -> f64 {
    0.8
}

/// Synthetic images with exact p0 (`datasets::SyntheticImages`): a digit glyph on a
/// `side × side` canvas, cyclically shifted by up to `max_shift` pixels, plus Gaussian noise of
/// sd `sigma`; pixels are not clipped or rescaled (that would change the exact likelihood).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticImagesSpec {
    pub n_train: usize,
    #[serde(default = "super::default_n_test")]
    pub n_test: usize,
    #[serde(default = "super::default_n_population")]
    pub n_population: usize,
    #[serde(default = "default_side")]
    pub side: usize,
    #[serde(default = "default_image_classes")]
    pub n_classes: usize,
    #[serde(default = "default_max_shift")]
    pub max_shift: usize,
    #[serde(default = "default_sigma")]
    pub sigma: f64,
}

impl DataKind for SyntheticImagesSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        check_rows("n_train", self.n_train)?;
        check_rows("n_test", self.n_test)?;
        check_rows("n_population", self.n_population)?;
        if !(8..=64).contains(&self.side) {
            return Err(("side", format!("must be between 8 and 64 pixels, got {}", self.side)));
        }
        if !(2..=10).contains(&self.n_classes) {
            return Err(("n_classes", format!("must be between 2 and 10 (one digit glyph per class), got {}", self.n_classes)));
        }
        if 2 * self.max_shift >= self.side {
            return Err(("max_shift", format!("must be below side/2 = {}, got {}", self.side.div_ceil(2), self.max_shift)));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(("sigma", format!("must be finite and > 0, got {}", self.sigma)));
        }
        Ok(())
    }

    fn n_classes(&self) -> Option<usize> {
        Some(self.n_classes)
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((self.side, self.side))
    }

    fn allows_flips(&self) -> Option<bool> {
        Some(false)
    }

    fn problem(&self) -> Option<Box<dyn Problem>> {
        Some(Box::new(self.images()))
    }

    fn fresh_rows(&self) -> bool {
        true
    }

    fn draw(&self, seed: u64, _store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_problem(&self.images(), (self.n_train, self.n_test, self.n_population), seed))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train, test: self.n_test, population: self.n_population, features: self.side * self.side, classes: self.n_classes, table: 0 }
    }
}

impl SyntheticImagesSpec {
    fn images(&self) -> SyntheticImageProblem {
        let config = datasets::SyntheticImagesConfig { side: self.side, n_classes: self.n_classes, max_shift: self.max_shift, sigma: self.sigma };
        // `check` has validated every field `new` checks.
        SyntheticImageProblem(datasets::SyntheticImages::new(config).expect("a checked synthetic-images spec"))
    }
}

/// [`datasets::SyntheticImages`] as a [`Problem`]: labels are the generating classes, which is a
/// draw from p0(·|x) given the image.
struct SyntheticImageProblem(datasets::SyntheticImages);

impl Problem for SyntheticImageProblem {
    fn n_classes(&self) -> usize {
        self.0.n_classes()
    }

    fn bayes_probabilities(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.0.bayes(x)
    }

    fn sample_x(&self, n: usize, seed: u64) -> Array2<f64> {
        self.0.sample(n, seed).0.x
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        let side = self.0.config().side;
        Some((side, side))
    }

    fn sample(&self, n: usize, seed: u64) -> Dataset {
        let (img, p0) = self.0.sample(n, seed);
        Dataset { x: img.x, y: img.y, n_classes: img.n_classes, p0: Some(p0), image_shape: self.image_shape() }
    }
}
