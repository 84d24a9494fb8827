//! The `[method]` section: the settings of the methods that read the teacher network. Each
//! key is read by the arms that name it in [`super::Method::settings`] (and
//! `power_iterations` also by [`super::network::Unit`]'s σ gap).

use serde::{Deserialize, Serialize};

use crate::distill::feature;

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

/// The `[method]` section: settings of the method arms (see the module comment for who reads
/// each key).
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
    /// Hold the quiz rows out of every arm's training, not only meta-distil's, so the arms
    /// compared train on the same rows.
    #[serde(default, skip_serializing_if = "is_false")]
    pub quiz_for_every_arm: bool,
    /// Share of the student's steps for which the teacher stays frozen before MetaDistil starts
    /// updating it (the paper's 150 of 240 epochs: 0.625).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub teacher_frozen_fraction: f64,
    /// The pilot update: the quiz gradient at the pilot student θ′ (true), or at the current
    /// student θ (false, the paper's "without pilot update" ablation).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub pilot_update: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}
fn yes() -> bool {
    true
}
fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
        if !(self.teacher_frozen_fraction >= 0.0 && self.teacher_frozen_fraction < 1.0) {
            return Err(("teacher_frozen_fraction", format!("must be in [0, 1), got {}", self.teacher_frozen_fraction)));
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

    pub(super) fn normalisation(&self) -> feature::Normalisation {
        match self.normalisation {
            NormalisationName::None => feature::Normalisation::None,
            NormalisationName::L2 => feature::Normalisation::L2,
            // BatchNorm1d's default eps.
            NormalisationName::BatchStandardise => feature::Normalisation::BatchStandardise { eps: 1e-5 },
        }
    }

    pub(super) fn feature_loss(&self) -> feature::FeatureLoss {
        match self.feature_loss {
            FeatureLossName::SquaredError => feature::FeatureLoss::SquaredError,
            FeatureLossName::LogSum => feature::FeatureLoss::LogSum { alpha: self.log_sum_alpha },
        }
    }
}
