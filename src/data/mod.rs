//! Data sets and the synthetic problems whose Bayes probabilities p0(y|x) are known exactly.
//!
//! A [`Problem`] draws samples `(x, y)` with `y ~ p0(·|x)` and evaluates `p0` anywhere, so the
//! theory's nuisance is known: teacher error ‖p̂ − p0‖² and student excess risk are computed on
//! a fresh Monte-Carlo sample from the same problem, never on the test set.
//!
//! [`DataSpec`] is the `[data]` section of a study: synthetic tabular problems, real tables
//! (Adult, MAGIC, a user's file) and image data (optdigits `digits`, `mnist`, `fashion-mnist`,
//! generated `mnist1d`, `synthetic-images` with exact p0). Image rows are single-channel images
//! flattened row-major, with [`Dataset::image_shape`] giving (height, width); how their pixels
//! are scaled is stated on each spec ([`PixelScaling`] for the pixel data sets).
//!
//! Each kind is one file implementing [`DataKind`] (its `mod` line) and one line of the
//! `data_kinds!` list below.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::datasets;
use crate::seed;

/// A real data set as read: the training pool and the official test set, if any.
type Loaded = Arc<(Dataset, Option<Dataset>)>;

/// Where real data sets are read from (the data cache `scripts/fetch-data.sh` fills), and the
/// ones read so far: each is loaded once per store and shared by the units that draw from it.
pub struct DataStore {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl DataStore {
    pub fn new(dir: impl Into<PathBuf>) -> DataStore {
        DataStore { dir: dir.into(), loaded: Mutex::new(HashMap::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl std::fmt::Debug for DataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Rows of features and, for image data, their (height, width): the layout a CNN's input layer
/// and image augmentation read. It comes with the data, never from the study.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    pub x: ArrayView2<'a, f64>,
    pub image_shape: Option<(usize, usize)>,
}

impl<'a> Rows<'a> {
    pub fn new(x: ArrayView2<'a, f64>, image_shape: Option<(usize, usize)>) -> Rows<'a> {
        Rows { x, image_shape }
    }

    /// Rows without an image layout.
    pub fn tabular(x: ArrayView2<'a, f64>) -> Rows<'a> {
        Rows { x, image_shape: None }
    }

    /// Other rows `x` with this layout (e.g. a selection of these rows).
    pub fn with<'b>(&self, x: ArrayView2<'b, f64>) -> Rows<'b> {
        Rows { x, image_shape: self.image_shape }
    }
}

/// Rows of features with class labels; `p0` holds the exact Bayes probabilities when known.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub x: Array2<f64>,
    pub y: Vec<usize>,
    pub n_classes: usize,
    pub p0: Option<Array2<f64>>,
    /// `(height, width)` of each row as a single-channel image flattened row-major (`x` has
    /// height·width columns; MNIST-1D signals are `(1, length)`); `None` for tabular data.
    pub image_shape: Option<(usize, usize)>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The features with their image layout, as models take them.
    pub fn rows(&self) -> Rows<'_> {
        Rows::new(self.x.view(), self.image_shape)
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select(Axis(0), idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            n_classes: self.n_classes,
            p0: self.p0.as_ref().map(|p| p.select(Axis(0), idx)),
            image_shape: self.image_shape,
        }
    }
}

/// Largest number of rows a study may ask for in any one sample.
pub const MAX_ROWS: usize = 5_000_000;

fn default_n_test() -> usize {
    2000
}
fn default_n_population() -> usize {
    20_000
}
fn default_dim() -> usize {
    5
}
fn default_radius() -> f64 {
    0.5
}
fn default_n_classes() -> usize {
    3
}
fn default_signal() -> f64 {
    2.0
}

fn default_test_fraction() -> f64 {
    0.3
}

/// How the pixels of a real image data set are scaled before any model sees them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PixelScaling {
    /// Intensities in [0, 1] as read (optdigits counts ÷16, MNIST bytes ÷255); background is 0.
    #[default]
    Unit,
    /// One scalar mean and sd over every pixel of the training split (after subsampling), applied
    /// to train and test alike: (x − mean)/sd. Not per pixel, so the image stays an image.
    Standardize,
}


pub mod adult;
pub mod digits;
pub mod file;
pub mod gaussian_mixture;
pub mod magic;
pub mod mnist;
pub mod mnist1d;
pub mod multiclass_synthetic;
pub mod synthetic_images;

/// One data kind a study's `[data] kind` names: its checks, what is known of it before any
/// data is read, how it draws one replicate, and its size for the memory estimate.
pub trait DataKind {
    /// Checks ranges: on failure, the key and a message stating the allowed range.
    fn check(&self) -> Result<(), (&'static str, String)>;

    /// The number of classes when known without reading data.
    fn n_classes(&self) -> Option<usize>;

    /// `(height, width)` of the images it draws, known without reading data; `None` for
    /// tabular kinds. Equals [`Dataset::image_shape`] of every split it draws.
    fn image_shape(&self) -> Option<(usize, usize)> {
        None
    }

    /// Whether horizontal flips keep the class of an image (`None` for tabular data).
    fn allows_flips(&self) -> Option<bool> {
        None
    }

    /// The synthetic problem with known p0, if it is one.
    fn problem(&self) -> Option<Box<dyn Problem>> {
        None
    }

    /// Whether every replicate can draw fresh rows from the same distribution (so the
    /// fidelity protocol's `extra = "fresh"` rows exist).
    fn fresh_rows(&self) -> bool {
        false
    }

    /// Checks that its files can be read (loading them into the store).
    fn ensure_available(&self, _store: &DataStore) -> Result<(), String> {
        Ok(())
    }

    /// Draws one replicate's data from `seed`.
    fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String>;

    /// Which rows of its table the draw from `seed` takes, for kinds whose rows have ids (a
    /// user's `file`); `None` for the others.
    fn row_split(&self, _seed: u64, _store: &DataStore) -> Result<Option<RowSplit>, String> {
        Ok(None)
    }

    /// The replicate whose rows `split` names (features standardised as in [`Self::draw`]),
    /// for kinds whose rows have ids.
    fn draw_rows(&self, _split: &RowSplit, _store: &DataStore) -> Result<Draw, String> {
        Err("only a `file` data set's rows can be named".into())
    }

    /// Rows and features as far as the study file tells, for the memory estimate.
    fn size(&self) -> DataSize;
}

/// One replicate's rows and features as a study file states them (defaults where it does
/// not), and the rows of the whole table a real data set loads once per process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataSize {
    pub train: usize,
    pub test: usize,
    pub population: usize,
    pub features: usize,
    pub classes: usize,
    pub table: usize,
}

/// The `[data]` section's kinds: `Variant(Spec) = "kind"`, one line each. Generates
/// [`DataSpec`] (serialised with its `kind` tag), its list of kind names and the dispatch to
/// each spec's [`DataKind`].
macro_rules! data_kinds {
    ($($variant:ident($spec:ty) = $name:literal,)*) => {
        /// The data section of a study: one kind's settings.
        #[derive(Debug, Clone, Serialize, PartialEq)]
        #[serde(tag = "kind")]
        pub enum DataSpec {
            $(#[serde(rename = $name)] $variant($spec),)*
        }

        impl DataSpec {
            pub const KINDS: &'static [&'static str] = &[$($name),*];

            /// Deserialises the fields of data kind `kind`; `None` if the kind is unknown.
            pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<Result<DataSpec, D::Error>> {
                Some(match kind {
                    $($name => <$spec>::deserialize(de).map(DataSpec::$variant),)*
                    _ => return None,
                })
            }

            /// The kind's own behaviour.
            pub fn kind(&self) -> &dyn DataKind {
                match self {
                    $(DataSpec::$variant(s) => s,)*
                }
            }
        }
    };
}

data_kinds! {
    GaussianMixture(gaussian_mixture::GaussianMixtureSpec) = "gaussian-mixture",
    MulticlassSynthetic(multiclass_synthetic::MulticlassSyntheticSpec) = "multiclass-synthetic",
    Adult(adult::AdultSpec) = "adult",
    Magic(magic::MagicSpec) = "magic",
    File(file::FileSpec) = "file",
    Digits(digits::DigitsSpec) = "digits",
    Mnist(mnist::MnistSpec) = "mnist",
    FashionMnist(mnist::FashionMnistSpec) = "fashion-mnist",
    Mnist1d(mnist1d::Mnist1dSpec) = "mnist1d",
    SyntheticImages(synthetic_images::SyntheticImagesSpec) = "synthetic-images",
}

/// One replicate's data: train and test splits, and a fresh population sample where p0 is known.
pub struct Draw {
    pub train: Dataset,
    pub test: Dataset,
    pub population: Option<Dataset>,
}

/// The rows of a loaded table one replicate trains and tests on, by position in the table
/// (in the order the draw takes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSplit {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

impl DataSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        self.kind().check()
    }

    pub fn image_shape(&self) -> Option<(usize, usize)> {
        self.kind().image_shape()
    }

    /// Whether horizontal flips keep the class of an image: false for digits and digit-like
    /// data (a mirrored 2, 3 or 7 is no longer that digit; MNIST-1D's signals are not
    /// symmetric), true for Fashion-MNIST; `None` for tabular data.
    /// `augment::AugmentSpec::check_for_data` refuses flips where this is false.
    pub fn allows_flips(&self) -> Option<bool> {
        self.kind().allows_flips()
    }

    pub fn n_classes(&self) -> Option<usize> {
        self.kind().n_classes()
    }

    pub fn problem(&self) -> Option<Box<dyn Problem>> {
        self.kind().problem()
    }

    pub fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        self.kind().ensure_available(store)
    }

    /// Draws one replicate's data from `seed`. Real data: a seeded stratified test split where
    /// there is no official one, seeded subsampling to `n_train`/`n_test`, and features
    /// standardised with the training split's statistics only.
    pub fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        self.kind().draw(seed, store)
    }

    /// See [`DataKind::row_split`].
    pub fn row_split(&self, seed: u64, store: &DataStore) -> Result<Option<RowSplit>, String> {
        self.kind().row_split(seed, store)
    }

    /// See [`DataKind::draw_rows`].
    pub fn draw_rows(&self, split: &RowSplit, store: &DataStore) -> Result<Draw, String> {
        self.kind().draw_rows(split, store)
    }
}

fn check_rows(key: &'static str, n: usize) -> Result<(), (&'static str, String)> {
    match (10..=MAX_ROWS).contains(&n) {
        true => Ok(()),
        false => Err((key, format!("must be between 10 and {MAX_ROWS} rows, got {n}"))),
    }
}

fn check_dim(dim: usize) -> Result<(), (&'static str, String)> {
    match (1..=10_000).contains(&dim) {
        true => Ok(()),
        false => Err(("dim", format!("must be between 1 and 10000, got {dim}"))),
    }
}

fn non_negative(key: &'static str, v: f64) -> Result<(), (&'static str, String)> {
    match v.is_finite() && v >= 0.0 {
        true => Ok(()),
        false => Err((key, format!("must be finite and >= 0, got {v}"))),
    }
}

fn check_test_fraction(v: f64) -> Result<(), (&'static str, String)> {
    match v > 0.0 && v < 1.0 {
        true => Ok(()),
        false => Err(("test_fraction", format!("must be in (0, 1), got {v}"))),
    }
}

fn at_most_available(key: &'static str, n: Option<usize>, available: usize, what: &str) -> Result<(), (&'static str, String)> {
    match n {
        Some(n) if !(10..=available).contains(&n) => Err((key, format!("must be between 10 and {available} (the size of {what}), got {n}"))),
        _ => Ok(()),
    }
}

/// A real data set from `store`, loaded by `load` (given the cache directory) the first time
/// `key` is asked for.
fn load_once(store: &DataStore, key: &str, load: impl FnOnce(&Path) -> datasets::Result<(Dataset, Option<Dataset>)>) -> Result<Loaded, String> {
    if let Some(hit) = store.loaded.lock().expect("no panics while locked").get(key) {
        return Ok(hit.clone());
    }
    let pair = Arc::new(load(&store.dir).map_err(|e| e.to_string())?);
    store.loaded.lock().expect("no panics while locked").insert(key.to_string(), pair.clone());
    Ok(pair)
}

fn table_as_set(t: datasets::Table) -> Dataset {
    let k = t.class_names.len();
    Dataset { x: t.x, y: t.y, n_classes: k, p0: None, image_shape: None }
}

/// A replicate of a synthetic problem: fresh train, test and population samples.
fn draw_problem(problem: &dyn Problem, (n_train, n_test, n_population): (usize, usize, usize), seed: u64) -> Draw {
    Draw {
        train: problem.sample(n_train, seed::derive(seed, &["train"])),
        test: problem.sample(n_test, seed::derive(seed, &["test"])),
        population: Some(problem.sample(n_population, seed::derive(seed, &["population"]))),
    }
}

/// A replicate of an image data set with an official split: both splits subsampled (seeded),
/// pixels scaled with the training split's one scalar mean and sd when asked.
fn draw_images(pair: &Loaded, (n_train, n_test): (Option<usize>, Option<usize>), scaling: PixelScaling, seed: u64) -> Draw {
    let test = pair.1.as_ref().expect("image data sets have an official test split");
    let mut train = subsample_set(&pair.0, n_train, seed::derive(seed, &["train-subsample"]));
    let mut test = subsample_set(test, n_test, seed::derive(seed, &["test-subsample"]));
    if scaling == PixelScaling::Standardize {
        let (mean, sd) = scalar_mean_sd(train.x.view());
        for x in [&mut train.x, &mut test.x] {
            x.mapv_inplace(|v| (v - mean) / sd);
        }
    }
    Draw { train, test, population: None }
}

/// A replicate of a table: its official test set, or a seeded stratified split holding out
/// `test_fraction` (given when it has none); seeded subsampling; features standardised with
/// the training split's statistics only.
fn draw_table(pair: &Loaded, test_fraction: Option<f64>, (n_train, n_test): (Option<usize>, Option<usize>), seed: u64) -> Draw {
    let (pool, official_test) = (&pair.0, &pair.1);
    let (mut train, mut test) = match official_test {
        Some(test) => (pool.clone(), test.clone()),
        None => {
            let split = table_split(pool, test_fraction, (n_train, n_test), seed);
            return standardized(pool.select(&split.train), pool.select(&split.test));
        }
    };
    if let Some(n) = n_train.filter(|&n| n < train.len()) {
        train = train.select(&subsample(train.len(), n, seed::derive(seed, &["train-subsample"])));
    }
    if let Some(n) = n_test.filter(|&n| n < test.len()) {
        test = test.select(&subsample(test.len(), n, seed::derive(seed, &["test-subsample"])));
    }
    standardized(train, test)
}

/// The rows of a table without an official test split that a draw takes: a seeded stratified
/// split holding out `test_fraction`, then seeded subsamples of `n_train` and `n_test` rows.
fn table_split(pool: &Dataset, test_fraction: Option<f64>, (n_train, n_test): (Option<usize>, Option<usize>), seed: u64) -> RowSplit {
    let fraction = test_fraction.expect("a table without an official test split states its test fraction");
    let (mut fit, mut held) = stratified_split(&pool.y, fraction, seed::derive(seed, &["test-split"]));
    if let Some(n) = n_train.filter(|&n| n < fit.len()) {
        fit = subsample(fit.len(), n, seed::derive(seed, &["train-subsample"])).into_iter().map(|i| fit[i]).collect();
    }
    if let Some(n) = n_test.filter(|&n| n < held.len()) {
        held = subsample(held.len(), n, seed::derive(seed, &["test-subsample"])).into_iter().map(|i| held[i]).collect();
    }
    RowSplit { train: fit, test: held }
}

/// The rows `split` names of a table without an official test split.
fn draw_named_rows(pool: &Dataset, split: &RowSplit) -> Result<Draw, String> {
    if let Some(&r) = split.train.iter().chain(&split.test).find(|&&r| r >= pool.len()) {
        return Err(format!("data row {} does not exist: the data set has {} rows", r + 1, pool.len()));
    }
    Ok(standardized(pool.select(&split.train), pool.select(&split.test)))
}

/// Train and test with the features standardised by the training rows' means and sds.
fn standardized(mut train: Dataset, mut test: Dataset) -> Draw {
    let scaler = Standardizer::fit(train.x.view());
    train.x = scaler.transform(train.x.view());
    test.x = scaler.transform(test.x.view());
    Draw { train, test, population: None }
}

fn images_as_set(img: datasets::Images) -> Dataset {
    Dataset { image_shape: Some((img.height, img.width)), x: img.x, y: img.y, n_classes: img.n_classes, p0: None }
}

/// `n` rows of `set` drawn without replacement (seeded, in random order), or all of it in its
/// own order when `n` is `None` or not smaller than the set.
fn subsample_set(set: &Dataset, n: Option<usize>, seed: u64) -> Dataset {
    match n.filter(|&n| n < set.len()) {
        Some(n) => set.select(&subsample(set.len(), n, seed)),
        None => set.clone(),
    }
}

/// One scalar mean and population sd over every entry of `x` (sd 1 if it is below 1e-12).
fn scalar_mean_sd(x: ArrayView2<f64>) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.sum() / n;
    let sd = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    (mean, if sd > 1e-12 { sd } else { 1.0 })
}

/// n distinct indices of 0..len in a seeded random order.
fn subsample(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    idx.shuffle(&mut seed::rng(seed));
    idx.truncate(n);
    idx
}

/// A seeded split holding out `fraction` of each class (at least one point of a class with two
/// or more).
pub fn stratified_split(y: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = seed::rng(seed);
    let k = y.iter().max().map_or(0, |m| m + 1);
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    for c in 0..k {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        idx.shuffle(&mut rng);
        let n_held = if idx.len() < 2 { 0 } else { ((fraction * idx.len() as f64).round() as usize).clamp(1, idx.len() - 1) };
        held.extend_from_slice(&idx[..n_held]);
        fit.extend_from_slice(&idx[n_held..]);
    }
    fit.sort_unstable();
    held.sort_unstable();
    (fit, held)
}

/// A data-generating process with known Bayes probabilities.
pub trait Problem: Send + Sync {
    fn n_classes(&self) -> usize;
    /// Exact p0(·|x) for each row of `x` (n × k).
    fn bayes_probabilities(&self, x: ArrayView2<f64>) -> Array2<f64>;
    /// Draws features only.
    fn sample_x(&self, n: usize, seed: u64) -> Array2<f64>;
    /// `(height, width)` when the features are a flattened image; `None` for tabular problems.
    fn image_shape(&self) -> Option<(usize, usize)> {
        None
    }

    /// Draws n points with labels y ~ p0(·|x); the returned set carries p0.
    fn sample(&self, n: usize, seed: u64) -> Dataset {
        let x = self.sample_x(n, seed::derive(seed, &["x"]));
        let p0 = self.bayes_probabilities(x.view());
        let mut rng = seed::rng(seed::derive(seed, &["y"]));
        let y = p0.rows().into_iter().map(|row| draw_class(row.as_slice().expect("row-major"), &mut rng)).collect();
        Dataset { x, y, n_classes: self.n_classes(), p0: Some(p0), image_shape: self.image_shape() }
    }
}

fn draw_class(p: &[f64], rng: &mut impl Rng) -> usize {
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (c, &pc) in p.iter().enumerate() {
        acc += pc;
        if u < acc {
            return c;
        }
    }
    p.len() - 1
}

fn standard_normal_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = seed::rng(seed);
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(&mut rng))
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Row-wise softmax with the max subtracted for stability.
pub fn softmax_rows(logits: &Array2<f64>) -> Array2<f64> {
    let mut out = logits.clone();
    for mut row in out.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}

/// Splits `0..n` into (fit, validation) index sets: a seeded shuffle, then the first
/// `round(fraction·n)` indices (at least one, at most n − 1) go to validation.
pub fn validation_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if fraction <= 0.0 {
        return ((0..n).collect(), Vec::new());
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut seed::rng(seed));
    let n_val = ((fraction * n as f64).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let val = idx[..n_val].to_vec();
    let fit = idx[n_val..].to_vec();
    (fit, val)
}

/// Per-feature mean and standard deviation of the training rows, used to standardise every
/// split with the training split's statistics only.
pub struct Standardizer {
    mean: Array1<f64>,
    sd: Array1<f64>,
}

impl Standardizer {
    pub fn fit(x: ArrayView2<f64>) -> Self {
        let mean = x.mean_axis(Axis(0)).expect("non-empty");
        let sd = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Standardizer { mean, sd }
    }

    pub fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &self.mean) / &self.sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' data cache.
    fn store() -> DataStore {
        DataStore::new(datasets::test_support::cache_dir())
    }

    fn spec(text: &str) -> DataSpec {
        let mut table: toml::Table = toml::from_str(text).unwrap();
        let kind = table.remove("kind").unwrap();
        let spec = DataSpec::from_kind(kind.as_str().unwrap(), toml::Value::Table(table)).unwrap().unwrap();
        spec.check().unwrap();
        spec
    }

    #[test]
    fn digits_small_draws_subsampled_unit_images_without_a_fetch() {
        let s = spec("kind = \"digits\"\nsmall = true\nn_train = 100");
        assert_eq!((s.n_classes(), s.allows_flips()), (Some(10), Some(false)));
        s.ensure_available(&store()).unwrap();
        let d = s.draw(3, &store()).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.train.x.ncols()), (100, 200, 64));
        assert_eq!((d.train.image_shape, d.test.image_shape), (Some((8, 8)), Some((8, 8))));
        assert_eq!(s.image_shape(), d.train.image_shape);
        assert!(d.population.is_none() && d.train.p0.is_none());
        assert!(d.train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // The test split is the whole official (small) test set, untouched.
        assert_eq!(d.test.x, datasets::optdigits_small(datasets::Split::Test).x);
        assert_eq!(d.train.x, s.draw(3, &store()).unwrap().train.x);
        assert_ne!(d.train.y, s.draw(4, &store()).unwrap().train.y);
        assert_eq!(d.train.select(&[0, 1]).image_shape, Some((8, 8)));
        let st = spec("kind = \"digits\"\nsmall = true\nscaling = \"standardize\"").draw(1, &store()).unwrap();
        assert_eq!(st.train.len(), 500);
        let (m, sd) = scalar_mean_sd(st.train.x.view());
        assert!(m.abs() < 1e-12 && (sd - 1.0).abs() < 1e-12, "{m} {sd}");
    }

    #[test]
    fn image_kind_ranges_are_checked_with_their_key() {
        let err = |text: &str| {
            let mut table: toml::Table = toml::from_str(text).unwrap();
            let kind = table.remove("kind").unwrap();
            DataSpec::from_kind(kind.as_str().unwrap(), toml::Value::Table(table)).unwrap().unwrap().check().unwrap_err()
        };
        let (key, msg) = err("kind = \"digits\"\nsmall = true\nn_train = 600");
        assert_eq!(key, "n_train");
        assert!(msg.contains("between 10 and 500"), "{msg}");
        assert_eq!(err("kind = \"mnist\"\nn_test = 20000").0, "n_test");
        assert_eq!(err("kind = \"mnist1d\"\nofficial = true\nn_train = 4001").0, "n_train");
        assert_eq!(err("kind = \"mnist1d\"\nofficial = true\nn_population = 100").0, "n_population");
        assert_eq!(err("kind = \"synthetic-images\"\nn_train = 100\nside = 6").0, "side");
        assert_eq!(err("kind = \"synthetic-images\"\nn_train = 100\nmax_shift = 6").0, "max_shift");
        assert_eq!(err("kind = \"synthetic-images\"\nn_train = 100\nsigma = 0").0, "sigma");
        assert_eq!(err("kind = \"synthetic-images\"\nn_train = 100\nn_classes = 11").0, "n_classes");
        let unknown = DataSpec::from_kind("mnist", toml::Value::Table(toml::from_str("n_trian = 5").unwrap())).unwrap().unwrap_err();
        assert!(unknown.to_string().contains("unknown field `n_trian`"), "{unknown}");
    }

    #[test]
    fn mnist1d_draws_are_fresh_reproducible_and_standardised_by_train() {
        let s = spec("kind = \"mnist1d\"\nn_train = 205\nn_test = 50\nn_population = 300");
        let d = s.draw(7, &store()).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.train.x.ncols()), (205, 50, 40));
        assert_eq!((d.train.image_shape, s.image_shape()), (Some((1, 40)), Some((1, 40))));
        let pop = d.population.as_ref().expect("a population sample was asked for");
        assert_eq!((pop.len(), pop.p0.is_none(), pop.image_shape), (300, true, Some((1, 40))));
        let (m, sd) = scalar_mean_sd(d.train.x.view());
        assert!(m.abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
        let again = s.draw(7, &store()).unwrap();
        assert_eq!((&again.train.x, &again.train.y, &again.test.x), (&d.train.x, &d.train.y, &d.test.x));
        let other = s.draw(8, &store()).unwrap();
        assert_ne!(other.train.x, d.train.x);
        // Train, test and population are different draws.
        assert_ne!(d.train.x.row(0), d.test.x.row(0));
        assert!(d.train.y.iter().all(|&c| c < 10));
        let official = spec("kind = \"mnist1d\"\nofficial = true").draw(1, &store()).unwrap();
        assert_eq!((official.train.len(), official.test.len()), (4000, 1000));
        assert_eq!(official.test.y[..3], [2, 6, 3]);
    }

    #[test]
    fn synthetic_images_carry_exact_p0_and_their_shape() {
        let s = spec("kind = \"synthetic-images\"\nn_train = 50\nn_test = 20\nn_population = 30\nside = 10\nn_classes = 4");
        assert_eq!((s.n_classes(), s.allows_flips()), (Some(4), Some(false)));
        let d = s.draw(2, &store()).unwrap();
        for set in [&d.train, &d.test, d.population.as_ref().unwrap()] {
            assert_eq!((set.x.ncols(), set.image_shape, set.n_classes), (100, Some((10, 10)), 4));
            let p0 = set.p0.as_ref().unwrap();
            assert!(p0.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-12));
        }
        assert_eq!((d.train.len(), d.test.len(), d.population.as_ref().unwrap().len()), (50, 20, 30));
        // The problem's p0 is the generator's exact p0.
        let problem = s.problem().unwrap();
        assert_eq!(problem.bayes_probabilities(d.train.x.view()), *d.train.p0.as_ref().unwrap());
        assert_eq!((problem.image_shape(), s.image_shape()), (Some((10, 10)), Some((10, 10))));
        // Tabular kinds keep no image shape.
        let g = spec("kind = \"gaussian-mixture\"\nn_train = 20");
        assert_eq!(g.draw(1, &store()).unwrap().train.image_shape, None);
        assert_eq!((g.allows_flips(), g.image_shape()), (None, None));
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_image_kinds_load_with_official_counts() {
        // `fetched_cache` panics with the fix when the cache is missing; tests run in the crate
        // root, where the default cache directory is.
        crate::datasets::test_support::fetched_cache();
        let d = spec("kind = \"digits\"").draw(1, &store()).unwrap();
        assert_eq!((d.train.len(), d.test.len(), d.train.image_shape), (3823, 1797, Some((8, 8))));
        let d = spec("kind = \"digits\"\nn_train = 1000").draw(1, &store()).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (1000, 1797));
        for kind in ["mnist", "fashion-mnist"] {
            let d = spec(&format!("kind = \"{kind}\"\nn_train = 2000\nn_test = 500")).draw(1, &store()).unwrap();
            assert_eq!((d.train.len(), d.test.len(), d.train.x.ncols(), d.train.image_shape), (2000, 500, 784, Some((28, 28))), "{kind}");
            assert_eq!(spec(&format!("kind = \"{kind}\"")).image_shape(), Some((28, 28)));
            assert!(d.train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
            let full = spec(&format!("kind = \"{kind}\"")).draw(1, &store()).unwrap();
            assert_eq!((full.train.len(), full.test.len()), (60_000, 10_000), "{kind}");
        }
        assert_eq!(spec("kind = \"fashion-mnist\"").allows_flips(), Some(true));
    }

    #[test]
    fn unfetched_image_data_names_the_fetch_script() {
        let dir = tempfile::tempdir().unwrap();
        let err = datasets::mnist(dir.path(), datasets::Split::Train).unwrap_err().to_string();
        assert!(err.contains("not found") && err.contains("scripts/fetch-data.sh"), "{err}");
    }

    #[test]
    fn validation_split_is_a_partition() {
        let (fit, val) = validation_split(50, 0.2, 1);
        assert_eq!(val.len(), 10);
        let mut all: Vec<_> = fit.iter().chain(val.iter()).copied().collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}
