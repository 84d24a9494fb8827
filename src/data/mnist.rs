//! `mnist` and `fashion-mnist`: 28×28 IDX images, their official splits.

use serde::{Deserialize, Serialize};

use super::{at_most_available, images_as_set, load_once, DataKind, DataSize, DataStore, Draw, PixelScaling};
use crate::datasets;

/// MNIST or Fashion-MNIST (IDX files from the fetched data cache), 28×28 in 10 classes: the
/// official 60,000 / 10,000 split; `n_train` / `n_test` subsample it (seeded); pixels scaled
/// per `scaling`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MnistSpec {
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default)]
    pub n_test: Option<usize>,
    #[serde(default)]
    pub scaling: PixelScaling,
}

/// Fashion-MNIST: the settings of [`MnistSpec`], its own files, and flips keep the class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct FashionMnistSpec(pub MnistSpec);

impl MnistSpec {
    fn check_counts(&self) -> Result<(), (&'static str, String)> {
        at_most_available("n_train", self.n_train, 60_000, "the MNIST-format training split")?;
        at_most_available("n_test", self.n_test, 10_000, "the MNIST-format test split")
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train.unwrap_or(60_000), test: self.n_test.unwrap_or(10_000), population: 0, features: 784, classes: 10, table: 70_000 }
    }

    /// The official split read by `read` (once per store, under `key`), subsampled and scaled.
    fn draw_from(&self, key: &str, read: fn(&std::path::Path, datasets::Split) -> Result<datasets::Images, datasets::DataError>, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_images(&load(key, read, store)?, (self.n_train, self.n_test), self.scaling, seed))
    }
}

fn load(key: &str, read: fn(&std::path::Path, datasets::Split) -> Result<datasets::Images, datasets::DataError>, store: &DataStore) -> Result<super::Loaded, String> {
    load_once(store, key, |dir| Ok((images_as_set(read(dir, datasets::Split::Train)?), Some(images_as_set(read(dir, datasets::Split::Test)?)))))
}

impl DataKind for MnistSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.check_counts()
    }

    fn n_classes(&self) -> Option<usize> {
        Some(10)
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((28, 28))
    }

    fn allows_flips(&self) -> Option<bool> {
        Some(false)
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        load("mnist", datasets::mnist, store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        self.draw_from("mnist", datasets::mnist, seed, store)
    }

    fn size(&self) -> DataSize {
        MnistSpec::size(self)
    }
}

impl DataKind for FashionMnistSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.0.check_counts()
    }

    fn n_classes(&self) -> Option<usize> {
        Some(10)
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((28, 28))
    }

    fn allows_flips(&self) -> Option<bool> {
        Some(true)
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        load("fashion-mnist", datasets::fashion_mnist, store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        self.0.draw_from("fashion-mnist", datasets::fashion_mnist, seed, store)
    }

    fn size(&self) -> DataSize {
        self.0.size()
    }
}
