//! Teachers and students.
//!
//! A teacher is anything that is fit on labelled rows and then gives class probabilities
//! ([`Teacher`]); a student is a candle network trained on any target distribution
//! ([`student`]). Adding a teacher kind: a spec struct, a variant of [`TeacherSpec`], a line in
//! [`TeacherSpec::KINDS`] and [`TeacherSpec::from_kind`], and its `fit` arm.

pub mod classical;
pub mod cnn;
pub mod conv;
pub mod ensemble;
pub mod forest;
pub mod loss;
pub mod optim;
pub mod student;
pub mod tensor;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

pub use forest::{ForestParams, MaxFeatures, RandomForestClassifier, RandomForestRegressor};

use crate::data::Rows;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{model} failed to fit: {reason}")]
    Fit { model: &'static str, reason: String },
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged { epoch: usize, loss: f64 },
    #[error(transparent)]
    Forest(#[from] forest::ForestError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// How a network's hidden-layer weights are drawn. Biases and the output layer always draw from
/// U(±1/√fan_in).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WeightInit {
    /// PyTorch's default for linear and conv layers, U(±1/√fan_in): each ReLU layer shrinks
    /// the activations' scale by about √6, so deep stacks without normalisation start slowly.
    #[default]
    Uniform,
    /// He (Kaiming) uniform, U(±√(6/fan_in)): keeps the activations' second moment through ReLU
    /// layers.
    He,
}

impl WeightInit {
    pub fn is_default(&self) -> bool {
        *self == WeightInit::default()
    }

    /// The half-width of the uniform draw for a layer's weights.
    pub fn bound(self, fan_in: usize, output_layer: bool) -> f64 {
        match self {
            WeightInit::He if !output_layer => (6.0 / fan_in as f64).sqrt(),
            _ => 1.0 / (fan_in as f64).sqrt(),
        }
    }
}

/// A fitted model that gives class probabilities (n × k, rows sum to 1, columns in class order).
pub trait Teacher: Send + Sync {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64>;
}

/// `max_features` as a study writes it: "sqrt", "log2", "all", or a fraction in (0, 1].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MaxFeaturesSpec {
    Fraction(f64),
    Name(String),
}

impl MaxFeaturesSpec {
    pub fn resolve(&self) -> std::result::Result<MaxFeatures, String> {
        match self {
            MaxFeaturesSpec::Fraction(f) if *f > 0.0 && *f <= 1.0 => Ok(MaxFeatures::Fraction(*f)),
            MaxFeaturesSpec::Fraction(f) => Err(format!("must be a fraction in (0, 1] or one of \"sqrt\", \"log2\", \"all\", got {f}")),
            MaxFeaturesSpec::Name(n) => match n.as_str() {
                "sqrt" => Ok(MaxFeatures::Sqrt),
                "log2" => Ok(MaxFeatures::Log2),
                "all" => Ok(MaxFeatures::All),
                _ => Err(format!("must be one of \"sqrt\", \"log2\", \"all\" or a fraction in (0, 1], got \"{n}\"")),
            },
        }
    }
}

fn default_n_trees() -> usize {
    100
}
fn default_one() -> usize {
    1
}
fn default_sqrt() -> MaxFeaturesSpec {
    MaxFeaturesSpec::Name("sqrt".into())
}

/// kdlab's random forest classifier; probabilities are mean leaf class frequencies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForestTeacherSpec {
    #[serde(default = "default_n_trees")]
    pub n_trees: usize,
    /// Unlimited when absent.
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default = "default_one")]
    pub min_samples_leaf: usize,
    #[serde(default = "default_sqrt")]
    pub max_features: MaxFeaturesSpec,
}

/// Multinomial logistic regression (linfa) with an L2 penalty `alpha`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogisticTeacherSpec {
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u64,
}
fn default_alpha() -> f64 {
    1e-3
}
fn default_max_iterations() -> u64 {
    200
}

/// k-nearest-neighbour class frequencies (linfa-nn k-d tree). Scored on its own training
/// points, each point is its own nearest neighbour: k = 1 is the extreme overfitting teacher.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KnnTeacherSpec {
    #[serde(default = "default_k")]
    pub k: usize,
}
fn default_k() -> usize {
    10
}

/// Gaussian naive Bayes (linfa).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NaiveBayesTeacherSpec {
    #[serde(default = "default_var_smoothing")]
    pub var_smoothing: f64,
}
fn default_var_smoothing() -> f64 {
    1e-9
}

/// Range checks shared by forest teachers and forest students.
pub fn check_forest(n_trees: usize, max_depth: Option<usize>, min_samples_leaf: usize, max_features: &MaxFeaturesSpec) -> std::result::Result<(), (&'static str, String)> {
    if n_trees == 0 || n_trees > 100_000 {
        return Err(("n_trees", format!("must be between 1 and 100000, got {n_trees}")));
    }
    if max_depth == Some(0) {
        return Err(("max_depth", "must be >= 1 (leave it out for unlimited depth), got 0".into()));
    }
    if min_samples_leaf == 0 {
        return Err(("min_samples_leaf", "must be >= 1, got 0".into()));
    }
    max_features.resolve().map(|_| ()).map_err(|m| ("max_features", m))
}

/// Forest parameters from a study's keys, on top of `base` (classifier or regressor defaults).
pub fn forest_params(
    n_trees: usize,
    max_depth: Option<usize>,
    min_samples_leaf: usize,
    max_features: &MaxFeaturesSpec,
    model: &'static str,
    base: ForestParams,
) -> Result<ForestParams> {
    let max_features = max_features.resolve().map_err(|reason| ModelError::Fit { model, reason })?;
    Ok(ForestParams { n_trees, max_depth, min_samples_leaf, max_features, ..base })
}

/// The teacher section of a study.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TeacherSpec {
    Forest(ForestTeacherSpec),
    Logistic(LogisticTeacherSpec),
    Knn(KnnTeacherSpec),
    NaiveBayes(NaiveBayesTeacherSpec),
    /// An ensemble of `members` CNNs trained on labels (one member by default).
    Cnn(ensemble::NetworkTeacherSpec),
    Mlp(ensemble::NetworkTeacherSpec),
    /// Probabilities read from files ([`crate::teacher_files`]), not fitted.
    Predictions(crate::teacher_files::PredictionsTeacherSpec),
}

impl TeacherSpec {
    pub const KINDS: &'static [&'static str] = &["forest", "logistic", "knn", "naive-bayes", "cnn", "mlp", "predictions"];

    /// Deserialises the fields of teacher kind `kind`; `None` if the kind is unknown.
    pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<std::result::Result<TeacherSpec, D::Error>> {
        Some(match kind {
            "forest" => ForestTeacherSpec::deserialize(de).map(TeacherSpec::Forest),
            "logistic" => LogisticTeacherSpec::deserialize(de).map(TeacherSpec::Logistic),
            "knn" => KnnTeacherSpec::deserialize(de).map(TeacherSpec::Knn),
            "naive-bayes" => NaiveBayesTeacherSpec::deserialize(de).map(TeacherSpec::NaiveBayes),
            "cnn" => ensemble::NetworkTeacherSpec::deserialize(de).map(TeacherSpec::Cnn),
            "mlp" => ensemble::NetworkTeacherSpec::deserialize(de).map(|mut s| {
                s.network.kind = student::StudentKind::Mlp;
                TeacherSpec::Mlp(s)
            }),
            "predictions" => crate::teacher_files::PredictionsTeacherSpec::deserialize(de).map(TeacherSpec::Predictions),
            _ => return None,
        })
    }

    /// Checks ranges: on failure, the key and a message stating the allowed range.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        match self {
            TeacherSpec::Forest(s) => check_forest(s.n_trees, s.max_depth, s.min_samples_leaf, &s.max_features)?,
            TeacherSpec::Logistic(s) => {
                if !s.alpha.is_finite() || s.alpha < 0.0 {
                    return Err(("alpha", format!("must be finite and >= 0, got {}", s.alpha)));
                }
                if s.max_iterations == 0 {
                    return Err(("max_iterations", "must be >= 1, got 0".into()));
                }
            }
            TeacherSpec::Knn(s) => {
                if s.k == 0 {
                    return Err(("k", "must be >= 1, got 0".into()));
                }
            }
            TeacherSpec::NaiveBayes(s) => {
                if !s.var_smoothing.is_finite() || s.var_smoothing < 0.0 {
                    return Err(("var_smoothing", format!("must be finite and >= 0, got {}", s.var_smoothing)));
                }
            }
            TeacherSpec::Cnn(s) | TeacherSpec::Mlp(s) => s.check()?,
            TeacherSpec::Predictions(s) => s.check()?,
        }
        Ok(())
    }

    /// Fits the teacher on (rows, y); every random choice derives from `seed`.
    pub fn fit(&self, rows: Rows, y: &[usize], n_classes: usize, seed: u64) -> Result<Box<dyn Teacher>> {
        let x = rows.x;
        Ok(match self {
            TeacherSpec::Forest(s) => {
                let params = forest_params(s.n_trees, s.max_depth, s.min_samples_leaf, &s.max_features, "forest", ForestParams::default())?;
                Box::new(RandomForestClassifier::fit(&params, x, y, n_classes, seed)?)
            }
            TeacherSpec::Logistic(s) => Box::new(classical::Logistic::fit(x, y, n_classes, s.alpha, s.max_iterations)?),
            TeacherSpec::Knn(s) => Box::new(classical::Knn::fit(x, y, n_classes, s.k)?),
            TeacherSpec::NaiveBayes(s) => Box::new(classical::NaiveBayes::fit(x, y, n_classes, s.var_smoothing)?),
            TeacherSpec::Cnn(s) | TeacherSpec::Mlp(s) => Box::new(s.fit(rows, y, n_classes, seed)?),
            TeacherSpec::Predictions(_) => return Err(ModelError::Fit { model: "predictions", reason: "a teacher of predictions is read from its files, not fitted".into() }),
        })
    }

    /// The network teacher's spec (`cnn` and `mlp`), whose fitted members a fidelity study
    /// reads directly.
    pub fn network(&self) -> Option<&ensemble::NetworkTeacherSpec> {
        match self {
            TeacherSpec::Cnn(s) | TeacherSpec::Mlp(s) => Some(s),
            _ => None,
        }
    }
}

impl Teacher for RandomForestClassifier {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        RandomForestClassifier::predict_proba(self, x)
    }
}
