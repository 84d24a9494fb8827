//! Distillation methods that need the teacher network itself, not only its probabilities
//! (the `[method]` section): feature distillation through a projector (Miles & Mikolajczyk),
//! LONDON's Lipschitz matching (Shang et al.), relational (RKD) and graph (GKD) distillation,
//! route-constrained optimisation (RCO, Jin et al.) and the meta-learned teacher (MetaDistil,
//! Zhou et al.). The losses are in `distill::{feature, lipschitz_kd, relational, route, meta}`;
//! this module turns them into arms.
//!
//! Every arm of a unit starts from the same student initialisation and trains on the same rows
//! with the cell's KD terms, (1 − α)·CE(labels) + α·τ²·CE(p_t^τ, q^τ) as arm `kd`, plus its own
//! term, so an arm's difference from `kd` is its method's effect. `labels`, `kd` and the
//! knowledge arms run here too when a study names a method arm, so every arm carries the same
//! extra metrics.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::distill::{self, feature, lipschitz_kd, meta, relational, route, Arm, DistillSpec, Gamma};
use crate::metrics;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{distillation_loss, ActivationLoss, ActivationTerm, Activations, LossTerm};
use crate::models::tensor::{from_tensor, to_tensor};
use crate::models::student::{self, one_hot, FittedStudent, NeuralSpec, Network, StudentSpec, StudentTargets};
use crate::protocol::{ArmError, ArmFit, Protocol};
use crate::models::ModelError;
use crate::seed;

/// Feature normalisation as a study names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormalisationName {
    None,
    L2,
    BatchStandardise,
}

/// The feature distance as a study names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureLossName {
    SquaredError,
    LogSum,
}

/// The projector from student to teacher features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Projector {
    /// A learned linear map with bias, trained with the student.
    Linear,
    /// No projector (needs equal student and teacher feature widths).
    Identity,
}

/// The `[method]` section: settings of the method arms (each read only by its arm).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// `feature-kd`: weight of the feature term.
    #[serde(default = "one")]
    pub feature_weight: f64,
    #[serde(default = "default_projector")]
    pub projector: Projector,
    #[serde(default = "default_normalisation")]
    pub normalisation: NormalisationName,
    #[serde(default = "default_feature_loss")]
    pub feature_loss: FeatureLossName,
    /// α of the log-sum loss 2·log Σ|d|^α (the released ImageNet recipe: 4).
    #[serde(default = "default_log_sum_alpha")]
    pub log_sum_alpha: f64,
    /// `london` and `london-detached`: weight of the Lipschitz term.
    #[serde(default = "default_london_weight")]
    pub london_weight: f64,
    /// Power iterations per σ_max.
    #[serde(default = "default_power_iterations")]
    pub power_iterations: usize,
    /// `rkd`: weights of the distance and angle terms (the RKD paper's 25 and 50).
    #[serde(default = "default_rkd_distance")]
    pub rkd_distance_weight: f64,
    #[serde(default = "default_rkd_angle")]
    pub rkd_angle_weight: f64,
    /// `gkd`: weight, neighbours kept per row (all when absent) and graph power.
    #[serde(default = "one")]
    pub gkd_weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gkd_neighbours: Option<usize>,
    #[serde(default = "default_gkd_power")]
    pub gkd_power: u32,
    /// `rco`: anchors on the teacher's route (equal epoch intervals, the last the final teacher).
    #[serde(default = "default_rco_anchors")]
    pub rco_anchors: usize,
    /// `meta-distil`: share of the fit rows held out as the quiz set.
    #[serde(default = "default_quiz_fraction")]
    pub quiz_fraction: f64,
    /// η′ of the pilot SGD step.
    #[serde(default = "default_pilot_learning_rate")]
    pub pilot_learning_rate: f64,
    /// The teacher's SGD learning rate on the hypergradient.
    #[serde(default = "default_teacher_learning_rate")]
    pub teacher_learning_rate: f64,
    /// ε of the finite-difference Hessian–vector product, divided by ‖g_q‖ (as DARTS).
    #[serde(default = "default_finite_difference")]
    pub finite_difference: f64,
}

fn one() -> f64 {
    1.0
}
fn default_projector() -> Projector {
    Projector::Linear
}
fn default_normalisation() -> NormalisationName {
    NormalisationName::BatchStandardise
}
fn default_feature_loss() -> FeatureLossName {
    FeatureLossName::LogSum
}
fn default_log_sum_alpha() -> f64 {
    4.0
}
fn default_london_weight() -> f64 {
    0.1
}
fn default_power_iterations() -> usize {
    10
}
fn default_rkd_distance() -> f64 {
    25.0
}
fn default_rkd_angle() -> f64 {
    50.0
}
fn default_gkd_power() -> u32 {
    1
}
fn default_rco_anchors() -> usize {
    4
}
fn default_quiz_fraction() -> f64 {
    0.1
}
fn default_pilot_learning_rate() -> f64 {
    0.05
}
fn default_teacher_learning_rate() -> f64 {
    0.01
}
fn default_finite_difference() -> f64 {
    0.01
}

impl Default for MethodSpec {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl MethodSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let non_negative = [
            ("feature_weight", self.feature_weight),
            ("london_weight", self.london_weight),
            ("rkd_distance_weight", self.rkd_distance_weight),
            ("rkd_angle_weight", self.rkd_angle_weight),
            ("gkd_weight", self.gkd_weight),
            ("teacher_learning_rate", self.teacher_learning_rate),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err((key, format!("must be finite and >= 0, got {v}")));
            }
        }
        if !(self.log_sum_alpha.is_finite() && self.log_sum_alpha >= 1.0) {
            return Err(("log_sum_alpha", format!("must be >= 1 (below 1 the gradient at 0 is infinite), got {}", self.log_sum_alpha)));
        }
        if !(1..=1000).contains(&self.power_iterations) {
            return Err(("power_iterations", format!("must be between 1 and 1000, got {}", self.power_iterations)));
        }
        if self.gkd_neighbours == Some(0) {
            return Err(("gkd_neighbours", "must be at least 1".into()));
        }
        if !(1..=8).contains(&self.gkd_power) {
            return Err(("gkd_power", format!("must be between 1 and 8, got {}", self.gkd_power)));
        }
        if self.rco_anchors == 0 {
            return Err(("rco_anchors", "must be at least 1".into()));
        }
        if !(self.quiz_fraction > 0.0 && self.quiz_fraction < 0.5) {
            return Err(("quiz_fraction", format!("must be in (0, 0.5), got {}", self.quiz_fraction)));
        }
        for (key, v) in [("pilot_learning_rate", self.pilot_learning_rate), ("finite_difference", self.finite_difference)] {
            if !(v.is_finite() && v > 0.0) {
                return Err((key, format!("must be finite and > 0, got {v}")));
            }
        }
        Ok(())
    }

    fn normalisation(&self) -> feature::Normalisation {
        match self.normalisation {
            NormalisationName::None => feature::Normalisation::None,
            NormalisationName::L2 => feature::Normalisation::L2,
            // BatchNorm1d's default eps.
            NormalisationName::BatchStandardise => feature::Normalisation::BatchStandardise { eps: 1e-5 },
        }
    }

    fn feature_loss(&self) -> feature::FeatureLoss {
        match self.feature_loss {
            FeatureLossName::SquaredError => feature::FeatureLoss::SquaredError,
            FeatureLossName::LogSum => feature::FeatureLoss::LogSum { alpha: self.log_sum_alpha },
        }
    }
}

/// Rows of the test set the geometry and Lipschitz metrics read (B³ angle terms and B × B
/// distance matrices stay small).
const PROBE_ROWS: usize = 256;

/// An activation loss with its weight in the student's loss.
type WeightedTerm = (f64, Arc<dyn ActivationLoss>);

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
    pub teacher: Arc<NetworkEnsemble>,
    pub seed: u64,
}

/// A trained method-arm student and its extra metrics.
pub struct MethodFit {
    pub network: Network,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl Protocol for Unit<'_> {
    fn fit_arm(&self, arm: Arm) -> Result<ArmFit, ArmError> {
        let fitted = self.train_arm(arm)?;
        Ok(ArmFit { metrics: fitted.metrics, ..ArmFit::new(FittedStudent::Network(fitted.network)) })
    }
}

fn method_error(e: distill::error::MethodError) -> ModelError {
    ModelError::Fit { model: "distillation method", reason: e.to_string() }
}

fn candle_msg(e: distill::error::MethodError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl Unit<'_> {
    fn k(&self) -> usize {
        self.fit.n_classes
    }

    /// The teacher's first member: the network whose activations feature, relational and
    /// Lipschitz terms read.
    fn member(&self) -> Result<&Network, ModelError> {
        self.teacher.members.first().ok_or_else(|| ModelError::Fit { model: "distillation method", reason: "the teacher has no members".into() })
    }

    /// The label and KD terms of `arm` from teacher probabilities `p_t` on the fit rows.
    fn target_terms(&self, arm: Arm, p_t: ArrayView2<f64>, y: &[usize]) -> Result<Vec<LossTerm>, ModelError> {
        let student = StudentSpec::Neural(self.student.clone());
        let targets = match arm {
            Arm::Labels => distill::student_targets(y, None, Gamma::Zero, self.k(), self.distill, &student),
            _ => match distill::knowledge_targets(arm, y, p_t, self.k(), self.distill).map_err(method_error)? {
                Some(t) => t,
                None => distill::student_targets(y, Some(p_t), Gamma::Zero, self.k(), self.distill, &student),
            },
        };
        match targets {
            StudentTargets::Terms(terms) => Ok(terms),
            StudentTargets::Regression { .. } => Err(ModelError::Fit { model: "distillation method", reason: "method arms need a network student".into() }),
        }
    }

    fn train(&self, terms: &[LossTerm], x: ArrayView2<f64>, spec: &NeuralSpec, start: Option<&[Tensor]>) -> Result<Network, ModelError> {
        student::train_from(spec, x, terms, self.val.x.view(), &self.val.y, self.k(), self.seed, start)
    }

    /// Trains the student of `arm`.
    pub fn train_arm(&self, arm: Arm) -> Result<MethodFit, ModelError> {
        let p_t = self.teacher.try_predict_proba(self.fit.x.view())?;
        let network = match arm {
            Arm::Rco => self.fit_rco()?,
            Arm::MetaDistil => self.fit_meta()?,
            _ => {
                let mut terms = self.target_terms(arm, p_t.view(), &self.fit.y)?;
                if let Some((weight, term)) = self.activation_term(arm)? {
                    terms.push(LossTerm::new(weight, ActivationTerm(term)));
                }
                self.train(&terms, self.fit.x.view(), self.student, None)?
            }
        };
        let metrics = self.measure(&network, p_t.view())?;
        Ok(MethodFit { network, metrics })
    }

    /// The activation term of a feature, relational or Lipschitz arm, with its weight.
    fn activation_term(&self, arm: Arm) -> Result<Option<WeightedTerm>, ModelError> {
        let teacher = self.teacher.clone();
        Ok(match arm {
            Arm::FeatureKd => {
                let (s, t) = self.probe_activations()?;
                let (d_s, d_t) = (s.penultimate.dim(1)?, t.penultimate.dim(1)?);
                let projector = match self.spec.projector {
                    Projector::Identity if d_s != d_t => {
                        return Err(ModelError::Fit { model: "feature-kd", reason: format!("an identity projector needs equal feature widths; the student has {d_s}, the teacher {d_t}") })
                    }
                    Projector::Identity => None,
                    Projector::Linear => Some(linear_projector(d_s, d_t, seed::derive(self.seed, &["projector"]))?),
                };
                Some((self.spec.feature_weight, Arc::new(FeatureTerm { teacher, projector, norm: self.spec.normalisation(), loss: self.spec.feature_loss() })))
            }
            Arm::Rkd => Some((1.0, Arc::new(RelationalTerm::Rkd { teacher, distance: self.spec.rkd_distance_weight, angle: self.spec.rkd_angle_weight }))),
            Arm::Gkd => Some((self.spec.gkd_weight, Arc::new(RelationalTerm::Gkd { teacher, neighbours: self.spec.gkd_neighbours, power: self.spec.gkd_power }))),
            Arm::London | Arm::LondonDetached => {
                let (s, t) = self.probe_activations()?;
                let (s, t) = (s.stages.len(), t.stages.len());
                if s != t {
                    return Err(ModelError::Fit { model: arm.name(), reason: format!("LONDON matches one σ per stage pair, so student and teacher need as many hidden layers; the student has {s}, the teacher {t}") });
                }
                Some((self.spec.london_weight, Arc::new(LondonTerm { teacher, iterations: self.spec.power_iterations, differentiable: arm == Arm::London })))
            }
            _ => None,
        })
    }

    fn probe(&self) -> Result<Tensor, ModelError> {
        let rows = self.test.len().min(PROBE_ROWS);
        Ok(to_tensor(self.test.x.slice(ndarray::s![..rows, ..]))?)
    }

    /// The untrained student's and the teacher's activations on the probe rows (for the
    /// widths and depths a method term needs to agree on).
    fn probe_activations(&self) -> Result<(Activations, Activations), ModelError> {
        let probe = self.probe()?;
        let student = student::initial_network(self.student, self.fit.x.ncols(), self.k(), self.seed)?;
        Ok((student.activations(&probe)?, self.member()?.activations(&probe)?))
    }

    /// RCO: the student epochs split over stages, stage i distilled from the teacher's
    /// checkpoint at anchor i (equal epoch intervals; the last stage the final teacher), each
    /// stage starting from the previous stage's weights. Optimiser state restarts per stage.
    /// The route is the first member's, so with several members only that member is followed.
    fn fit_rco(&self) -> Result<Network, ModelError> {
        let member = self.member()?;
        if member.route.is_empty() {
            return Err(ModelError::Fit { model: "rco", reason: "the teacher kept no checkpoints".into() });
        }
        let anchors = route::equal_interval_anchors(member.route.len(), self.spec.rco_anchors).map_err(method_error)?;
        let epochs = route::stage_epochs(self.student.epochs, anchors.len()).map_err(method_error)?;
        let mut start: Option<Vec<Tensor>> = None;
        let mut network = None;
        for (i, (&anchor, &stage_epochs)) in anchors.iter().zip(&epochs).enumerate() {
            let anchor_net = student::initial_network(&self.teacher_network, self.fit.x.ncols(), self.k(), self.seed)?;
            // The last stage uses the final teacher (which differs from the last checkpoint when
            // the teacher was early-stopped).
            if i + 1 == anchors.len() {
                anchor_net.set_weights(&member.weights()?)?;
            } else {
                anchor_net.set_weights(&member.route[anchor])?;
            }
            // Scored as the cell's teacher is (its reduction's f64 softmax), so a single anchor
            // gives exactly `kd`'s targets.
            let anchor = NetworkEnsemble { members: vec![anchor_net], reduction: self.teacher.reduction };
            let p = anchor.try_predict_proba(self.fit.x.view())?;
            let terms = self.target_terms(Arm::Kd, p.view(), &self.fit.y)?;
            let spec = NeuralSpec { epochs: stage_epochs, ..self.student.clone() };
            let net = self.train(&terms, self.fit.x.view(), &spec, start.as_deref())?;
            start = Some(net.weights()?);
            network = Some(net);
        }
        network.ok_or_else(|| ModelError::Fit { model: "rco", reason: "no stages".into() })
    }

    /// MetaDistil with the pilot update: per batch, a plain SGD pilot step of the student, the
    /// pilot's cross-entropy on a quiz batch, a teacher SGD step on the finite-difference
    /// hypergradient, then the real student step with the updated teacher. The quiz rows are
    /// carved from the fit rows and never trained on; the student trains on the rest for
    /// exactly `epochs` at a constant learning rate (no early stopping). Only the teacher's
    /// first member is updated (a copy; the cell's teacher is unchanged).
    fn fit_meta(&self) -> Result<Network, ModelError> {
        let k = self.k();
        let (train_idx, quiz_idx) = meta::carve_quiz(self.fit.len(), self.spec.quiz_fraction, Some(&self.fit.y), seed::derive(self.seed, &["quiz"])).map_err(method_error)?;
        let train = self.fit.select(&train_idx);
        let quiz = self.fit.select(&quiz_idx);
        let teacher = student::initial_network(&self.teacher_network, self.fit.x.ncols(), k, self.seed)?;
        teacher.set_weights(&self.member()?.weights()?)?;
        let net = student::initial_network(self.student, self.fit.x.ncols(), k, self.seed)?;
        let svars = net.vars();
        let tvars = teacher.vars();
        let mut opt = crate::models::optim::Opt::new(self.student.optimizer, svars.clone(), self.student.learning_rate, self.student.momentum.unwrap_or(0.9), self.student.weight_decay)?;
        let (alpha, t) = (self.distill.alpha, self.distill.temperature);
        let x_all = to_tensor(train.x.view())?;
        let y_all = to_tensor(one_hot(&train.y, k).view())?;
        let xq_all = to_tensor(quiz.x.view())?;
        let yq_all = to_tensor(one_hot(&quiz.y, k).view())?;
        // L = (1 − α)·CE(y, q) + α·τ²·CE(p_t^τ, q^τ); the teacher's logits keep their graph when
        // `teacher_grad` (the hypergradient needs ∇_θT).
        let loss_of = |x: &Tensor, y: &Tensor, teacher_grad: bool| -> candle_core::Result<Tensor> {
            let z_s = net.activations(x)?.logits;
            let z_t = teacher.activations(x)?.logits;
            let z_t = if teacher_grad { z_t } else { z_t.detach() };
            let p_t = candle_nn::ops::softmax(&(z_t / t)?, candle_core::D::Minus1)?;
            let hard = distillation_loss(&z_s, y, 1.0)?;
            let soft = distillation_loss(&z_s, &p_t, t)?;
            (hard * (1.0 - alpha))? + (soft * alpha)?
        };
        let mut rng = seed::rng(seed::derive(self.seed, &["meta-batches"]));
        let mut order: Vec<u32> = (0..train.len() as u32).collect();
        let quiz_rows: Vec<u32> = (0..quiz.len() as u32).collect();
        for epoch in 1..=self.student.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(self.student.batch_size) {
                let idx = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
                let (xb, yb) = (x_all.index_select(&idx, 0)?, y_all.index_select(&idx, 0)?);
                let q: Vec<u32> = quiz_rows.choose_multiple(&mut rng, self.student.batch_size.min(quiz_rows.len())).copied().collect();
                let qidx = Tensor::from_slice(&q, q.len(), &Device::Cpu)?;
                let (xq, yq) = (xq_all.index_select(&qidx, 0)?, yq_all.index_select(&qidx, 0)?);
                let theta_s = net.weights()?;
                // Pilot step θ_S′ = θ_S − η′∇L, then g_q = ∇ CE(quiz) at θ_S′.
                let grads = loss_of(&xb, &yb, false)?.backward()?;
                for v in &svars {
                    if let Some(g) = grads.get(v) {
                        v.set(&(v.as_tensor() - (g * self.spec.pilot_learning_rate)?)?)?;
                    }
                }
                let quiz_grads = distillation_loss(&net.activations(&xq)?.logits, &yq, 1.0)?.backward()?;
                let g_q = flatten(&svars, |v| quiz_grads.get(v).cloned())?;
                let norm = g_q.dot(&g_q).sqrt();
                net.set_weights(&theta_s)?;
                if norm > 0.0 && norm.is_finite() && self.spec.teacher_learning_rate > 0.0 {
                    let eps = self.spec.finite_difference / norm;
                    let theta = flatten(&svars, |v| Some(v.as_tensor().clone()))?;
                    let hyper = meta::finite_difference_hypergradient(
                        |at| {
                            unflatten_into(&svars, at).map_err(distill::error::MethodError::from)?;
                            let g = loss_of(&xb, &yb, true)?.backward()?;
                            Ok(flatten(&tvars, |v| g.get(v).cloned())?)
                        },
                        theta.view(),
                        g_q.view(),
                        self.spec.pilot_learning_rate,
                        eps,
                    )
                    .map_err(method_error)?;
                    net.set_weights(&theta_s)?;
                    let current = flatten(&tvars, |v| Some(v.as_tensor().clone()))?;
                    unflatten_into(&tvars, (&current - &(hyper * self.spec.teacher_learning_rate)).view())?;
                }
                // The real step with the updated teacher.
                let loss = loss_of(&xb, &yb, false)?;
                let value = loss.to_scalar::<f32>()? as f64;
                if !value.is_finite() {
                    return Err(ModelError::Diverged { epoch, loss: value });
                }
                opt.backward_step(&loss)?;
            }
        }
        Ok(Network { best_epoch: self.student.epochs, epochs_run: self.student.epochs, ..net })
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

/// A linear projector d_s → d_t with PyTorch's default initialisation U(±1/√d_s).
fn linear_projector(d_s: usize, d_t: usize, seed: u64) -> candle_core::Result<(Var, Var)> {
    let mut rng = seed::rng(seed);
    let bound = 1.0 / (d_s as f64).sqrt();
    let w: Vec<f32> = (0..d_s * d_t).map(|_| rng.gen_range(-bound..bound) as f32).collect();
    let b: Vec<f32> = (0..d_t).map(|_| rng.gen_range(-bound..bound) as f32).collect();
    Ok((Var::from_tensor(&Tensor::from_vec(w, (d_s, d_t), &Device::Cpu)?)?, Var::from_tensor(&Tensor::from_vec(b, d_t, &Device::Cpu)?)?))
}

/// Batches smaller than this (a last partial batch) contribute no activation term: one row
/// has no pairwise distances, and batch statistics of two rows are all ±1.
const MIN_RELATIONAL_BATCH: usize = 3;

fn too_small(x: &Tensor) -> candle_core::Result<Option<Tensor>> {
    (x.dim(0)? < MIN_RELATIONAL_BATCH).then(|| Tensor::zeros((), DType::F32, &Device::Cpu)).transpose()
}

/// The teacher's activations on the batch the student sees, cut from the graph.
fn teacher_activations(teacher: &NetworkEnsemble, x: &Tensor) -> candle_core::Result<Activations> {
    let member = teacher.members.first().ok_or_else(|| candle_core::Error::Msg("the teacher has no members".into()))?;
    let a = member.activations(x)?;
    Ok(Activations { stages: a.stages.iter().map(Tensor::detach).collect(), penultimate: a.penultimate.detach(), logits: a.logits.detach() })
}

/// SRD: D(N(Z_s W + b) − N(Z_t)) on the penultimate features.
struct FeatureTerm {
    teacher: Arc<NetworkEnsemble>,
    projector: Option<(Var, Var)>,
    norm: feature::Normalisation,
    loss: feature::FeatureLoss,
}

impl ActivationLoss for FeatureTerm {
    fn vars(&self) -> Vec<Var> {
        self.projector.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        if let Some(zero) = too_small(x)? {
            return Ok(zero);
        }
        let t = teacher_activations(&self.teacher, x)?;
        let result = match &self.projector {
            Some((w, b)) => feature::feature_distillation_loss(&student.penultimate, w.as_tensor(), Some(b.as_tensor()), &t.penultimate, self.norm, self.loss),
            None => {
                let d = student.penultimate.dim(1)?;
                let eye = Tensor::eye(d, student.penultimate.dtype(), &Device::Cpu)?;
                feature::feature_distillation_loss(&student.penultimate, &eye, None, &t.penultimate, self.norm, self.loss)
            }
        };
        result.map_err(candle_msg)
    }
}

/// RKD (distance and angle) or GKD on the penultimate features.
enum RelationalTerm {
    Rkd { teacher: Arc<NetworkEnsemble>, distance: f64, angle: f64 },
    Gkd { teacher: Arc<NetworkEnsemble>, neighbours: Option<usize>, power: u32 },
}

impl ActivationLoss for RelationalTerm {
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        if let Some(zero) = too_small(x)? {
            return Ok(zero);
        }
        let s = &student.penultimate;
        match self {
            RelationalTerm::Rkd { teacher, distance, angle } => {
                let t = teacher_activations(teacher, x)?.penultimate;
                let d = relational::rkd_distance_loss(s, &t).map_err(candle_msg)?;
                let a = relational::rkd_angle_loss(s, &t).map_err(candle_msg)?;
                (d * *distance)? + (a * *angle)?
            }
            RelationalTerm::Gkd { teacher, neighbours, power } => {
                let t = teacher_activations(teacher, x)?.penultimate;
                let b = s.dim(0)?;
                relational::gkd_loss(s, &t, neighbours.map(|k| k.clamp(1, b - 1)), *power).map_err(candle_msg)
            }
        }
    }
}

/// LONDON: Σ_l MSE(σ_l^s, σ_l^t)/2^{L−1−l} over stage pairs; `differentiable = false` is the
/// released behaviour, where no gradient reaches the student.
struct LondonTerm {
    teacher: Arc<NetworkEnsemble>,
    iterations: usize,
    differentiable: bool,
}

impl ActivationLoss for LondonTerm {
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        let t = teacher_activations(&self.teacher, x)?;
        let sig_s = lipschitz_kd::stage_singular_values(&stage_vectors(student)?, self.iterations, self.differentiable).map_err(candle_msg)?;
        let sig_t = lipschitz_kd::stage_singular_values(&stage_vectors(&t)?, self.iterations, false).map_err(candle_msg)?;
        lipschitz_kd::london_loss(&sig_s, &sig_t).map_err(candle_msg)
    }
}

/// The variables' values (or their gradients, zeros where absent) as one f64 vector.
fn flatten(vars: &[Var], value: impl Fn(&Var) -> Option<Tensor>) -> candle_core::Result<Array1<f64>> {
    let mut out = Vec::new();
    for v in vars {
        match value(v) {
            Some(t) => out.extend(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?),
            None => out.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
        }
    }
    Ok(Array1::from(out))
}

/// Sets the variables from one f64 vector, in order.
fn unflatten_into(vars: &[Var], values: ndarray::ArrayView1<f64>) -> candle_core::Result<()> {
    let mut at = 0;
    for v in vars {
        let n = v.as_tensor().elem_count();
        let part: Vec<f32> = values.slice(ndarray::s![at..at + n]).iter().map(|&x| x as f32).collect();
        v.set(&Tensor::from_vec(part, v.as_tensor().shape(), &Device::Cpu)?)?;
        at += n;
    }
    Ok(())
}
