//! Data sets and the synthetic problems whose Bayes probabilities p0(y|x) are known exactly.
//!
//! A [`Problem`] draws samples `(x, y)` with `y ~ p0(·|x)` and evaluates `p0` anywhere, so the
//! theory's nuisance is known: teacher error ‖p̂ − p0‖² and student excess risk are computed on
//! a fresh Monte-Carlo sample from the same problem, never on the test set.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::datasets;
use crate::seed;

/// Rows of features with class labels; `p0` holds the exact Bayes probabilities when known.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub x: Array2<f64>,
    pub y: Vec<usize>,
    pub n_classes: usize,
    pub p0: Option<Array2<f64>>,
    /// (height, width) when each row is a single-channel image flattened row-major (a 1-D
    /// signal has height 1); CNNs need it.
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
}

/// One replicate's data: train and test splits, and a fresh population sample where p0 is known.
pub struct Draw {
    pub train: Dataset,
    pub test: Dataset,
    pub population: Option<Dataset>,
}


impl DataSpec {
    pub const KINDS: &'static [&'static str] = &["gaussian-mixture", "multiclass-synthetic", "adult", "magic", "file"];

    /// Deserialises the fields of data kind `kind`; `None` if the kind is unknown.
    pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<Result<DataSpec, D::Error>> {
        Some(match kind {
            "gaussian-mixture" => GaussianMixtureSpec::deserialize(de).map(DataSpec::GaussianMixture),
            "multiclass-synthetic" => MulticlassSyntheticSpec::deserialize(de).map(DataSpec::MulticlassSynthetic),
            "adult" => AdultSpec::deserialize(de).map(DataSpec::Adult),
            "magic" => MagicSpec::deserialize(de).map(DataSpec::Magic),
            "file" => FileSpec::deserialize(de).map(DataSpec::File),
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
        }
        Ok(())
    }

    /// The number of classes when known without reading data.
    pub fn n_classes(&self) -> Option<usize> {
        match self {
            DataSpec::GaussianMixture(_) | DataSpec::Adult(_) | DataSpec::Magic(_) => Some(2),
            DataSpec::MulticlassSynthetic(s) => Some(s.n_classes),
            DataSpec::File(_) => None,
        }
    }

    /// The synthetic problem with known p0, if this is one.
    pub fn problem(&self) -> Option<Box<dyn Problem>> {
        match self {
            DataSpec::GaussianMixture(s) => Some(Box::new(GaussianMixture { dim: s.dim, radius: s.radius })),
            DataSpec::MulticlassSynthetic(s) => {
                Some(Box::new(MulticlassSynthetic::new(s.dim, s.n_classes, s.signal, s.nonlinearity, s.problem_seed)))
            }
            _ => None,
        }
    }

    /// Loads the real data this spec names, once per process: (train pool, official test set if
    /// any), before splitting and subsampling. `None` for synthetic kinds.
    fn real(&self) -> Option<Result<Arc<(Dataset, Option<Dataset>)>, String>> {
        let key = match self {
            DataSpec::Adult(_) => "adult".to_string(),
            DataSpec::Magic(_) => "magic".to_string(),
            DataSpec::File(s) => format!("file:{}:{}:{:?}", s.path, s.label, s.missing),
            _ => return None,
        };
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<(Dataset, Option<Dataset>)>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(hit) = cache.lock().expect("no panics while locked").get(&key) {
            return Some(Ok(hit.clone()));
        }
        let dir = datasets::cache_dir();
        let as_set = |t: datasets::Table| {
            let k = t.class_names.len();
            Dataset { x: t.x, y: t.y, n_classes: k, p0: None, image_shape: None }
        };
        let loaded = match self {
            DataSpec::Adult(_) => datasets::adult(&dir, datasets::Split::Train)
                .and_then(|train| Ok((as_set(train), Some(as_set(datasets::adult(&dir, datasets::Split::Test)?))))),
            DataSpec::Magic(_) => datasets::magic(&dir).map(|t| (as_set(t), None)),
            DataSpec::File(s) => datasets::load_table(std::path::Path::new(&s.path), &s.label, &s.missing).map(|(t, _)| (as_set(t), None)),
            _ => unreachable!("synthetic kinds returned above"),
        };
        Some(match loaded {
            Ok(pair) => {
                let pair = Arc::new(pair);
                cache.lock().expect("no panics while locked").insert(key, pair.clone());
                Ok(pair)
            }
            Err(e) => Err(e.to_string()),
        })
    }

    /// Checks that the data can be read (real data sets are loaded and cached).
    pub fn ensure_available(&self) -> Result<(), String> {
        match self.real() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Draws one replicate's data from `seed`. Real data: a seeded stratified test split where
    /// there is no official one, seeded subsampling to `n_train`/`n_test`, and features
    /// standardised with the training split's statistics only.
    pub fn draw(&self, seed: u64) -> Result<Draw, String> {
        if let Some(problem) = self.problem() {
            let (n_train, n_test, n_population) = match self {
                DataSpec::GaussianMixture(s) => (s.n_train, s.n_test, s.n_population),
                DataSpec::MulticlassSynthetic(s) => (s.n_train, s.n_test, s.n_population),
                _ => unreachable!("only synthetic kinds have a problem"),
            };
            return Ok(Draw {
                train: problem.sample(n_train, seed::derive(seed, &["train"])),
                test: problem.sample(n_test, seed::derive(seed, &["test"])),
                population: Some(problem.sample(n_population, seed::derive(seed, &["population"]))),
            });
        }
        let pair = self.real().expect("real kinds load data")?;
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
    /// (height, width) when the features are a flattened image.
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

    #[test]
    fn validation_split_is_a_partition() {
        let (fit, val) = validation_split(50, 0.2, 1);
        assert_eq!(val.len(), 10);
        let mut all: Vec<_> = fit.iter().chain(val.iter()).copied().collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }
}
