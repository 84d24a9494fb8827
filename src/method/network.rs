//! The unit of methods that read the teacher network (feature, relational, LONDON, RCO,
//! MetaDistil): every arm of a unit starts from the same student initialisation and trains on
//! the same rows with the cell's KD terms, (1 − α)·CE(labels) + α·τ²·CE(p_t^τ, q^τ) as arm
//! `kd`, plus its own term, so an arm's difference from `kd` is its method's effect. `labels`,
//! `kd` and the knowledge arms run here too when a study names a method arm, so every arm
//! carries the same extra metrics. The methods themselves are in their own files; this module
//! gives them the teacher, the rows and the training loop.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use ndarray::{Array2, ArrayView2};

use super::{Arm, TargetInputs};
use crate::data::Dataset;
use crate::distill::{self, lipschitz_kd, relational, DistillSpec, Gamma};
use crate::metrics;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{ActivationTerm, Activations, LossTerm};
use crate::models::student::{self, NeuralSpec, Network, StudentSpec, StudentTargets};
use crate::models::tensor::{from_tensor, to_tensor};
use crate::models::ModelError;

use super::settings::MethodSpec;

/// The `[method]` keys the unit itself reads for every arm (the σ gap it measures).
pub const UNIT_SETTINGS: &[&str] = &["power_iterations"];

/// Rows of the test set the geometry and Lipschitz metrics read (B³ angle terms and B × B
/// distance matrices stay small).
const PROBE_ROWS: usize = 256;

/// One (cell, seed) of a study with method arms.
pub struct Unit<'a> {
    pub spec: &'a MethodSpec,
    pub distill: &'a DistillSpec,
    pub student: &'a NeuralSpec,
    /// The teacher's member network spec (for RCO's anchor networks).
    pub teacher_network: NeuralSpec,
    pub fit: &'a Dataset,
    pub val: &'a Dataset,
    pub test: &'a Dataset,
    /// MetaDistil's quiz rows, when the runner held them out of every arm's `fit`.
    pub quiz: Option<&'a Dataset>,
    pub teacher: Arc<NetworkEnsemble>,
    pub seed: u64,
}

/// A trained method-arm student and its extra metrics.
pub struct MethodFit {
    pub network: Network,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

pub fn method_error(e: distill::error::MethodError) -> ModelError {
    ModelError::Fit { model: "distillation method", reason: e.to_string() }
}

pub fn candle_msg(e: distill::error::MethodError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl Unit<'_> {
    pub fn k(&self) -> usize {
        self.fit.n_classes
    }

    /// The teacher's first member: the network whose activations feature, relational and
    /// Lipschitz terms read.
    pub fn member(&self) -> Result<&Network, ModelError> {
        self.teacher.members.first().ok_or_else(|| ModelError::Fit { model: "distillation method", reason: "the teacher has no members".into() })
    }

    /// The label and KD terms of `arm` from teacher probabilities `p_t` on the fit rows.
    pub fn target_terms(&self, arm: Arm, p_t: ArrayView2<f64>, y: &[usize]) -> Result<Vec<LossTerm>, ModelError> {
        let student = StudentSpec::Neural(self.student.clone());
        let inputs = TargetInputs { y, teacher: p_t.view(), gamma: Gamma::Zero, n_classes: self.k(), distill: self.distill, student: &student };
        let targets = arm.targets(&inputs).map_err(method_error)?;
        match targets {
            StudentTargets::Terms(terms) => Ok(terms),
            StudentTargets::Regression { .. } => Err(ModelError::Fit { model: "distillation method", reason: "method arms need a network student".into() }),
        }
    }

    /// Trains `spec` on the unit's fit rows with `terms`, from `start` when given.
    pub fn train(&self, terms: &[LossTerm], spec: &NeuralSpec, start: Option<&[Tensor]>) -> Result<Network, ModelError> {
        student::train_from(spec, self.fit.rows(), terms, self.val.x.view(), &self.val.y, self.k(), self.seed, start)
    }

    /// Trains the student of `arm`.
    pub fn train_arm(&self, arm: Arm) -> Result<MethodFit, ModelError> {
        let p_t = self.teacher.try_predict_proba(self.fit.x.view())?;
        let network = match arm.train(self) {
            Some(own) => own?,
            None => {
                let mut terms = self.target_terms(arm, p_t.view(), &self.fit.y)?;
                if let Some((weight, term)) = arm.activation_term(self)? {
                    terms.push(LossTerm::new(weight, ActivationTerm(term)));
                }
                self.train(&terms, self.student, None)?
            }
        };
        let metrics = self.measure(&network, p_t.view())?;
        Ok(MethodFit { network, metrics })
    }

    fn probe(&self) -> Result<Tensor, ModelError> {
        let rows = self.test.len().min(PROBE_ROWS);
        Ok(to_tensor(self.test.x.slice(ndarray::s![..rows, ..]))?)
    }

    /// The untrained student's and the teacher's activations on the probe rows (for the
    /// widths and depths a method term needs to agree on).
    pub fn probe_activations(&self) -> Result<(Activations, Activations), ModelError> {
        let probe = self.probe()?;
        let student = student::initial_network(self.student, self.fit.rows(), self.k(), self.seed)?;
        Ok((student.activations(&probe)?, self.member()?.activations(&probe)?))
    }

    /// Extra metrics of every arm: train accuracy and the clean train–test gap, the congruence
    /// loss KL(p_t ‖ p_s) on the fit rows, the geometry agreement of the penultimate features
    /// and LONDON's per-stage σ gap (where the depths match).
    fn measure(&self, net: &Network, p_t_fit: ArrayView2<f64>) -> Result<std::collections::BTreeMap<String, f64>, ModelError> {
        let mut m = std::collections::BTreeMap::new();
        let num = |r: metrics::Result<f64>| r.unwrap_or(f64::NAN);
        let p_s_fit = net.predict_proba(self.fit.x.view())?;
        let train_accuracy = num(metrics::accuracy(p_s_fit.view(), &self.fit.y));
        let p_test = net.predict_proba(self.test.x.view())?;
        let test_accuracy = num(metrics::accuracy(p_test.view(), &self.test.y));
        m.insert("train_accuracy".into(), train_accuracy);
        m.insert("generalisation_gap_clean".into(), train_accuracy - test_accuracy);
        m.insert("congruence_kl".into(), num(metrics::kl_rows(p_t_fit, p_s_fit.view())));
        let probe = self.probe()?;
        let s = net.activations(&probe)?;
        let t = self.member()?.activations(&probe)?;
        let d_s = relational::pairwise_distances(&s.penultimate).map_err(method_error)?;
        let d_t = relational::pairwise_distances(&t.penultimate).map_err(method_error)?;
        m.insert("geometry_agreement".into(), off_diagonal_correlation(&from_tensor(&d_s)?, &from_tensor(&d_t)?));
        if s.stages.len() == t.stages.len() {
            let sigma = |a: &Activations| -> Result<Vec<f64>, ModelError> {
                let values = lipschitz_kd::stage_singular_values(&stage_vectors(a)?, self.spec.power_iterations, false).map_err(method_error)?;
                values.iter().map(|v| Ok(v.to_dtype(DType::F64)?.to_scalar::<f64>()?)).collect()
            };
            let (sig_s, sig_t) = (sigma(&s)?, sigma(&t)?);
            let gap = sig_s.iter().zip(&sig_t).map(|(a, b)| (a - b).abs()).sum::<f64>() / sig_s.len().max(1) as f64;
            m.insert("sigma_gap".into(), gap);
        }
        Ok(m)
    }
}

/// The stages LONDON compares: each hidden layer's activations (a CNN's maps averaged over
/// positions, B × c) and the logits, so L hidden layers give L stage pairs.
pub fn stage_vectors(a: &Activations) -> candle_core::Result<Vec<Tensor>> {
    let mut out = Vec::with_capacity(a.stages.len() + 1);
    for s in &a.stages {
        out.push(match s.rank() {
            4 => {
                let (n, h, w, c) = s.dims4()?;
                s.reshape((n, h * w, c))?.mean(1)?
            }
            _ => s.clone(),
        });
    }
    out.push(a.logits.clone());
    Ok(out)
}

/// Pearson correlation of the off-diagonal entries of two square matrices.
fn off_diagonal_correlation(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let pairs: Vec<(f64, f64)> = a.indexed_iter().filter(|((i, j), _)| i < j).map(|((i, j), &v)| (v, b[[i, j]])).collect();
    let n = pairs.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (ma, mb) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let cov: f64 = pairs.iter().map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = pairs.iter().map(|(x, _)| (x - ma).powi(2)).sum();
    let vb: f64 = pairs.iter().map(|(_, y)| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Batches smaller than this (a last partial batch) contribute no activation term: one row
/// has no pairwise distances, and batch statistics of two rows are all ±1.
const MIN_RELATIONAL_BATCH: usize = 3;

pub fn too_small(x: &Tensor) -> candle_core::Result<Option<Tensor>> {
    (x.dim(0)? < MIN_RELATIONAL_BATCH).then(|| Tensor::zeros((), DType::F32, &Device::Cpu)).transpose()
}

/// The teacher's activations on the batch the student sees, cut from the graph.
pub fn teacher_activations(teacher: &NetworkEnsemble, x: &Tensor) -> candle_core::Result<Activations> {
    let member = teacher.members.first().ok_or_else(|| candle_core::Error::Msg("the teacher has no members".into()))?;
    let a = member.activations(x)?;
    Ok(Activations { stages: a.stages.iter().map(Tensor::detach).collect(), penultimate: a.penultimate.detach(), logits: a.logits.detach() })
}

