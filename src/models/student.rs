//! Students: softmax-linear and ReLU MLP networks in candle, trained on any mixture of target
//! distributions with AdamW, minibatches and early stopping.
//!
//! Loss: Σ_terms weight · T² · CE(target, softmax(z / T)), averaged over the batch, where a
//! term's target rows are probability vectors (one-hot labels, teacher probabilities at
//! temperature T, ...). The T² factor keeps soft-target gradients on the scale of the label
//! loss (Hinton et al.).
//!
//! Weights are initialised from kdlab's own seeded RNG (PyTorch's default uniform ±1/√fan_in),
//! not candle's unseeded CPU RNG, so a student is bit-reproducible; the caller keeps candle on
//! one thread.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{ModelError, Result};
use crate::seed;

/// The early-stopping rule, as the report states it.
pub const EARLY_STOPPING_RULE: &str = "the student's validation split is carved from the training data \
(never the test set); after each epoch the log loss against the validation labels is computed, \
the weights of the best epoch are kept, and training stops after `patience` epochs without improvement";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StudentKind {
    Linear,
    Mlp,
}

/// The student section of a study.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudentSpec {
    pub kind: StudentKind,
    /// Hidden layer widths of an MLP (ignored shape for `linear`, which must leave it out).
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

impl StudentSpec {
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

/// One part of the training loss: `weight · T² · CE(targets, softmax(z / T))`.
pub struct LossTerm {
    pub weight: f64,
    pub temperature: f64,
    /// n_fit × k target distributions.
    pub targets: Array2<f64>,
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

/// Trains a student on `x_fit` with the given loss terms, early-stopped on labelled
/// validation rows. Returns `ModelError::Diverged` when the loss stops being finite.
pub fn train(
    spec: &StudentSpec,
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
            for (term, target) in terms.iter().zip(&targets) {
                let tb = target.index_select(&idx, 0)?;
                let t = term.temperature;
                loss = (loss + (soft_cross_entropy(&logits, &tb, t)? * (term.weight * t * t))?)?;
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

    fn spec(kind: StudentKind) -> StudentSpec {
        StudentSpec {
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
            let terms = [LossTerm { weight: 1.0, temperature: 1.0, targets: one_hot(&train_set.y, 2) }];
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
        let terms = [LossTerm { weight: 1.0, temperature: 1.0, targets: bad }];
        let err = train(&spec(StudentKind::Linear), d.x.view(), &terms, d.x.view(), &d.y, 2, 1).err().unwrap();
        assert!(matches!(err, ModelError::Diverged { .. }), "{err}");
    }
}
