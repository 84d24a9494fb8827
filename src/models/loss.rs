//! Training losses. A network student trains on a weighted sum of [`LossTerm`]s, each a
//! [`BatchLoss`] evaluated on every minibatch. The training loop knows nothing of what a term
//! means: the generic losses are here, and the distillation recipes (the γ-corrected loss, the
//! online teacher, feature and relational terms) implement the trait where they are defined.
//!
//! Losses here (averaged over the batch, z = logits):
//! - [`SoftCrossEntropy`]: T² · CE(target, softmax(z / T)); targets are probability vectors.
//!   The T² factor keeps soft-target gradients on the scale of the label loss (Hinton et al.).
//! - [`SquaredLogits`]: ‖z − target‖² (log-probability-scale targets).
//! - [`SquaredProbabilities`]: ‖softmax(z) − target‖² (probability-scale targets).
//! - [`ActivationTerm`]: a loss on the student's activations ([`ActivationLoss`]).

use std::sync::Arc;

use candle_core::{Tensor, Var, D};
use ndarray::{Array2, ArrayView2};

use super::tensor::{from_tensor, to_tensor};
use crate::augment::Mix;

/// A network's activations on a batch.
pub struct Activations {
    /// Each hidden layer's output after its ReLU: B × width (MLP) or B × h × w × c (CNN conv
    /// layers, NHWC). Empty for a linear model.
    pub stages: Vec<Tensor>,
    /// What the output layer reads: the last hidden layer (MLP), the pooled maps (CNN), or the
    /// input itself (linear model); B × d.
    pub penultimate: Tensor,
    /// B × k.
    pub logits: Tensor,
}

/// One minibatch as a loss sees it.
pub struct Batch<'a> {
    /// The rows as the student sees them (augmented when the spec augments), B × d.
    pub x: &'a Tensor,
    /// Whether `x` was augmented (so stored per-row targets may not describe it).
    pub augmented: bool,
    /// The student's logits on `x`, B × k.
    pub logits: &'a Tensor,
    /// The student's activations on `x`, when a term asked for them
    /// ([`BatchLoss::needs_activations`]).
    pub activations: Option<&'a Activations>,
    /// The batch's indices into the training rows.
    pub(crate) rows: &'a Tensor,
    /// How mixup mixed the batch's rows, when it did.
    pub(crate) mix: Option<&'a Mix>,
}

impl Batch<'_> {
    /// The batch's rows of a per-row tensor over the training rows (targets, labels, weights),
    /// mixed as the images were when mixup mixed them.
    pub fn rows_of(&self, per_row: &Tensor) -> candle_core::Result<Tensor> {
        let picked = per_row.index_select(self.rows, 0)?;
        match self.mix {
            None => Ok(picked),
            Some(mix) => to_tensor(mix.mix_rows(from_tensor(&picked).map_err(|e| candle_core::Error::Msg(e.to_string()))?.view()).view()),
        }
    }
}

/// One kind of training loss.
pub trait BatchLoss: Send + Sync {
    /// What the loss is, for messages and tests (e.g. `soft cross-entropy, T = 2`).
    fn describe(&self) -> String;
    /// Trainable variables of the loss itself (a projector), optimised with the student's.
    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
    /// Whether the loss reads [`Batch::activations`] (computed only when some term does).
    fn needs_activations(&self) -> bool {
        false
    }
    /// The loss on one batch, a scalar tensor.
    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor>;
}

/// One part of the training loss, `weight · loss`.
pub struct LossTerm {
    pub weight: f64,
    pub loss: Arc<dyn BatchLoss>,
}

impl LossTerm {
    pub fn new(weight: f64, loss: impl BatchLoss + 'static) -> LossTerm {
        LossTerm { weight, loss: Arc::new(loss) }
    }

    /// `weight` · T² · CE(`targets`, softmax(z / T)).
    pub fn soft_ce(weight: f64, temperature: f64, targets: Array2<f64>) -> LossTerm {
        LossTerm::new(weight, SoftCrossEntropy::new(temperature, targets.view()))
    }
}

/// Per-row targets over the training rows as a tensor, made once per loss.
pub fn target_tensor(targets: ArrayView2<f64>) -> Tensor {
    to_tensor(targets).expect("a matrix converts to a tensor of its own shape")
}

/// T² · CE(target, softmax(z / T)) against stored per-row probability targets.
pub struct SoftCrossEntropy {
    pub temperature: f64,
    targets: Tensor,
}

impl SoftCrossEntropy {
    pub fn new(temperature: f64, targets: ArrayView2<f64>) -> SoftCrossEntropy {
        SoftCrossEntropy { temperature, targets: target_tensor(targets) }
    }
}

impl BatchLoss for SoftCrossEntropy {
    fn describe(&self) -> String {
        format!("soft cross-entropy, T = {}", self.temperature)
    }
    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        distillation_loss(batch.logits, &batch.rows_of(&self.targets)?, self.temperature)
    }
}

/// ‖z − target‖² against stored log-probability-scale targets.
pub struct SquaredLogits {
    targets: Tensor,
}

impl SquaredLogits {
    pub fn new(targets: ArrayView2<f64>) -> SquaredLogits {
        SquaredLogits { targets: target_tensor(targets) }
    }
}

impl BatchLoss for SquaredLogits {
    fn describe(&self) -> String {
        "squared error of the logits".into()
    }
    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        (batch.logits - &batch.rows_of(&self.targets)?)?.sqr()?.sum(D::Minus1)?.mean_all()
    }
}

/// ‖softmax(z) − target‖² against stored probability targets.
pub struct SquaredProbabilities {
    targets: Tensor,
}

impl SquaredProbabilities {
    pub fn new(targets: ArrayView2<f64>) -> SquaredProbabilities {
        SquaredProbabilities { targets: target_tensor(targets) }
    }
}

impl BatchLoss for SquaredProbabilities {
    fn describe(&self) -> String {
        "squared error of the probabilities".into()
    }
    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        (candle_nn::ops::softmax(batch.logits, D::Minus1)? - &batch.rows_of(&self.targets)?)?.sqr()?.sum(D::Minus1)?.mean_all()
    }
}

/// A loss computed from the student's activations on a training batch. It sees the batch as
/// the student does (augmented, when the spec augments), so a teacher can be run on it.
pub trait ActivationLoss: Send + Sync {
    /// Trainable variables of the loss itself (a projector), optimised with the student's.
    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
    /// The loss (a scalar tensor) on the batch `x` with the student's activations `student`.
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor>;
}

/// An [`ActivationLoss`] as a training loss term (feature, relational and Lipschitz
/// distillation).
pub struct ActivationTerm(pub Arc<dyn ActivationLoss>);

impl BatchLoss for ActivationTerm {
    fn describe(&self) -> String {
        "a loss on the student's activations".into()
    }
    fn vars(&self) -> Vec<Var> {
        self.0.vars()
    }
    fn needs_activations(&self) -> bool {
        true
    }
    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let activations = batch.activations.ok_or_else(|| candle_core::Error::Msg("an activation loss needs the student's activations".into()))?;
        self.0.loss(batch.x, activations)
    }
}

/// The distillation term a student trains on: τ²·CE(targets, softmax(z/τ)), batch mean, with
/// `targets` the teacher's tempered probabilities. Its gradient in z is
/// τ·(softmax(z/τ) − targets), the gradient of τ²·KL(targets ‖ softmax(z/τ)).
pub fn distillation_loss(logits: &Tensor, targets: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    soft_cross_entropy(logits, targets, temperature)? * (temperature * temperature)
}

/// CE(targets, softmax(z/τ)), batch mean.
pub(crate) fn soft_cross_entropy(logits: &Tensor, targets: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let log_q = candle_nn::ops::log_softmax(&(logits / temperature)?, D::Minus1)?;
    (targets * log_q)?.sum(D::Minus1)?.mean_all()?.neg()
}
