//! `digits`: UCI optdigits 8×8 images, fetched or the committed small copy.

use serde::{Deserialize, Serialize};

use super::{at_most_available, images_as_set, load_once, DataKind, DataSize, DataStore, Draw, PixelScaling};
use crate::datasets;

/// UCI optdigits, 8×8 handwritten digits (pixels are 4×4 block counts 0..16, scaled per
/// `scaling`): the official 3,823 / 1,797 split from the fetched data cache, or with
/// `small = true` the committed 500 / 200 subset that needs no fetch. `n_train` / `n_test`
/// subsample the splits (seeded); the test split is used only for the final metrics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DigitsSpec {
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default)]
    pub n_test: Option<usize>,
    #[serde(default)]
    pub small: bool,
    #[serde(default)]
    pub scaling: PixelScaling,
}

impl DataKind for DigitsSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        let (train, test, what) = if self.small { (500, 200, "the small digits copy") } else { (3823, 1797, "optdigits") };
        at_most_available("n_train", self.n_train, train, what)?;
        at_most_available("n_test", self.n_test, test, what)
    }

    fn n_classes(&self) -> Option<usize> {
        Some(10)
    }

    fn image_shape(&self) -> Option<(usize, usize)> {
        Some((8, 8))
    }

    fn allows_flips(&self) -> Option<bool> {
        Some(false)
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        self.load(store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_images(&self.load(store)?, (self.n_train, self.n_test), self.scaling, seed))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train.unwrap_or(3823), test: self.n_test.unwrap_or(1797), population: 0, features: 64, classes: 10, table: 5620 }
    }
}

impl DigitsSpec {
    fn load(&self, store: &DataStore) -> Result<super::Loaded, String> {
        if self.small {
            let split = |s| images_as_set(datasets::optdigits_small(s));
            return load_once(store, "digits-small", |_| Ok((split(datasets::Split::Train), Some(split(datasets::Split::Test)))));
        }
        load_once(store, "digits", |dir| {
            let train = images_as_set(datasets::optdigits(dir, datasets::Split::Train)?);
            Ok((train, Some(images_as_set(datasets::optdigits(dir, datasets::Split::Test)?))))
        })
    }
}
