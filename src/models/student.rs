//! Students: softmax-linear, ReLU MLP and CNN ([`super::cnn`]) networks in candle, trained with
//! AdamW or SGD with Nesterov momentum ([`super::optim`]), minibatches and early stopping on a
//! weighted sum of [`LossTerm`]s ([`super::loss`]); and random-forest regressors on a
//! two-class target (the semiparametric paper's tabular protocol). The network kinds differ
//! only in their architecture ([`Architecture`]): losses, optimisers, schedules and early
//! stopping are shared.
//!
//! Weights are initialised from kdlab's own seeded RNG (PyTorch's default uniform ±1/√fan_in),
//! not candle's unseeded CPU RNG, so a student is bit-reproducible; the caller keeps candle on
//! one thread.

use candle_core::{DType, Device, Tensor, Var, D};
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::cnn::{Cnn, CnnShape};
use super::loss::{soft_cross_entropy, Activations, Batch, LossTerm};
use super::optim::{Opt, OptimizerKind, Schedule};
use super::tensor::{from_tensor, to_tensor};
use super::{ForestParams, ModelError, RandomForestRegressor, Result, WeightInit};
use crate::data::Rows;
use crate::seed;

/// The early-stopping rule, as the report states it.
pub const EARLY_STOPPING_RULE: &str = "the student's validation split is carved from the training data \
(never the test set); after each epoch the log loss against the validation labels is computed, \
the weights of the best epoch are kept, and training stops after `patience` epochs without improvement";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StudentKind {
    Linear,
    #[default]
    Mlp,
    Cnn,
}

/// A candle network student (`kind = "linear"`, `"mlp"` or `"cnn"`). Keys that are absent keep
/// their defaults out of the serialised spec, so adding keys does not change the seeds of
/// existing studies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NeuralSpec {
    /// Set from the section's `kind`, not read as a field.
    #[serde(skip_deserializing)]
    pub kind: StudentKind,
    /// Hidden layer widths of an MLP (a linear student must leave it out).
    #[serde(default)]
    pub hidden: Option<Vec<usize>>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// A fixed budget of optimiser steps in place of `epochs`: as many passes over the fit
    /// rows as it needs, the last one cut short, so more rows do not mean more training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// A learning rate per optimiser in place of `learning_rate`, so a grid over `optimizer`
    /// compares each at its own rate rather than at one rate that suits one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rates: Option<LearningRates>,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "default_patience")]
    pub patience: usize,
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// CNN: output channels of each conv layer (sets the depth; excludes `width` and `depth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// CNN: channels of the first conv layer (default 16); doubled at each stride-2 layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// CNN: number of conv layers (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// CNN: how many conv layers, from the second on, have stride 2 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downsample: Option<usize>,
    /// How hidden-layer weights are drawn: `uniform` (PyTorch's default) or `he`.
    #[serde(default, skip_serializing_if = "WeightInit::is_default")]
    pub init: WeightInit,
    #[serde(default, skip_serializing_if = "OptimizerKind::is_default")]
    pub optimizer: OptimizerKind,
    /// Nesterov momentum of `sgd-nesterov` (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    #[serde(default, skip_serializing_if = "Schedule::is_default")]
    pub schedule: Schedule,
    /// The cosine schedule's final learning rate (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_learning_rate: Option<f64>,
    /// Augmentation of the training stream (a level name or a table, see `augment`); never
    /// applied to validation or test data. Image data only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<crate::augment::AugmentSpec>,
}

impl Default for NeuralSpec {
    fn default() -> Self {
        NeuralSpec {
            kind: StudentKind::Mlp,
            hidden: None,
            epochs: default_epochs(),
            steps: None,
            batch_size: default_batch_size(),
            learning_rate: default_learning_rate(),
            learning_rates: None,
            weight_decay: default_weight_decay(),
            patience: default_patience(),
            validation_fraction: default_validation_fraction(),
            widths: None,
            width: None,
            depth: None,
            downsample: None,
            init: WeightInit::default(),
            optimizer: OptimizerKind::default(),
            momentum: None,
            schedule: Schedule::default(),
            min_learning_rate: None,
            augment: None,
        }
    }
}

/// A random-forest regressor student on the class-1 target of a two-class problem
/// (`kind = "forest-regressor"`): it regresses the distillation target; on labels it regresses
/// the 0/1 labels. It trains on all training points (no early stopping).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForestStudentSpec {
    #[serde(default = "default_student_trees")]
    pub n_trees: usize,
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default = "default_one")]
    pub min_samples_leaf: usize,
    /// Features per split; default all (scikit-learn's regressor default).
    #[serde(default = "default_all")]
    pub max_features: super::MaxFeaturesSpec,
}

fn default_student_trees() -> usize {
    10
}
fn default_one() -> usize {
    1
}
fn default_all() -> super::MaxFeaturesSpec {
    super::MaxFeaturesSpec::Name("all".into())
}

/// The student section of a study.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum StudentSpec {
    Neural(NeuralSpec),
    ForestRegressor(ForestStudentSpec),
}

impl StudentSpec {
    pub const KINDS: &'static [&'static str] = &["linear", "mlp", "cnn", "forest-regressor"];

    /// Deserialises the fields of student kind `kind`; `None` if the kind is unknown.
    pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<std::result::Result<StudentSpec, D::Error>> {
        let neural = |k: StudentKind, de: D| NeuralSpec::deserialize(de).map(|mut s| {
            s.kind = k;
            StudentSpec::Neural(s)
        });
        Some(match kind {
            "linear" => neural(StudentKind::Linear, de),
            "mlp" => neural(StudentKind::Mlp, de),
            "cnn" => neural(StudentKind::Cnn, de),
            "forest-regressor" => ForestStudentSpec::deserialize(de).map(StudentSpec::ForestRegressor),
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            StudentSpec::Neural(s) => match s.kind {
                StudentKind::Linear => "linear",
                StudentKind::Mlp => "mlp",
                StudentKind::Cnn => "cnn",
            },
            StudentSpec::ForestRegressor(_) => "forest-regressor",
        }
    }

    /// Fraction of the training points held out for early stopping (0 when none).
    pub fn validation_fraction(&self) -> f64 {
        match self {
            StudentSpec::Neural(s) => s.validation_fraction,
            StudentSpec::ForestRegressor(_) => 0.0,
        }
    }

    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        match self {
            StudentSpec::Neural(s) => s.check(),
            StudentSpec::ForestRegressor(s) => super::check_forest(s.n_trees, s.max_depth, s.min_samples_leaf, &s.max_features),
        }
    }
}

fn default_epochs() -> usize {
    200
}
fn default_batch_size() -> usize {
    32
}
fn default_learning_rate() -> f64 {
    1e-2
}
fn default_weight_decay() -> f64 {
    1e-4
}
fn default_patience() -> usize {
    20
}
fn default_validation_fraction() -> f64 {
    0.2
}

/// `learning_rates = { adamw = 3e-3, sgd-nesterov = 0.05 }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LearningRates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adamw: Option<f64>,
    #[serde(default, rename = "sgd-nesterov", skip_serializing_if = "Option::is_none")]
    pub sgd_nesterov: Option<f64>,
}

impl NeuralSpec {
    /// The learning rate of the chosen optimiser: its entry of `learning_rates`, else
    /// `learning_rate`.
    pub fn rate(&self) -> f64 {
        let by_optimizer = self.learning_rates.and_then(|r| match self.optimizer {
            OptimizerKind::AdamW => r.adamw,
            OptimizerKind::SgdNesterov => r.sgd_nesterov,
        });
        by_optimizer.unwrap_or(self.learning_rate)
    }

    /// The optimiser steps a run on `rows` fit rows may take: `steps`, or `epochs` full passes.
    pub fn step_budget(&self, rows: usize) -> usize {
        self.steps.unwrap_or(self.epochs * rows.div_ceil(self.batch_size.max(1)))
    }

    /// The passes over `rows` fit rows that the step budget needs (the last may be partial).
    pub fn passes(&self, rows: usize) -> usize {
        match self.steps {
            Some(steps) => steps.div_ceil(rows.div_ceil(self.batch_size.max(1)).max(1)),
            None => self.epochs,
        }
    }

    /// The hidden widths as the study writes them: an MLP's layers, a CNN's conv widths
    /// (`None` for a CNN given by width and depth, known only when it trains).
    pub fn written_widths(&self) -> Option<Vec<usize>> {
        match self.kind {
            StudentKind::Cnn => self.widths.clone(),
            _ => Some(self.hidden_layers()),
        }
    }

    pub fn hidden_layers(&self) -> Vec<usize> {
        match self.kind {
            StudentKind::Linear => vec![],
            StudentKind::Mlp => self.hidden.clone().unwrap_or_else(|| vec![32]),
            StudentKind::Cnn => vec![],
        }
    }

    /// The CNN's layers for images of `image_shape`: channels per conv layer and which have
    /// stride 2.
    pub fn cnn_shape(&self, image_shape: Option<(usize, usize)>, n_features: usize, n_classes: usize) -> Result<CnnShape> {
        let fail = |reason: String| ModelError::Fit { model: "cnn", reason };
        let (height, width) = image_shape.ok_or_else(|| {
            fail("a CNN needs image data (a data kind with a height and width); these data are not images".into())
        })?;
        if height * width != n_features {
            return Err(fail(format!("the images are {height}×{width} but the data have {n_features} features")));
        }
        let depth = self.widths.as_ref().map_or(self.depth.unwrap_or(3), Vec::len);
        let strided = self.downsample.unwrap_or(2);
        let downsample: Vec<bool> = (0..depth).map(|i| i >= 1 && i <= strided).collect();
        let channels = match &self.widths {
            Some(w) => w.clone(),
            None => {
                let mut c = self.width.unwrap_or(16);
                downsample.iter().map(|&d| {
                    if d {
                        c *= 2;
                    }
                    c
                }).collect()
            }
        };
        Ok(CnnShape { height, width, channels, downsample, n_classes })
    }

    /// Checks ranges: on failure, the key and a message stating the allowed range.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(a) = &self.augment {
            a.check().map_err(|(key, message)| ("augment", format!("`{key}` {message}")))?;
        }
        if self.kind == StudentKind::Linear && self.hidden.is_some() {
            return Err(("hidden", "a linear student has no hidden layers; remove `hidden` or use kind = \"mlp\"".into()));
        }
        if self.kind == StudentKind::Cnn && self.hidden.is_some() {
            return Err(("hidden", "a CNN has conv layers, not hidden layers; use `widths` or `width` and `depth`".into()));
        }
        if self.kind != StudentKind::Cnn {
            for (key, set) in [("widths", self.widths.is_some()), ("width", self.width.is_some()), ("depth", self.depth.is_some()), ("downsample", self.downsample.is_some())] {
                if set {
                    return Err((key, "applies to kind = \"cnn\" only".into()));
                }
            }
        }
        if let Some(w) = &self.widths {
            if w.is_empty() || w.iter().any(|&c| c == 0 || c > 4096) {
                return Err(("widths", format!("must list 1 or more channel counts between 1 and 4096, got {w:?}")));
            }
            if self.width.is_some() || self.depth.is_some() {
                return Err(("widths", "give either `widths` or `width` and `depth`, not both".into()));
            }
        }
        if let Some(w) = self.width {
            if w == 0 || w > 4096 {
                return Err(("width", format!("must be between 1 and 4096, got {w}")));
            }
        }
        if let Some(d) = self.depth {
            if d == 0 || d > 64 {
                return Err(("depth", format!("must be between 1 and 64, got {d}")));
            }
        }
        if let Some(m) = self.momentum {
            if self.optimizer != OptimizerKind::SgdNesterov {
                return Err(("momentum", "applies to optimizer = \"sgd-nesterov\" only".into()));
            }
            if !(m.is_finite() && (0.0..1.0).contains(&m)) {
                return Err(("momentum", format!("must be in [0, 1), got {m}")));
            }
        }
        if let Some(m) = self.min_learning_rate {
            if self.schedule != Schedule::Cosine {
                return Err(("min_learning_rate", "applies to schedule = \"cosine\" only".into()));
            }
            if !(m.is_finite() && m >= 0.0 && m < self.rate()) {
                return Err(("min_learning_rate", format!("must be finite, >= 0 and below learning_rate, got {m}")));
            }
        }
        if let Some(h) = &self.hidden {
            if h.is_empty() || h.iter().any(|&w| w == 0 || w > 100_000) {
                return Err(("hidden", format!("must list widths between 1 and 100000, got {h:?}")));
            }
        }
        if self.epochs == 0 || self.epochs > 1_000_000 {
            return Err(("epochs", format!("must be between 1 and 1000000, got {}", self.epochs)));
        }
        if self.batch_size == 0 {
            return Err(("batch_size", "must be >= 1, got 0".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(("learning_rate", format!("must be finite and > 0, got {}", self.learning_rate)));
        }
        if let Some(r) = self.learning_rates {
            let name = if self.optimizer == OptimizerKind::AdamW { "adamw" } else { "sgd-nesterov" };
            let rate = if self.optimizer == OptimizerKind::AdamW { r.adamw } else { r.sgd_nesterov };
            match rate {
                Some(v) if v.is_finite() && v > 0.0 => {}
                Some(v) => return Err(("learning_rates", format!("`{name}` must be finite and > 0, got {v}"))),
                None => return Err(("learning_rates", format!("has no rate for the optimizer `{name}`"))),
            }
        }
        if self.steps == Some(0) {
            return Err(("steps", "must be >= 1, got 0".into()));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(("weight_decay", format!("must be finite and >= 0, got {}", self.weight_decay)));
        }
        if !(self.validation_fraction >= 0.0 && self.validation_fraction < 1.0) {
            return Err(("validation_fraction", format!("must be in [0, 1) (0: no early stopping, the final weights are kept), got {}", self.validation_fraction)));
        }
        Ok(())
    }
}


/// The training a network was allowed, which the health checks compare between arms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub fit_rows: usize,
    pub steps: usize,
    pub epochs: usize,
    pub validated: bool,
}

/// The part of a network student that differs between kinds.
pub enum Architecture {
    /// Linear and MLP students: logits = W_L(relu(... relu(W_1 x + b_1) ...)) + b_L, layers
    /// (weight in × out, bias out).
    Mlp(Vec<(Var, Var)>),
    /// conv → ReLU → … → global average pooling → linear head.
    Cnn(Cnn),
}

/// Rows per forward pass when a CNN scores a whole data set (im2col of all rows at once would
/// not fit in memory).
const CNN_EVAL_ROWS: usize = 256;

/// A trained network.
pub struct Network {
    pub architecture: Architecture,
    /// The epoch whose weights were kept (1-based) and the epochs run.
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// What the run was allowed: its fit rows, optimiser steps and passes, and whether early
    /// stopping scored a validation split (else `best_epoch` is simply the last).
    pub budget: Budget,
    /// The weights after each epoch, when [`Training::keep_route`] is set (else empty).
    pub route: Vec<Vec<Tensor>>,
}

impl Network {
    fn mlp(sizes: &[usize], seed: u64, init: WeightInit) -> Result<Network> {
        let mut rng = seed::rng(seed);
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = init.bound(fan_in, i + 2 == sizes.len());
            let bias_bound = 1.0 / (fan_in as f64).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let b: Vec<f32> = (0..fan_out).map(|_| rng.gen_range(-bias_bound..bias_bound) as f32).collect();
            layers.push((
                Var::from_tensor(&Tensor::from_vec(w, (fan_in, fan_out), &Device::Cpu)?)?,
                Var::from_tensor(&Tensor::from_vec(b, fan_out, &Device::Cpu)?)?,
            ));
        }
        Ok(Network { architecture: Architecture::Mlp(layers), best_epoch: 0, epochs_run: 0, budget: Budget::default(), route: Vec::new() })
    }

    /// The untrained network `spec` describes for inputs laid out as `rows`, weights from `seed`.
    pub fn new(spec: &NeuralSpec, rows: Rows, n_classes: usize, seed: u64) -> Result<Network> {
        let n_features = rows.x.ncols();
        if spec.kind == StudentKind::Cnn {
            let cnn = Cnn::with_init(spec.cnn_shape(rows.image_shape, n_features, n_classes)?, seed, spec.init)?;
            return Ok(Network { architecture: Architecture::Cnn(cnn), best_epoch: 0, epochs_run: 0, budget: Budget::default(), route: Vec::new() });
        }
        let mut sizes = vec![n_features];
        sizes.extend(spec.hidden_layers());
        sizes.push(n_classes);
        Network::mlp(&sizes, seed, spec.init)
    }

    pub fn n_classes(&self) -> usize {
        match &self.architecture {
            Architecture::Mlp(layers) => layers.last().map_or(0, |(_, b)| b.as_tensor().elem_count()),
            Architecture::Cnn(cnn) => cnn.shape.n_classes,
        }
    }

    /// Trainable variables in a fixed order.
    pub fn vars(&self) -> Vec<Var> {
        match &self.architecture {
            Architecture::Mlp(layers) => layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect(),
            Architecture::Cnn(cnn) => cnn.vars(),
        }
    }

    /// Logits of a training batch (n, k).
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.architecture {
            Architecture::Mlp(layers) => {
                let mut h = x.clone();
                for (i, (w, b)) in layers.iter().enumerate() {
                    h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?; // (batch, out)
                    if i + 1 < layers.len() {
                        h = h.relu()?;
                    }
                }
                Ok(h)
            }
            Architecture::Cnn(cnn) => cnn.logits(x),
        }
    }

    /// Every hidden layer's activations and the logits of a training batch.
    pub fn activations(&self, x: &Tensor) -> candle_core::Result<Activations> {
        match &self.architecture {
            Architecture::Mlp(layers) => {
                let mut h = x.clone();
                let mut stages = Vec::new();
                for (i, (w, b)) in layers.iter().enumerate() {
                    if i + 1 == layers.len() {
                        let logits = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
                        return Ok(Activations { stages, penultimate: h, logits });
                    }
                    h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?.relu()?;
                    stages.push(h.clone());
                }
                Err(candle_core::Error::Msg("a network without layers".into()))
            }
            Architecture::Cnn(cnn) => cnn.activations(x),
        }
    }

    /// Logits of a whole data set, without gradients (a CNN in chunks of rows).
    fn eval_logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.architecture {
            Architecture::Mlp(_) => self.logits(x),
            Architecture::Cnn(cnn) => super::cnn::logits_chunked(cnn, x, CNN_EVAL_ROWS),
        }
    }

    /// Sets every variable to `weights` (in [`Network::vars`] order); the shapes must match.
    pub fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        let vars = self.vars();
        if vars.len() != weights.len() || vars.iter().zip(weights).any(|(v, w)| v.as_tensor().dims() != w.dims()) {
            return Err(ModelError::Fit { model: "network", reason: "the starting weights do not match the architecture".into() });
        }
        self.restore(weights)?;
        Ok(())
    }

    /// Copies of the weights in [`Network::vars`] order.
    pub fn weights(&self) -> Result<Vec<Tensor>> {
        Ok(self.snapshot()?)
    }

    fn snapshot(&self) -> candle_core::Result<Vec<Tensor>> {
        self.vars().iter().map(|v| v.as_tensor().copy()).collect()
    }

    fn restore(&self, saved: &[Tensor]) -> candle_core::Result<()> {
        for (v, s) in self.vars().iter().zip(saved) {
            v.set(s)?;
        }
        Ok(())
    }

    /// Logits z at temperature 1 (n × k).
    pub fn predict_logits(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        from_tensor(&self.eval_logits(&to_tensor(x)?)?)
    }

    /// Class probabilities softmax(z) at temperature 1 (n × k).
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let logits = self.eval_logits(&to_tensor(x)?)?;
        let p = candle_nn::ops::softmax(&logits, D::Minus1)?;
        from_tensor(&p)
    }
}

/// Trains a student on the fit rows with the given loss terms, early-stopped on labelled
/// validation rows. Returns `ModelError::Diverged` when the loss stops being finite.
pub fn train(spec: &NeuralSpec, fit: Rows, terms: &[LossTerm], x_val: ArrayView2<f64>, y_val: &[usize], n_classes: usize, seed: u64) -> Result<Network> {
    train_with(spec, fit, terms, x_val, y_val, n_classes, seed, Training::default())
}

/// The untrained network [`train`] starts from for `seed`, for inputs laid out as `rows`.
pub fn initial_network(spec: &NeuralSpec, rows: Rows, n_classes: usize, seed: u64) -> Result<Network> {
    Network::new(spec, rows, n_classes, seed::derive(seed, &["init"]))
}

/// [`train`], starting from the weights `start` (in [`Network::vars`] order) instead of the
/// seeded initialisation when given.
#[allow(clippy::too_many_arguments)]
pub fn train_from(spec: &NeuralSpec, fit: Rows, terms: &[LossTerm], x_val: ArrayView2<f64>, y_val: &[usize], n_classes: usize, seed: u64, start: Option<&[Tensor]>) -> Result<Network> {
    train_with(spec, fit, terms, x_val, y_val, n_classes, seed, Training { start, keep_route: false })
}

/// How a training run starts and what it keeps, beside the study's settings (which the runner
/// and the methods decide, never a study file).
#[derive(Debug, Clone, Copy, Default)]
pub struct Training<'s> {
    /// Weights to start from (in [`Network::vars`] order) instead of the seeded initialisation.
    pub start: Option<&'s [Tensor]>,
    /// Keep a copy of the weights after every epoch in [`Network::route`].
    pub keep_route: bool,
}

/// [`train`] as `training` says. Without validation rows nothing is early-stopped: the final
/// weights are kept.
#[allow(clippy::too_many_arguments)]
pub fn train_with(spec: &NeuralSpec, fit: Rows, terms: &[LossTerm], x_val: ArrayView2<f64>, y_val: &[usize], n_classes: usize, seed: u64, training: Training) -> Result<Network> {
    let mut net = initial_network(spec, fit, n_classes, seed)?;
    if let Some(start) = training.start {
        net.set_weights(start)?;
    }
    // Losses with their own variables (projectors) train them with the student's.
    let mut vars = net.vars();
    vars.extend(terms.iter().flat_map(|t| t.loss.vars()));
    let mut opt = Opt::new(spec.optimizer, vars, spec.rate(), spec.momentum.unwrap_or(0.9), spec.weight_decay)?;
    let mut stream = BatchStream::new(spec, fit, seed)?;
    let validation = Validation::new(x_val, y_val, n_classes)?;
    let mut best = (f64::INFINITY, net.snapshot()?, 0usize);
    let rows = fit.x.nrows();
    net.budget = Budget { fit_rows: rows, steps: spec.step_budget(rows), epochs: spec.passes(rows), validated: validation.is_some() };
    for epoch in 1..=net.budget.epochs {
        stream.train_epoch(&net, &mut opt, terms, epoch)?;
        net.epochs_run = epoch;
        if training.keep_route {
            net.route.push(net.snapshot()?);
        }
        let Some(validation) = &validation else {
            best = (f64::NAN, Vec::new(), epoch);
            continue;
        };
        let val_loss = validation.loss(&net)?;
        if !val_loss.is_finite() {
            return Err(ModelError::Diverged { epoch, loss: val_loss });
        }
        if val_loss < best.0 {
            best = (val_loss, net.snapshot()?, epoch);
        } else if epoch - best.2 >= spec.patience {
            break;
        }
    }
    if validation.is_some() {
        net.restore(&best.1)?;
    }
    net.best_epoch = best.2;
    Ok(net)
}

/// The labelled validation rows early stopping scores after each epoch.
struct Validation {
    x: Tensor,
    onehot: Tensor,
}

impl Validation {
    /// `None` without validation rows.
    fn new(x_val: ArrayView2<f64>, y_val: &[usize], n_classes: usize) -> Result<Option<Validation>> {
        if x_val.nrows() == 0 {
            return Ok(None);
        }
        Ok(Some(Validation { x: to_tensor(x_val)?, onehot: to_tensor(one_hot(y_val, n_classes).view())? }))
    }

    /// The validation log loss of `net`.
    fn loss(&self, net: &Network) -> Result<f64> {
        Ok(soft_cross_entropy(&net.eval_logits(&self.x)?, &self.onehot, 1.0)?.to_scalar::<f32>()? as f64)
    }
}

/// The training rows as seeded, shuffled and (for image rows) augmented minibatches, and the
/// optimiser steps taken on them so far.
struct BatchStream<'a, 'x> {
    spec: &'a NeuralSpec,
    x_fit: ArrayView2<'x, f64>,
    x_all: Tensor,
    order: Vec<u32>,
    rng: rand::rngs::StdRng,
    seed: u64,
    /// The augmentation and image shape, when the spec augments image rows.
    augment: Option<(&'a crate::augment::AugmentSpec, (usize, usize))>,
    step: usize,
    total_steps: usize,
}

impl<'a, 'x> BatchStream<'a, 'x> {
    fn new(spec: &'a NeuralSpec, fit: Rows<'x>, seed: u64) -> Result<BatchStream<'a, 'x>> {
        let x_fit = fit.x;
        // Augmentation applies to image rows of the training stream only.
        let augment = match (&spec.augment, fit.image_shape) {
            (Some(a), Some(shape)) if !a.is_identity() => Some((a, shape)),
            _ => None,
        };
        Ok(BatchStream {
            spec,
            x_fit,
            x_all: to_tensor(x_fit)?,
            order: (0..x_fit.nrows() as u32).collect(),
            rng: seed::rng(seed::derive(seed, &["batches"])),
            seed,
            augment,
            step: 0,
            total_steps: spec.step_budget(x_fit.nrows()),
        })
    }

    /// One epoch of optimiser steps on the weighted sum of `terms`.
    fn train_epoch(&mut self, net: &Network, opt: &mut Opt, terms: &[LossTerm], epoch: usize) -> Result<()> {
        self.order.shuffle(&mut self.rng);
        let needs_activations = terms.iter().any(|t| t.loss.needs_activations());
        let order = std::mem::take(&mut self.order);
        for (batch, chunk) in order.chunks(self.spec.batch_size).enumerate() {
            if self.step == self.total_steps {
                break;
            }
            let rows = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
            let (x, mix) = self.batch_rows(chunk, &rows, epoch, batch)?;
            let activations = if needs_activations { Some(net.activations(&x)?) } else { None };
            let logits = match &activations {
                Some(a) => a.logits.clone(),
                None => net.logits(&x)?,
            };
            let view = Batch { x: &x, augmented: self.augment.is_some(), logits: &logits, activations: activations.as_ref(), rows: &rows, mix: mix.as_ref() };
            let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;
            for term in terms {
                loss = (loss + (term.loss.loss(&view)? * term.weight)?)?;
            }
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, loss: value });
            }
            let spec = self.spec;
            if spec.schedule != Schedule::Constant {
                opt.set_learning_rate(spec.schedule.learning_rate(spec.rate(), spec.min_learning_rate.unwrap_or(0.0), self.step, self.total_steps));
            }
            self.step += 1;
            opt.backward_step(&loss)?;
        }
        self.order = order;
        Ok(())
    }

    /// The batch's input rows as the student sees them, and how mixup mixed them (it mixes the
    /// rows' targets as it mixes their images).
    fn batch_rows(&self, chunk: &[u32], rows: &Tensor, epoch: usize, batch: usize) -> Result<(Tensor, Option<crate::augment::Mix>)> {
        let Some((policy, (height, width))) = self.augment else {
            return Ok((self.x_all.index_select(rows, 0)?, None));
        };
        let picked: Vec<usize> = chunk.iter().map(|&i| i as usize).collect();
        let batch_seed = seed::derive(self.seed, &["augment", &epoch.to_string(), &batch.to_string()]);
        let augmented = policy.apply(self.x_fit.select(ndarray::Axis(0), &picked).view(), height, width, batch_seed);
        Ok((to_tensor(augmented.x.view())?, augmented.mix))
    }
}

/// The scale a regression student's target lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetScale {
    /// The target is a probability; predictions are clipped to [0, 1].
    Probability,
    /// The target is a log-probability; predictions are exp(·) clipped to [0, 1].
    LogProbability,
}

/// A random-forest regressor student for two classes: p(class 1 | x) from its prediction.
pub struct ForestStudent {
    pub(crate) model: RandomForestRegressor,
    scale: TargetScale,
}

impl ForestStudent {
    pub fn fit(spec: &ForestStudentSpec, x: ArrayView2<f64>, target: &[f64], scale: TargetScale, seed: u64) -> Result<ForestStudent> {
        let params = super::forest_params(spec.n_trees, spec.max_depth, spec.min_samples_leaf, &spec.max_features, "forest-regressor", ForestParams::regression())?;
        Ok(ForestStudent { model: RandomForestRegressor::fit(&params, x, target, seed)?, scale })
    }

    /// Two-column probabilities [1 − p1, p1].
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let raw = self.model.predict(x);
        let mut p = Array2::zeros((raw.len(), 2));
        for (i, &v) in raw.iter().enumerate() {
            let p1 = match self.scale {
                TargetScale::Probability => v,
                TargetScale::LogProbability => v.exp(),
            }
            .clamp(0.0, 1.0);
            p[[i, 0]] = 1.0 - p1;
            p[[i, 1]] = p1;
        }
        p
    }
}

/// What a student trains on.
pub enum StudentTargets {
    /// Network students: a weighted sum of loss terms.
    Terms(Vec<LossTerm>),
    /// Forest-regressor students: one class-1 target per point, on a scale.
    Regression { target: Vec<f64>, scale: TargetScale },
}

/// Fits the student that `spec` names on its targets; network students early-stop on the
/// labelled validation rows.
pub fn fit(
    spec: &StudentSpec,
    fit: Rows,
    targets: &StudentTargets,
    x_val: ArrayView2<f64>,
    y_val: &[usize],
    n_classes: usize,
    seed: u64,
) -> Result<FittedStudent> {
    match (spec, targets) {
        (StudentSpec::Neural(s), StudentTargets::Terms(terms)) => Ok(FittedStudent::Network(train(s, fit, terms, x_val, y_val, n_classes, seed)?)),
        (StudentSpec::ForestRegressor(s), StudentTargets::Regression { target, scale }) => {
            Ok(FittedStudent::Forest(ForestStudent::fit(s, fit.x, target, *scale, seed)?))
        }
        // A registered method whose targets do not suit the cell's student (it should declare
        // `Needs::network_student`): an error for the arm's row, not a panic.
        (StudentSpec::Neural(_), _) => Err(ModelError::Fit { model: "student", reason: "a network student needs loss-term targets".into() }),
        (StudentSpec::ForestRegressor(_), _) => Err(ModelError::Fit { model: "student", reason: "a forest student needs a regression target; this arm's targets are for a network student".into() }),
    }
}

/// A trained student of either family.
pub enum FittedStudent {
    Network(Network),
    Forest(ForestStudent),
}

impl FittedStudent {
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        match self {
            FittedStudent::Network(n) => n.predict_proba(x),
            FittedStudent::Forest(f) => Ok(f.predict_proba(x)),
        }
    }

    /// The dimension d of the critical-radius proxy: parameters of a network, mean leaves per
    /// tree of a forest.
    pub fn dimension(&self) -> usize {
        match self {
            FittedStudent::Network(n) => n.vars().iter().map(|v| v.as_tensor().elem_count()).sum(),
            FittedStudent::Forest(f) => f.model.mean_leaves(),
        }
    }

    /// An MLP's layers as plain (weight out × in, bias) matrices, f32 weights widened (what the
    /// Lipschitz diagnostics read); `None` for forests and CNNs.
    pub fn mlp_layers(&self) -> Option<Vec<(Array2<f64>, ndarray::Array1<f64>)>> {
        let FittedStudent::Network(Network { architecture: Architecture::Mlp(layers), .. }) = self else { return None };
        let layers = layers
            .iter()
            .map(|(w, b)| {
                let w = from_tensor(w.as_tensor()).ok()?.t().to_owned(); // stored in × out
                let b = from_tensor(&b.as_tensor().unsqueeze(0).ok()?).ok()?.row(0).to_owned();
                Some((w, b))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(layers)
    }

    /// The epoch early stopping kept, for network students.
    /// The training a network student was allowed (`None` for forests).
    pub fn budget(&self) -> Option<Budget> {
        match self {
            FittedStudent::Network(n) => Some(n.budget),
            FittedStudent::Forest(_) => None,
        }
    }

    pub fn best_epoch(&self) -> Option<usize> {
        match self {
            FittedStudent::Network(n) => Some(n.best_epoch),
            FittedStudent::Forest(_) => None,
        }
    }
}

/// One-hot rows for labels.
pub fn one_hot(y: &[usize], n_classes: usize) -> Array2<f64> {
    let mut out = Array2::zeros((y.len(), n_classes));
    for (i, &c) in y.iter().enumerate() {
        out[[i, c]] = 1.0;
    }
    out
}

/// Students of the tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{NeuralSpec, StudentKind};

    /// A student of `kind` that learns the tests' small tasks in a few seconds.
    pub fn spec(kind: StudentKind) -> NeuralSpec {
        NeuralSpec {
            kind,
            hidden: None,
            epochs: 60,
            batch_size: 32,
            learning_rate: 1e-2,
            weight_decay: 0.0,
            patience: 10,
            validation_fraction: 0.2,
            ..NeuralSpec::default()
        }
    }

    /// A CNN of two conv layers on 6×6 images (the `stripes` task).
    pub fn cnn_spec() -> NeuralSpec {
        NeuralSpec { kind: StudentKind::Cnn, widths: Some(vec![4, 8]), ..spec(StudentKind::Cnn) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{gaussian_mixture::GaussianMixture, Problem};

    use super::test_support::spec;

    /// He draws have variance bound²/3 = 2/fan_in, the uniform default 1/(3·fan_in); with
    /// 64 × 256 draws the sample variance is within 3% of either (16384 draws: relative sd of
    /// a uniform's sample variance ≈ 0.6%), so the two cannot be confused. Uniform networks are
    /// unchanged by the option: the same seed gives the same weights as before it existed.
    #[test]
    fn he_initialisation_scales_hidden_layers_only() {
        let mlp = |init| Network::new(&NeuralSpec { kind: StudentKind::Mlp, hidden: Some(vec![256]), init, ..NeuralSpec::default() }, Rows::tabular(Array2::zeros((0, 64)).view()), 3, 5).unwrap();
        let variance = |net: &Network, layer: usize| {
            let w: Vec<f32> = net.vars()[2 * layer].as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len() as f64
        };
        let (he, uniform) = (mlp(WeightInit::He), mlp(WeightInit::Uniform));
        assert!((variance(&he, 0) * 64.0 / 2.0 - 1.0).abs() < 0.03, "He hidden variance {}", variance(&he, 0));
        assert!((variance(&uniform, 0) * 64.0 * 3.0 - 1.0).abs() < 0.03, "uniform hidden variance {}", variance(&uniform, 0));
        // The output layer (fan-in 256) keeps U(±1/√fan_in) under either option.
        assert_eq!(he.vars()[2].as_tensor().to_vec2::<f32>().unwrap(), uniform.vars()[2].as_tensor().to_vec2::<f32>().unwrap());
    }

    #[test]
    fn keep_route_saves_the_weights_after_every_epoch() {
        let problem = GaussianMixture { dim: 2, radius: 1.5 };
        let data = problem.sample(64, 1);
        let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&data.y, 2))];
        let empty = Array2::<f64>::zeros((0, 2));
        let train_with = |keep_route| super::train_with(&NeuralSpec { epochs: 5, validation_fraction: 0.0, ..spec(StudentKind::Mlp) }, data.rows(), &terms, empty.view(), &[], 2, 3, Training { keep_route, ..Training::default() }).unwrap();
        let (kept, plain) = (train_with(true), train_with(false));
        assert_eq!((kept.route.len(), plain.route.len()), (5, 0));
        // The last checkpoint is the final network, and keeping the route changes no weight.
        let flat = |w: &[Tensor]| w.iter().flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect::<Vec<_>>();
        assert_eq!(flat(&kept.route[4]), flat(&kept.weights().unwrap()));
        assert_eq!(flat(&kept.weights().unwrap()), flat(&plain.weights().unwrap()));
        assert_ne!(flat(&kept.route[0]), flat(&kept.route[4]));
    }

    #[test]
    fn students_learn_a_separable_problem_and_are_reproducible() {
        let problem = GaussianMixture { dim: 2, radius: 1.5 };
        let train_set = problem.sample(300, 1);
        let val = problem.sample(100, 2);
        let test = problem.sample(1000, 3);
        for kind in [StudentKind::Linear, StudentKind::Mlp] {
            let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&train_set.y, 2))];
            let fit = || train(&spec(kind), train_set.rows(), &terms, val.x.view(), &val.y, 2, 9).unwrap();
            let a = fit().predict_proba(test.x.view()).unwrap();
            let b = fit().predict_proba(test.x.view()).unwrap();
            assert_eq!(a, b, "same seed must give bit-identical students");
            // Bayes accuracy Φ(1.5·√2) ≈ 0.983; 0.93 leaves room for estimation error at n = 300.
            let acc = crate::metrics::accuracy(a.view(), &test.y).unwrap();
            assert!(acc > 0.93, "{kind:?} accuracy {acc}");
        }
    }

    use super::test_support::cnn_spec;

    /// Horizontal against vertical stripes under ±0.5 uniform noise: a 3×3 filter that
    /// compares a pixel with its vertical and horizontal neighbours separates the classes by
    /// ~1 per pixel, averaged over 36 pixels by the pooling, against noise of sd ≈ 0.3 per
    /// pixel, so the Bayes error is far below 1e-6 per image. A CNN that learned anything
    /// classifies all 400 test images; one at chance level reaches 90 % with probability
    /// below 1e-60 (binomial tail), so the test fails by chance far less often than 1 in 1000.
    #[test]
    fn a_cnn_learns_a_separable_image_task_with_every_loss_and_optimiser() {
        let (x, y) = crate::models::cnn::stripes(200, 6, 1);
        let (x_val, y_val) = crate::models::cnn::stripes(60, 6, 2);
        let (x_test, y_test) = crate::models::cnn::stripes(400, 6, 3);
        let onehot = one_hot(&y, 2);
        let logp = onehot.mapv(|p| p.max(1e-3).ln());
        let variants: Vec<(&str, NeuralSpec, LossTerm)> = vec![
            ("adamw, soft targets T = 2", cnn_spec(), LossTerm::soft_ce(1.0, 2.0, onehot.mapv(|p| 0.9 * p + 0.05))),
            (
                "sgd-nesterov + cosine, labels",
                NeuralSpec { optimizer: OptimizerKind::SgdNesterov, momentum: Some(0.9), learning_rate: 0.05, schedule: Schedule::Cosine, ..cnn_spec() },
                LossTerm::soft_ce(1.0, 1.0, onehot.clone()),
            ),
            ("squared logits", cnn_spec(), LossTerm::new(1.0, super::super::loss::SquaredLogits::new(logp.view()))),
        ];
        for (name, spec, term) in variants {
            let terms = [term];
            let net = train(&spec, Rows::new(x.view(), Some((6, 6))), &terms, x_val.view(), &y_val, 2, 5).unwrap();
            let p = net.predict_proba(x_test.view()).unwrap();
            assert_eq!(p.dim(), (400, 2));
            assert!(p.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-5), "{name}: rows must sum to 1");
            let acc = crate::metrics::accuracy(p.view(), &y_test).unwrap();
            assert!(acc > 0.9, "{name}: accuracy {acc}");
        }
    }

    #[test]
    fn cnn_students_are_reproducible_for_a_seed() {
        let (x, y) = crate::models::cnn::stripes(80, 6, 4);
        let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&y, 2))];
        let fit = |seed| train(&NeuralSpec { epochs: 3, ..cnn_spec() }, Rows::new(x.view(), Some((6, 6))), &terms, x.view(), &y, 2, seed).unwrap().predict_proba(x.view()).unwrap();
        assert_eq!(fit(1), fit(1));
        assert_ne!(fit(1), fit(2));
    }

    #[test]
    fn network_keys_are_checked() {
        let bad = |s: NeuralSpec| s.check().err().map(|(key, _)| key);
        assert_eq!(bad(NeuralSpec { widths: Some(vec![4]), ..spec(StudentKind::Mlp) }), Some("widths"));
        assert_eq!(bad(NeuralSpec { hidden: Some(vec![4]), ..cnn_spec() }), Some("hidden"));
        assert_eq!(bad(NeuralSpec { width: Some(8), ..cnn_spec() }), Some("widths"));
        assert_eq!(bad(NeuralSpec { momentum: Some(0.9), ..spec(StudentKind::Mlp) }), Some("momentum"));
        assert_eq!(bad(NeuralSpec { optimizer: OptimizerKind::SgdNesterov, momentum: Some(1.0), ..spec(StudentKind::Mlp) }), Some("momentum"));
        assert_eq!(bad(NeuralSpec { min_learning_rate: Some(0.0), ..spec(StudentKind::Mlp) }), Some("min_learning_rate"));
        assert_eq!(bad(NeuralSpec { schedule: Schedule::Cosine, min_learning_rate: Some(1.0), ..spec(StudentKind::Mlp) }), Some("min_learning_rate"));
        assert_eq!(bad(cnn_spec()), None);
        let shape = NeuralSpec { width: Some(8), depth: Some(4), widths: None, ..cnn_spec() }.cnn_shape(Some((6, 6)), 36, 3).unwrap();
        assert_eq!(shape.channels, vec![8, 16, 32, 32]);
        assert_eq!(shape.downsample, vec![false, true, true, false]);
        let err = cnn_spec().cnn_shape(None, 36, 3).err().unwrap().to_string();
        assert!(err.contains("needs image data"), "{err}");
    }

    /// Keys left at their defaults stay out of the serialised spec, whose hash seeds the
    /// students: existing studies keep their seeds and results.
    #[test]
    fn default_keys_do_not_change_the_serialised_spec() {
        let json = serde_json::to_string(&spec(StudentKind::Mlp)).unwrap();
        for key in ["optimizer", "schedule", "momentum", "widths"] {
            assert!(!json.contains(key), "{json}");
        }
    }

    #[test]
    fn divergence_is_reported_not_hidden() {
        let problem = GaussianMixture { dim: 2, radius: 1.0 };
        let d = problem.sample(100, 1);
        let mut bad = one_hot(&d.y, 2);
        bad[[0, 0]] = f64::NAN;
        let terms = [LossTerm::soft_ce(1.0, 1.0, bad)];
        let err = train(&spec(StudentKind::Linear), d.rows(), &terms, d.x.view(), &d.y, 2, 1).err().unwrap();
        assert!(matches!(err, ModelError::Diverged { .. }), "{err}");
    }
}
