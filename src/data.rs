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

/// Two Gaussians N(±r·1, I) with equal priors: p0(class 1 | x) = σ(−2r Σ_j x_j).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianMixtureSpec {
    /// Training points (teacher and student share them; the student's validation split is
    /// carved from them).
    pub n_train: usize,
    /// Held-out test points for the reported test metrics.
    #[serde(default = "default_n_test")]
    pub n_test: usize,
    /// Fresh points for population quantities (excess risk, ‖p̂ − p0‖²).
    #[serde(default = "default_n_population")]
    pub n_population: usize,
    #[serde(default = "default_dim")]
    pub dim: usize,
    #[serde(default = "default_radius")]
    pub radius: f64,
}

/// x ~ N(0, I_d); logits_c(x) = signal · (w_c·x + nonlinearity · Σ_m u_cm sin(2 v_m·x)).
/// `signal` sets the difficulty (larger = more separable), `nonlinearity` how far p0 is from a
/// linear-softmax model; w, u, v are drawn once from `problem_seed`, so every replicate samples
/// the same population.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MulticlassSyntheticSpec {
    pub n_train: usize,
    #[serde(default = "default_n_test")]
    pub n_test: usize,
    #[serde(default = "default_n_population")]
    pub n_population: usize,
    #[serde(default = "default_dim")]
    pub dim: usize,
    #[serde(default = "default_n_classes")]
    pub n_classes: usize,
    #[serde(default = "default_signal")]
    pub signal: f64,
    #[serde(default)]
    pub nonlinearity: f64,
    #[serde(default)]
    pub problem_seed: u64,
}

fn default_test_fraction() -> f64 {
    0.3
}

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

/// UCI MAGIC gamma telescope (fetched by `scripts/fetch-data.sh`): no official split, so a seeded
/// stratified split holds out `test_fraction` (0.3, as Dao et al.); `n_train` subsamples the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MagicSpec {
    #[serde(default)]
    pub n_train: Option<usize>,
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
}

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
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
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
    #[serde(default = "default_n_test")]
    pub n_test: usize,
    #[serde(default = "default_n_population")]
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

/// The data section of a study. Adding a data kind: a spec struct, a variant here, a line in
/// [`DataSpec::KINDS`] and [`DataSpec::from_kind`], and its arm of [`DataSpec::draw`].
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSpec {
    GaussianMixture(GaussianMixtureSpec),
    MulticlassSynthetic(MulticlassSyntheticSpec),
    Adult(AdultSpec),
    Magic(MagicSpec),
    File(FileSpec),
    Digits(DigitsSpec),
    Mnist(MnistSpec),
    FashionMnist(MnistSpec),
    Mnist1d(Mnist1dSpec),
    SyntheticImages(SyntheticImagesSpec),
}

/// One replicate's data: train and test splits, and a fresh population sample where p0 is known.
pub struct Draw {
    pub train: Dataset,
    pub test: Dataset,
    pub population: Option<Dataset>,
}


impl DataSpec {
    pub const KINDS: &'static [&'static str] = &[
        "gaussian-mixture",
        "multiclass-synthetic",
        "adult",
        "magic",
        "file",
        "digits",
        "mnist",
        "fashion-mnist",
        "mnist1d",
        "synthetic-images",
    ];

    /// Deserialises the fields of data kind `kind`; `None` if the kind is unknown.
    pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<Result<DataSpec, D::Error>> {
        Some(match kind {
            "gaussian-mixture" => GaussianMixtureSpec::deserialize(de).map(DataSpec::GaussianMixture),
            "multiclass-synthetic" => MulticlassSyntheticSpec::deserialize(de).map(DataSpec::MulticlassSynthetic),
            "adult" => AdultSpec::deserialize(de).map(DataSpec::Adult),
            "magic" => MagicSpec::deserialize(de).map(DataSpec::Magic),
            "file" => FileSpec::deserialize(de).map(DataSpec::File),
            "digits" => DigitsSpec::deserialize(de).map(DataSpec::Digits),
            "mnist" => MnistSpec::deserialize(de).map(DataSpec::Mnist),
            "fashion-mnist" => MnistSpec::deserialize(de).map(DataSpec::FashionMnist),
            "mnist1d" => Mnist1dSpec::deserialize(de).map(DataSpec::Mnist1d),
            "synthetic-images" => SyntheticImagesSpec::deserialize(de).map(DataSpec::SyntheticImages),
            _ => return None,
        })
    }

    /// Checks ranges: on failure, the key and a message stating the allowed range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let rows = |key: &'static str, n: usize| {
            if !(10..=MAX_ROWS).contains(&n) {
                Err((key, format!("must be between 10 and {MAX_ROWS} rows, got {n}")))
            } else {
                Ok(())
            }
        };
        let check_dim = |dim: usize| {
            if dim == 0 || dim > 10_000 {
                Err(("dim", format!("must be between 1 and 10000, got {dim}")))
            } else {
                Ok(())
            }
        };
        let non_negative = |key: &'static str, v: f64| {
            if !v.is_finite() || v < 0.0 {
                Err((key, format!("must be finite and >= 0, got {v}")))
            } else {
                Ok(())
            }
        };
        let fraction = |v: f64| {
            if v > 0.0 && v < 1.0 {
                Ok(())
            } else {
                Err(("test_fraction", format!("must be in (0, 1), got {v}")))
            }
        };
        let at_most_available = |key: &'static str, n: Option<usize>, available: usize, what: &str| match n {
            Some(n) if !(10..=available).contains(&n) => {
                Err((key, format!("must be between 10 and {available} (the size of {what}), got {n}")))
            }
            _ => Ok(()),
        };
        match self {
            DataSpec::GaussianMixture(s) => {
                rows("n_train", s.n_train)?;
                rows("n_test", s.n_test)?;
                rows("n_population", s.n_population)?;
                check_dim(s.dim)?;
                non_negative("radius", s.radius)?;
            }
            DataSpec::MulticlassSynthetic(s) => {
                rows("n_train", s.n_train)?;
                rows("n_test", s.n_test)?;
                rows("n_population", s.n_population)?;
                check_dim(s.dim)?;
                if s.n_classes < 2 || s.n_classes > 1000 {
                    return Err(("n_classes", format!("must be between 2 and 1000, got {}", s.n_classes)));
                }
                non_negative("signal", s.signal)?;
                non_negative("nonlinearity", s.nonlinearity)?;
            }
            DataSpec::Adult(s) => {
                s.n_train.map_or(Ok(()), |n| rows("n_train", n))?;
                s.n_test.map_or(Ok(()), |n| rows("n_test", n))?;
            }
            DataSpec::Magic(s) => {
                s.n_train.map_or(Ok(()), |n| rows("n_train", n))?;
                fraction(s.test_fraction)?;
            }
            DataSpec::File(s) => {
                s.n_train.map_or(Ok(()), |n| rows("n_train", n))?;
                fraction(s.test_fraction)?;
                if s.path.is_empty() {
                    return Err(("path", "must name a CSV or Parquet file".into()));
                }
            }
            DataSpec::Digits(s) => {
                let (train, test, what) = if s.small { (500, 200, "the small digits copy") } else { (3823, 1797, "optdigits") };
                at_most_available("n_train", s.n_train, train, what)?;
                at_most_available("n_test", s.n_test, test, what)?;
            }
            DataSpec::Mnist(s) | DataSpec::FashionMnist(s) => {
                at_most_available("n_train", s.n_train, 60_000, "the MNIST-format training split")?;
                at_most_available("n_test", s.n_test, 10_000, "the MNIST-format test split")?;
            }
            DataSpec::Mnist1d(s) => {
                if s.official {
                    at_most_available("n_train", Some(s.n_train), 4000, "the official MNIST-1D set")?;
                    at_most_available("n_test", Some(s.n_test), 1000, "the official MNIST-1D set")?;
                    if s.n_population.is_some() {
                        return Err(("n_population", "the official MNIST-1D set has no population sample; drop `official` for fresh draws".into()));
                    }
                } else {
                    rows("n_train", s.n_train)?;
                    rows("n_test", s.n_test)?;
                    s.n_population.map_or(Ok(()), |n| rows("n_population", n))?;
                }
            }
            DataSpec::SyntheticImages(s) => {
                rows("n_train", s.n_train)?;
                rows("n_test", s.n_test)?;
                rows("n_population", s.n_population)?;
                if !(8..=64).contains(&s.side) {
                    return Err(("side", format!("must be between 8 and 64 pixels, got {}", s.side)));
                }
                if !(2..=10).contains(&s.n_classes) {
                    return Err(("n_classes", format!("must be between 2 and 10 (one digit glyph per class), got {}", s.n_classes)));
                }
                if 2 * s.max_shift >= s.side {
                    return Err(("max_shift", format!("must be below side/2 = {}, got {}", s.side.div_ceil(2), s.max_shift)));
                }
                if !(s.sigma.is_finite() && s.sigma > 0.0) {
                    return Err(("sigma", format!("must be finite and > 0, got {}", s.sigma)));
                }
            }
        }
        Ok(())
    }

    /// `(height, width)` of the images this spec draws, known without reading data; `None` for
    /// tabular kinds. Equals [`Dataset::image_shape`] of every split it draws.
    pub fn image_shape(&self) -> Option<(usize, usize)> {
        match self {
            DataSpec::Digits(_) => Some((8, 8)),
            DataSpec::Mnist(_) | DataSpec::FashionMnist(_) => Some((28, 28)),
            DataSpec::Mnist1d(_) => Some((1, datasets::Mnist1dConfig::default().final_seq_length)),
            DataSpec::SyntheticImages(s) => Some((s.side, s.side)),
            DataSpec::GaussianMixture(_) | DataSpec::MulticlassSynthetic(_) | DataSpec::Adult(_) | DataSpec::Magic(_) | DataSpec::File(_) => None,
        }
    }

    /// Whether horizontal flips keep the class of an image: false for digits and digit-like
    /// data (a mirrored 2, 3 or 7 is no longer that digit; MNIST-1D's signals are not symmetric),
    /// true for Fashion-MNIST; `None` for tabular data. `augment::AugmentSpec::check_for_data`
    /// refuses flips where this is false.
    pub fn allows_flips(&self) -> Option<bool> {
        match self {
            DataSpec::FashionMnist(_) => Some(true),
            DataSpec::Digits(_) | DataSpec::Mnist(_) | DataSpec::Mnist1d(_) | DataSpec::SyntheticImages(_) => Some(false),
            DataSpec::GaussianMixture(_) | DataSpec::MulticlassSynthetic(_) | DataSpec::Adult(_) | DataSpec::Magic(_) | DataSpec::File(_) => None,
        }
    }

    /// The number of classes when known without reading data.
    pub fn n_classes(&self) -> Option<usize> {
        match self {
            DataSpec::GaussianMixture(_) | DataSpec::Adult(_) | DataSpec::Magic(_) => Some(2),
            DataSpec::MulticlassSynthetic(s) => Some(s.n_classes),
            DataSpec::File(_) => None,
            DataSpec::Digits(_) | DataSpec::Mnist(_) | DataSpec::FashionMnist(_) | DataSpec::Mnist1d(_) => Some(10),
            DataSpec::SyntheticImages(s) => Some(s.n_classes),
        }
    }

    /// The synthetic problem with known p0, if this is one.
    pub fn problem(&self) -> Option<Box<dyn Problem>> {
        match self {
            DataSpec::GaussianMixture(s) => Some(Box::new(GaussianMixture { dim: s.dim, radius: s.radius })),
            DataSpec::MulticlassSynthetic(s) => {
                Some(Box::new(MulticlassSynthetic::new(s.dim, s.n_classes, s.signal, s.nonlinearity, s.problem_seed)))
            }
            DataSpec::SyntheticImages(s) => {
                let config = datasets::SyntheticImagesConfig { side: s.side, n_classes: s.n_classes, max_shift: s.max_shift, sigma: s.sigma };
                // `check` has validated every field `new` checks.
                Some(Box::new(SyntheticImageProblem(datasets::SyntheticImages::new(config).expect("a checked synthetic-images spec"))))
            }
            _ => None,
        }
    }

    /// Loads the real data this spec names from `store`, once per store: (train pool, official
    /// test set if any), before splitting and subsampling. `None` for synthetic kinds.
    fn real(&self, store: &DataStore) -> Option<Result<Loaded, String>> {
        let key = match self {
            DataSpec::Adult(_) => "adult".to_string(),
            DataSpec::Magic(_) => "magic".to_string(),
            DataSpec::File(s) => format!("file:{}:{}:{:?}", s.path, s.label, s.missing),
            DataSpec::Digits(s) if s.small => "digits-small".to_string(),
            DataSpec::Digits(_) => "digits".to_string(),
            DataSpec::Mnist(_) => "mnist".to_string(),
            DataSpec::FashionMnist(_) => "fashion-mnist".to_string(),
            _ => return None,
        };
        if let Some(hit) = store.loaded.lock().expect("no panics while locked").get(&key) {
            return Some(Ok(hit.clone()));
        }
        let dir = store.dir.as_path();
        let as_set = |t: datasets::Table| {
            let k = t.class_names.len();
            Dataset { x: t.x, y: t.y, n_classes: k, p0: None, image_shape: None }
        };
        let loaded = match self {
            DataSpec::Adult(_) => datasets::adult(dir, datasets::Split::Train)
                .and_then(|train| Ok((as_set(train), Some(as_set(datasets::adult(dir, datasets::Split::Test)?))))),
            DataSpec::Magic(_) => datasets::magic(dir).map(|t| (as_set(t), None)),
            DataSpec::File(s) => datasets::load_table(std::path::Path::new(&s.path), &s.label, &s.missing).map(|(t, _)| (as_set(t), None)),
            DataSpec::Digits(s) if s.small => Ok((
                images_as_set(datasets::optdigits_small(datasets::Split::Train)),
                Some(images_as_set(datasets::optdigits_small(datasets::Split::Test))),
            )),
            DataSpec::Digits(_) => datasets::optdigits(dir, datasets::Split::Train)
                .and_then(|train| Ok((images_as_set(train), Some(images_as_set(datasets::optdigits(dir, datasets::Split::Test)?))))),
            DataSpec::Mnist(_) => datasets::mnist(dir, datasets::Split::Train)
                .and_then(|train| Ok((images_as_set(train), Some(images_as_set(datasets::mnist(dir, datasets::Split::Test)?))))),
            DataSpec::FashionMnist(_) => datasets::fashion_mnist(dir, datasets::Split::Train).and_then(|train| {
                Ok((images_as_set(train), Some(images_as_set(datasets::fashion_mnist(dir, datasets::Split::Test)?))))
            }),
            _ => unreachable!("kinds without files returned above"),
        };
        Some(match loaded {
            Ok(pair) => {
                let pair = Arc::new(pair);
                store.loaded.lock().expect("no panics while locked").insert(key, pair.clone());
                Ok(pair)
            }
            Err(e) => Err(e.to_string()),
        })
    }

    /// Checks that the data can be read (real data sets are loaded and cached).
    pub fn ensure_available(&self, store: &DataStore) -> Result<(), String> {
        match self.real(store) {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Draws one replicate's data from `seed`. Real data: a seeded stratified test split where
    /// there is no official one, seeded subsampling to `n_train`/`n_test`, and features
    /// standardised with the training split's statistics only.
    pub fn draw(&self, seed: u64, store: &DataStore) -> Result<Draw, String> {
        if let Some(problem) = self.problem() {
            let (n_train, n_test, n_population) = match self {
                DataSpec::GaussianMixture(s) => (s.n_train, s.n_test, s.n_population),
                DataSpec::MulticlassSynthetic(s) => (s.n_train, s.n_test, s.n_population),
                DataSpec::SyntheticImages(s) => (s.n_train, s.n_test, s.n_population),
                _ => unreachable!("only synthetic kinds have a problem"),
            };
            return Ok(Draw {
                train: problem.sample(n_train, seed::derive(seed, &["train"])),
                test: problem.sample(n_test, seed::derive(seed, &["test"])),
                population: Some(problem.sample(n_population, seed::derive(seed, &["population"]))),
            });
        }
        if let DataSpec::Mnist1d(s) = self {
            return Ok(draw_mnist1d(s, seed, store));
        }
        if let DataSpec::Digits(DigitsSpec { n_train, n_test, scaling, .. })
        | DataSpec::Mnist(MnistSpec { n_train, n_test, scaling })
        | DataSpec::FashionMnist(MnistSpec { n_train, n_test, scaling }) = self
        {
            let pair = self.real(store).expect("image kinds load data")?;
            let test = pair.1.as_ref().expect("image data sets have an official test split");
            let mut train = subsample_set(&pair.0, *n_train, seed::derive(seed, &["train-subsample"]));
            let mut test = subsample_set(test, *n_test, seed::derive(seed, &["test-subsample"]));
            if *scaling == PixelScaling::Standardize {
                let (mean, sd) = scalar_mean_sd(train.x.view());
                for x in [&mut train.x, &mut test.x] {
                    x.mapv_inplace(|v| (v - mean) / sd);
                }
            }
            return Ok(Draw { train, test, population: None });
        }
        let pair = self.real(store).expect("real kinds load data")?;
        let (pool, official_test) = (&pair.0, &pair.1);
        let (mut train, mut test) = match official_test {
            Some(test) => (pool.clone(), test.clone()),
            None => {
                let fraction = match self {
                    DataSpec::Magic(s) => s.test_fraction,
                    DataSpec::File(s) => s.test_fraction,
                    _ => unreachable!("kinds without an official test split"),
                };
                let (fit, held) = stratified_split(&pool.y, fraction, seed::derive(seed, &["test-split"]));
                (pool.select(&fit), pool.select(&held))
            }
        };
        let (n_train, n_test) = match self {
            DataSpec::Adult(s) => (s.n_train, s.n_test),
            DataSpec::Magic(s) => (s.n_train, None),
            DataSpec::File(s) => (s.n_train, None),
            _ => unreachable!("real kinds"),
        };
        if let Some(n) = n_train.filter(|&n| n < train.len()) {
            train = train.select(&subsample(train.len(), n, seed::derive(seed, &["train-subsample"])));
        }
        if let Some(n) = n_test.filter(|&n| n < test.len()) {
            test = test.select(&subsample(test.len(), n, seed::derive(seed, &["test-subsample"])));
        }
        let scaler = Standardizer::fit(train.x.view());
        train.x = scaler.transform(train.x.view());
        test.x = scaler.transform(test.x.view());
        Ok(Draw { train, test, population: None })
    }
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

/// A k-class problem with exact softmax Bayes probabilities and tunable nonlinearity.
pub struct MulticlassSynthetic {
    dim: usize,
    n_classes: usize,
    signal: f64,
    nonlinearity: f64,
    w: Array2<f64>, // k × d
    u: Array2<f64>, // k × m
    v: Array2<f64>, // m × d, unit rows
}

const N_WAVES: usize = 8;

impl MulticlassSynthetic {
    pub fn new(dim: usize, n_classes: usize, signal: f64, nonlinearity: f64, problem_seed: u64) -> Self {
        let mut w = standard_normal_matrix(n_classes, dim, seed::derive(problem_seed, &["w"]));
        let u = standard_normal_matrix(n_classes, N_WAVES, seed::derive(problem_seed, &["u"]));
        let mut v = standard_normal_matrix(N_WAVES, dim, seed::derive(problem_seed, &["v"]));
        // Unit rows, so that `signal` alone sets the logit scale.
        for mut row in w.rows_mut().into_iter().chain(v.rows_mut()) {
            let norm = row.dot(&row).sqrt().max(1e-12);
            row.mapv_inplace(|a| a / norm);
        }
        MulticlassSynthetic { dim, n_classes, signal, nonlinearity, w, u, v }
    }
}

impl Problem for MulticlassSynthetic {
    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn bayes_probabilities(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let linear = x.dot(&self.w.t()); // n × k
        let waves = x.dot(&self.v.t()).mapv(|a| (2.0 * a).sin()); // n × m
        let logits = (linear + waves.dot(&self.u.t()) * self.nonlinearity) * self.signal;
        softmax_rows(&logits)
    }

    fn sample_x(&self, n: usize, seed: u64) -> Array2<f64> {
        standard_normal_matrix(n, self.dim, seed)
    }
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

    #[test]
    fn multiclass_probabilities_sum_to_one_and_sampling_is_seeded() {
        let m = MulticlassSynthetic::new(4, 5, 2.0, 0.5, 3);
        let a = m.sample(100, 11);
        let b = m.sample(100, 11);
        assert_eq!(a.x, b.x);
        assert_eq!(a.y, b.y);
        for row in a.p0.unwrap().rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
        assert_ne!(m.sample(100, 12).y, b.y);
    }

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
