//! `adult`: UCI Adult census income, its official train and test files.

use serde::{Deserialize, Serialize};

use super::{check_rows, load_once, table_as_set, DataKind, DataSize, DataStore, Draw};
use crate::datasets;

/// UCI Adult census income (fetched by `scripts/fetch-data.sh`): the official train/test files;
/// `n_train` / `n_test` subsample them (seeded) when given. `?` is its own category.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdultSpec {
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default)]
    pub n_test: Option<usize>,
}

impl DataKind for AdultSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.n_train.map_or(Ok(()), |n| check_rows("n_train", n))?;
        self.n_test.map_or(Ok(()), |n| check_rows("n_test", n))
    }

    fn n_classes(&self) -> Option<usize> {
        Some(2)
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        self.load(store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_table(&self.load(store)?, None, (self.n_train, self.n_test), seed))
    }

    // 48,842 rows, about 105 columns after one-hot encoding.
    fn size(&self) -> DataSize {
        DataSize { train: self.n_train.unwrap_or(32_561), test: self.n_test.unwrap_or(16_281), population: 0, features: 105, classes: 2, table: 48_842 }
    }
}

impl AdultSpec {
    fn load(&self, store: &DataStore) -> Result<super::Loaded, String> {
        load_once(store, "adult", |dir| {
            let train = table_as_set(datasets::adult(dir, datasets::Split::Train)?);
            Ok((train, Some(table_as_set(datasets::adult(dir, datasets::Split::Test)?))))
        })
    }
}
