//! `file`: a CSV or Parquet table of the user's, split per seed.

use serde::{Deserialize, Serialize};

use super::{check_rows, check_test_fraction, load_once, table_as_set, DataKind, DataSize, DataStore, Draw, RowSplit};
use crate::datasets;

/// A CSV or Parquet file of the user's (path relative to the working directory): `label` names
/// the class column, text columns are one-hot encoded, `missing` is the stated policy for empty
/// cells (`error`, `drop_rows` or `impute_mean`); a seeded stratified split holds out
/// `test_fraction`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    pub label: String,
    #[serde(default)]
    pub missing: crate::datasets::MissingPolicy,
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default = "super::default_test_fraction")]
    pub test_fraction: f64,
}

impl DataKind for FileSpec {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.n_train.map_or(Ok(()), |n| check_rows("n_train", n))?;
        check_test_fraction(self.test_fraction)?;
        if self.path.is_empty() {
            return Err(("path", "must name a CSV or Parquet file".into()));
        }
        Ok(())
    }

    /// Unknown until the file is read.
    fn n_classes(&self) -> Option<usize> {
        None
    }

    fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        self.load(store).map(|_| ())
    }

    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        Ok(super::draw_table(&self.load(store)?, Some(self.test_fraction), (self.n_train, None), seed))
    }

    fn row_split(&self, seed: u64, store: &DataStore) -> Result<Option<RowSplit>, String> {
        Ok(Some(super::table_split(&self.load(store)?.0, Some(self.test_fraction), (self.n_train, None), seed)))
    }

    fn draw_rows(&self, split: &RowSplit, store: &DataStore) -> Result<Draw, String> {
        super::draw_named_rows(&self.load(store)?.0, split)
    }

    // Unknown until read; counted as 100,000 × 100 (RELIABILITY.md says so).
    fn size(&self) -> DataSize {
        DataSize { train: self.n_train.unwrap_or(70_000), test: 30_000, population: 0, features: 100, classes: 10, table: 100_000 }
    }
}

impl FileSpec {
    fn load(&self, store: &DataStore) -> Result<super::Loaded, String> {
        let key = format!("file:{}:{}:{:?}", self.path, self.label, self.missing);
        load_once(store, &key, |_| Ok((table_as_set(datasets::load_table(std::path::Path::new(&self.path), &self.label, &self.missing)?.0), None)))
    }
}
