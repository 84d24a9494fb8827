//! Students: softmax-linear and ReLU MLP networks in candle, trained with AdamW, minibatches
//! and early stopping on a weighted sum of [`LossTerm`]s; and random-forest regressors on a
//! two-class target (the semiparametric paper's tabular protocol).
//!
//! Neural loss terms (averaged over the batch, z = logits):
//! - `SoftCe`: T² · CE(target, softmax(z / T)); targets are probability vectors. The T² factor
//!   keeps soft-target gradients on the scale of the label loss (Hinton et al.).
//! - `CorrectedCe`: T² · (CE(w, softmax(z / T)) + γ · C(z)), w = softmax(log p̂ / T), with the
//!   first-order correction C(z) = ⟨∇_p CE_T, y − p̂⟩ of [`crate::distill::ce_correction`].
//! - `SquaredLogits`: ‖z − target‖² (log-probability-scale targets).
//! - `SquaredProbabilities`: ‖softmax(z) − target‖² (probability-scale targets).
//!
//! Weights are initialised from kdlab's own seeded RNG (PyTorch's default uniform ±1/√fan_in),
//! not candle's unseeded CPU RNG, so a student is bit-reproducible; the caller keeps candle on
//! one thread.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ndarray::{Array1, Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{ForestParams, ModelError, RandomForestRegressor, Result};
use crate::diagnostics::lipschitz::ReluMlp;
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
}

/// A candle network student (`kind = "linear"` or `"mlp"`).
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
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "default_patience")]
    pub patience: usize,
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
}

impl Default for NeuralSpec {
    fn default() -> Self {
        NeuralSpec {
            kind: StudentKind::Mlp,
            hidden: None,
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            learning_rate: default_learning_rate(),
            weight_decay: default_weight_decay(),
            patience: default_patience(),
            validation_fraction: default_validation_fraction(),
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
    pub const KINDS: &'static [&'static str] = &["linear", "mlp", "forest-regressor"];

    /// Deserialises the fields of student kind `kind`; `None` if the kind is unknown.
    pub fn from_kind<'de, D: serde::Deserializer<'de>>(kind: &str, de: D) -> Option<std::result::Result<StudentSpec, D::Error>> {
        let neural = |k: StudentKind, de: D| NeuralSpec::deserialize(de).map(|mut s| {
            s.kind = k;
            StudentSpec::Neural(s)
        });
        Some(match kind {
            "linear" => neural(StudentKind::Linear, de),
            "mlp" => neural(StudentKind::Mlp, de),
            "forest-regressor" => ForestStudentSpec::deserialize(de).map(StudentSpec::ForestRegressor),
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            StudentSpec::Neural(s) if s.kind == StudentKind::Linear => "linear",
            StudentSpec::Neural(_) => "mlp",
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

impl NeuralSpec {
    pub fn hidden_layers(&self) -> Vec<usize> {
        match self.kind {
            StudentKind::Linear => vec![],
            StudentKind::Mlp => self.hidden.clone().unwrap_or_else(|| vec![32]),
        }
    }

    /// Checks ranges: on failure, the key and a message stating the allowed range.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.kind == StudentKind::Linear && self.hidden.is_some() {
            return Err(("hidden", "a linear student has no hidden layers; remove `hidden` or use kind = \"mlp\"".into()));
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
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(("weight_decay", format!("must be finite and >= 0, got {}", self.weight_decay)));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(("validation_fraction", format!("must be in (0, 1), got {}", self.validation_fraction)));
        }
        Ok(())
    }
}

/// How one loss term compares the student's logits with its targets.
pub enum LossKind {
    SoftCe { temperature: f64 },
    /// `targets` hold p̂ (clipped below at the clip used for the correction's 1/p̂).
    CorrectedCe { temperature: f64, labels: Array2<f64>, gamma: Array1<f64> },
    SquaredLogits,
    SquaredProbabilities,
}

/// One part of the training loss, `weight · loss(kind, logits, targets)`.
pub struct LossTerm {
    pub weight: f64,
    pub kind: LossKind,
    /// n_fit × k target rows.
    pub targets: Array2<f64>,
}

impl LossTerm {
    pub fn soft_ce(weight: f64, temperature: f64, targets: Array2<f64>) -> LossTerm {
        LossTerm { weight, kind: LossKind::SoftCe { temperature }, targets }
    }
}

/// A trained network: logits = W_L(relu(... relu(W_1 x + b_1) ...)) + b_L.
pub struct Network {
    layers: Vec<(Var, Var)>, // (weight in × out, bias out)
    /// The epoch whose weights were kept (1-based) and the epochs run.
    pub best_epoch: usize,
    pub epochs_run: usize,
}

impl Network {
    fn new(sizes: &[usize], seed: u64) -> Result<Network> {
        let mut rng = seed::rng(seed);
        let mut layers = Vec::new();
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let b: Vec<f32> = (0..fan_out).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            layers.push((
                Var::from_tensor(&Tensor::from_vec(w, (fan_in, fan_out), &Device::Cpu)?)?,
                Var::from_tensor(&Tensor::from_vec(b, fan_out, &Device::Cpu)?)?,
            ));
        }
        Ok(Network { layers, best_epoch: 0, epochs_run: 0 })
    }

    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?; // (batch, out)
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn snapshot(&self) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
        self.layers.iter().map(|(w, b)| Ok((w.as_tensor().copy()?, b.as_tensor().copy()?))).collect()
    }

    fn restore(&self, saved: &[(Tensor, Tensor)]) -> candle_core::Result<()> {
        for ((w, b), (sw, sb)) in self.layers.iter().zip(saved) {
            w.set(sw)?;
            b.set(sb)?;
        }
        Ok(())
    }

    /// Class probabilities softmax(z) at temperature 1 (n × k).
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let logits = self.logits(&to_tensor(x)?)?;
        let p = candle_nn::ops::softmax(&logits, D::Minus1)?;
        from_tensor(&p)
    }
}

fn to_tensor(x: ArrayView2<f64>) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(data, (x.nrows(), x.ncols()), &Device::Cpu)
}

fn from_tensor(t: &Tensor) -> Result<Array2<f64>> {
    let (n, k) = t.dims2()?;
    let data: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    Ok(Array2::from_shape_vec((n, k), data).expect("shape from tensor"))
}

fn soft_cross_entropy(logits: &Tensor, targets: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let log_q = candle_nn::ops::log_softmax(&(logits / temperature)?, D::Minus1)?;
    (targets * log_q)?.sum(D::Minus1)?.mean_all()?.neg()
}

/// Batch mean of CE(w, softmax(z/T)) + γ·C(z), w = softmax(log p̂ / T) (see
/// [`crate::distill::ce_correction`] for C and its derivation).
fn corrected_cross_entropy(logits: &Tensor, p_hat: &Tensor, labels: &Tensor, gamma: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let log_q = candle_nn::ops::log_softmax(&(logits / temperature)?, D::Minus1)?; // (b, k)
    let w = {
        let powered = p_hat.powf(1.0 / temperature)?;
        powered.broadcast_div(&powered.sum_keepdim(D::Minus1)?)?
    };
    let u = ((labels / p_hat)? - 1.0)?.mul(&w)?; // (b, k)
    let w_log_q = w.mul(&log_q)?.sum_keepdim(D::Minus1)?; // (b, 1)
    let c = ((u.sum_keepdim(D::Minus1)? * &w_log_q)? - u.mul(&log_q)?.sum_keepdim(D::Minus1)?)?; // (b, 1)
    let c = ((c / temperature)? * gamma)?;
    let ce = w_log_q.neg()?; // (b, 1)
    (ce + c)?.mean_all()
}

/// Trains a student on `x_fit` with the given loss terms, early-stopped on labelled
/// validation rows. Returns `ModelError::Diverged` when the loss stops being finite.
pub fn train(
    spec: &NeuralSpec,
    x_fit: ArrayView2<f64>,
    terms: &[LossTerm],
    x_val: ArrayView2<f64>,
    y_val: &[usize],
    n_classes: usize,
    seed: u64,
) -> Result<Network> {
    let mut sizes = vec![x_fit.ncols()];
    sizes.extend(spec.hidden_layers());
    sizes.push(n_classes);
    let mut net = Network::new(&sizes, seed::derive(seed, &["init"]))?;
    let vars: Vec<Var> = net.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect();
    let params = ParamsAdamW { lr: spec.learning_rate, weight_decay: spec.weight_decay, ..ParamsAdamW::default() };
    let mut opt = AdamW::new(vars, params)?;

    let x_all = to_tensor(x_fit)?;
    let targets: Vec<Tensor> = terms.iter().map(|t| to_tensor(t.targets.view())).collect::<candle_core::Result<_>>()?;
    // Extra per-row inputs of the corrected loss (labels and per-row γ), as tensors.
    let extras: Vec<Option<(Tensor, Tensor)>> = terms
        .iter()
        .map(|t| match &t.kind {
            LossKind::CorrectedCe { labels, gamma, .. } => {
                let g = Tensor::from_vec(gamma.iter().map(|&v| v as f32).collect::<Vec<_>>(), (gamma.len(), 1), &Device::Cpu)?;
                Ok(Some((to_tensor(labels.view())?, g)))
            }
            _ => Ok(None),
        })
        .collect::<candle_core::Result<_>>()?;
    let x_val_t = to_tensor(x_val)?;
    let mut onehot_val = Array2::<f64>::zeros((y_val.len(), n_classes));
    for (i, &c) in y_val.iter().enumerate() {
        onehot_val[[i, c]] = 1.0;
    }
    let y_val_t = to_tensor(onehot_val.view())?;

    let n = x_fit.nrows();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = seed::rng(seed::derive(seed, &["batches"]));
    let mut best = (f64::INFINITY, net.snapshot()?, 0usize);
    for epoch in 1..=spec.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(spec.batch_size) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
            let xb = x_all.index_select(&idx, 0)?;
            let logits = net.logits(&xb)?;
            let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;
            for ((term, target), extra) in terms.iter().zip(&targets).zip(&extras) {
                let tb = target.index_select(&idx, 0)?;
                let value = match &term.kind {
                    LossKind::SoftCe { temperature: t } => (soft_cross_entropy(&logits, &tb, *t)? * (t * t))?,
                    LossKind::CorrectedCe { temperature: t, .. } => {
                        let (labels, gamma) = extra.as_ref().expect("corrected terms carry extras");
                        let yb = labels.index_select(&idx, 0)?;
                        let gb = gamma.index_select(&idx, 0)?;
                        (corrected_cross_entropy(&logits, &tb, &yb, &gb, *t)? * (t * t))?
                    }
                    LossKind::SquaredLogits => (&logits - &tb)?.sqr()?.sum(D::Minus1)?.mean_all()?,
                    LossKind::SquaredProbabilities => {
                        (candle_nn::ops::softmax(&logits, D::Minus1)? - &tb)?.sqr()?.sum(D::Minus1)?.mean_all()?
                    }
                };
                loss = (loss + (value * term.weight)?)?;
            }
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, loss: value });
            }
            opt.backward_step(&loss)?;
        }
        let val_loss = soft_cross_entropy(&net.logits(&x_val_t)?, &y_val_t, 1.0)?.to_scalar::<f32>()? as f64;
        net.epochs_run = epoch;
        if !val_loss.is_finite() {
            return Err(ModelError::Diverged { epoch, loss: val_loss });
        }
        if val_loss < best.0 {
            best = (val_loss, net.snapshot()?, epoch);
        } else if epoch - best.2 >= spec.patience {
            break;
        }
    }
    net.restore(&best.1)?;
    net.best_epoch = best.2;
    Ok(net)
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
    x_fit: ArrayView2<f64>,
    targets: &StudentTargets,
    x_val: ArrayView2<f64>,
    y_val: &[usize],
    n_classes: usize,
    seed: u64,
) -> Result<FittedStudent> {
    match (spec, targets) {
        (StudentSpec::Neural(s), StudentTargets::Terms(terms)) => Ok(FittedStudent::Network(train(s, x_fit, terms, x_val, y_val, n_classes, seed)?)),
        (StudentSpec::ForestRegressor(s), StudentTargets::Regression { target, scale }) => {
            Ok(FittedStudent::Forest(ForestStudent::fit(s, x_fit, target, *scale, seed)?))
        }
        _ => unreachable!("targets are built for the student family they train"),
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
            FittedStudent::Network(n) => n.layers.iter().map(|(w, b)| w.as_tensor().elem_count() + b.as_tensor().elem_count()).sum(),
            FittedStudent::Forest(f) => f.model.mean_leaves(),
        }
    }

    /// A network's weights as a [`ReluMlp`] for the diagnostics (f32 weights widened); `None`
    /// for forests.
    pub fn relu_mlp(&self) -> Option<ReluMlp> {
        let FittedStudent::Network(n) = self else { return None };
        let layers = n
            .layers
            .iter()
            .map(|(w, b)| {
                let w = from_tensor(w.as_tensor()).ok()?.t().to_owned(); // stored in × out
                let b = from_tensor(&b.as_tensor().unsqueeze(0).ok()?).ok()?.row(0).to_owned();
                Some((w, b))
            })
            .collect::<Option<Vec<_>>>()?;
        ReluMlp::new(layers).ok()
    }

    /// The epoch early stopping kept, for network students.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{GaussianMixture, Problem};

    fn spec(kind: StudentKind) -> NeuralSpec {
        NeuralSpec {
            kind,
            hidden: None,
            epochs: 60,
            batch_size: 32,
            learning_rate: 1e-2,
            weight_decay: 0.0,
            patience: 10,
            validation_fraction: 0.2,
        }
    }

    #[test]
    fn students_learn_a_separable_problem_and_are_reproducible() {
        let problem = GaussianMixture { dim: 2, radius: 1.5 };
        let train_set = problem.sample(300, 1);
        let val = problem.sample(100, 2);
        let test = problem.sample(1000, 3);
        for kind in [StudentKind::Linear, StudentKind::Mlp] {
            let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&train_set.y, 2))];
            let fit = || train(&spec(kind), train_set.x.view(), &terms, val.x.view(), &val.y, 2, 9).unwrap();
            let a = fit().predict_proba(test.x.view()).unwrap();
            let b = fit().predict_proba(test.x.view()).unwrap();
            assert_eq!(a, b, "same seed must give bit-identical students");
            // Bayes accuracy Φ(1.5·√2) ≈ 0.983; 0.93 leaves room for estimation error at n = 300.
            let acc = crate::metrics::accuracy(a.view(), &test.y).unwrap();
            assert!(acc > 0.93, "{kind:?} accuracy {acc}");
        }
    }

    #[test]
    fn divergence_is_reported_not_hidden() {
        let problem = GaussianMixture { dim: 2, radius: 1.0 };
        let d = problem.sample(100, 1);
        let mut bad = one_hot(&d.y, 2);
        bad[[0, 0]] = f64::NAN;
        let terms = [LossTerm::soft_ce(1.0, 1.0, bad)];
        let err = train(&spec(StudentKind::Linear), d.x.view(), &terms, d.x.view(), &d.y, 2, 1).err().unwrap();
        assert!(matches!(err, ModelError::Diverged { .. }), "{err}");
    }
}
