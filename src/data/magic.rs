//! `magic`: UCI MAGIC gamma telescope, split per seed (it has no official split).

use serde::{Deserialize, Serialize};

use super::{check_rows, check_test_fraction, load_once, table_as_set, DataKind, DataSize, DataStore, Draw};
use crate::datasets;

/// UCI MAGIC gamma telescope (fetched by `scripts/fetch-data.sh`): no official split, so a seeded
/// stratified split holds out `test_fraction` (0.3, as Dao et al.); `n_train` subsamples the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MagicSpec {
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default = "super::default_test_fraction")]
    pub test_fraction: f64,
}

impl DataKind for MagicSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.n_train.map_or(Ok(()), |n| check_rows("n_train", n))?;
        check_test_fraction(self.test_fraction)
    }

    fn n_classes(&self) -> Option<usize> {
        Some(2)
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        self.load(store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_table(&self.load(store)?, Some(self.test_fraction), (self.n_train, None), seed))
    }

    fn size(&self) -> DataSize {
        DataSize { train: self.n_train.unwrap_or(13_314), test: (19_020.0 * self.test_fraction) as usize, population: 0, features: 10, classes: 2, table: 19_020 }
    }
}

impl MagicSpec {
    fn load(&self, store: &DataStore) -> Result<super::Loaded, String> {
        load_once(store, "magic", |dir| Ok((table_as_set(datasets::magic(dir)?), None)))
    }
}
