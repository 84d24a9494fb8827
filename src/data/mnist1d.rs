//! `mnist1d`: MNIST-1D signals, fresh draws of the published generator or the official set.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{at_most_available, check_rows, images_as_set, scalar_mean_sd, subsample_set, DataKind, DataSize, DataStore, Draw};
use crate::datasets;
use crate::seed;

fn default_mnist1d_train() -> usize {
    4000
}
fn default_mnist1d_test() -> usize {
    1000
}

/// MNIST-1D signals of length 40 (`image_shape` (1, 40)), 10 classes. By default fresh draws of
/// the published generator: train, test and (if `n_population` is set) a population sample are
/// independent draws whose generator seeds derive from the replicate's seed, standardised with
/// one scalar mean and sd of the training draw. No p0 is known, so a population sample serves
/// fidelity-style metrics on unlimited in-distribution data, not Bayes metrics.
/// `official = true` uses the published 4,000 / 1,000 set instead (standardised over all 5,000,
/// as published); `n_train` / `n_test` then subsample it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mnist1dSpec {
    #[serde(default = "default_mnist1d_train")]
    pub n_train: usize,
    #[serde(default = "default_mnist1d_test")]
    pub n_test: usize,
    #[serde(default)]
    pub n_population: Option<usize>,
    #[serde(default)]
    pub official: bool,
}

impl DataKind for Mnist1dSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.official {
            at_most_available("n_train", Some(self.n_train), 4000, "the official MNIST-1D set")?;
            at_most_available("n_test", Some(self.n_test), 1000, "the official MNIST-1D set")?;
            if self.n_population.is_some() {
                return Err(("n_population", "the official MNIST-1D set has no population sample; drop `official` for fresh draws".into()));
            }
            return Ok(());
        }
        check_rows("n_train", self.n_train)?;
        check_rows("n_test", self.n_test)?;
        self.n_population.map_or(Ok(()), |n| check_rows("n_population", n))
    }

    fn n_classes(&self) -> Option<usize> {
        Some(10)
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((1, datasets::Mnist1dConfig::default().final_seq_length))
    }

    fn allows_flips(&self) -> Option<bool> {
        Some(false)
    }

    fn fresh_rows(&self) -> bool {
        true
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(draw_mnist1d(self, seed, store))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train, test: self.n_test, population: self.n_population.unwrap_or(0), features: 40, classes: 10, table: 5000 }
    }
}

/// One replicate of the `mnist1d` kind (see [`Mnist1dSpec`]).
fn draw_mnist1d(s: &Mnist1dSpec, seed: u64, store: &DataStore) -> Draw {
    if s.official {
        // Generated, not read, but costly: made once per store like a loaded data set.
        let official = store.loaded.lock().expect("no panics while locked").entry("mnist1d-official".into()).or_insert_with(|| {
            let (train, test) = datasets::mnist1d_official();
            Arc::new((images_as_set(train), Some(images_as_set(test))))
        }).clone();
        let (train, test) = (&official.0, official.1.as_ref().expect("the official set has a test split"));
        return Draw {
            train: subsample_set(train, Some(s.n_train), seed::derive(seed, &["train-subsample"])),
            test: subsample_set(test, Some(s.n_test), seed::derive(seed, &["test-subsample"])),
            population: None,
        };
    }
    let config = datasets::Mnist1dConfig::default();
    let fresh = |n: usize, label: &str| images_as_set(datasets::mnist1d_unstandardised(n, seed::derive(seed, &["mnist1d", label]), &config));
    let mut train = fresh(s.n_train, "train");
    let mut test = fresh(s.n_test, "test");
    let mut population = s.n_population.map(|n| fresh(n, "population"));
    let (mean, sd) = scalar_mean_sd(train.x.view());
    for set in [Some(&mut train), Some(&mut test), population.as_mut()].into_iter().flatten() {
        set.x.mapv_inplace(|v| (v - mean) / sd);
    }
    Draw { train, test, population }
}
