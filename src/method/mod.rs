//! Distillation methods: what an arm a study names in `arms` is, each in one file.
//!
//! A method says what it needs of the teacher ([`Needs`]), its γ rule and the rate the
//! semiparametric theory predicts for it, the `[method]` keys it reads, whether the cell's
//! networks suit it, how it builds its student's targets from labels and teacher
//! probabilities, and, for methods that read the teacher network, its extra loss term or its
//! own training procedure. The semiparametric and network protocols ask the arm and never match
//! on its name; the fidelity protocol runs its own four arms (`labels`, `kd`, `kd-logits`, the
//! control).
//!
//! Adding a method is one file implementing [`Method`] and one line in [`BUILTIN`] (a program
//! or a test can also register its own with [`crate::registry::Registry::with_method`]).
//!
//! - [`labels`]: no distillation; [`plug_in`]: plain, cross-fit and γ-corrected KD (Dao et al.);
//! - [`kd_independent`]: the fidelity protocol's control; [`kd_logits`]: its logit-matching arm;
//! - [`knowledge`]: Tang et al.'s partial teachers;
//! - [`feature_kd`], [`london`], [`rkd`], [`gkd`], [`rco`], [`meta_distil`]: methods that read the
//!   teacher network, trained by [`network::Unit`].

pub mod feature_kd;
pub mod gkd;
pub mod kd_independent;
pub mod kd_logits;
pub mod knowledge;
pub mod labels;
pub mod london;
pub mod meta_distil;
pub mod network;
pub mod plug_in;
pub mod rco;
pub mod rkd;
pub mod settings;

use std::sync::Arc;

use ndarray::ArrayView2;
use serde::{Serialize, Serializer};

use crate::distill::{self, error::MethodError, DistillSpec, Gamma};
use crate::models::loss::ActivationLoss;
use crate::models::student::{NeuralSpec, Network, StudentSpec, StudentTargets};
use crate::models::ModelError;
pub use settings::MethodSpec;

/// Every method kdlab ships, in the order `kdlab list` shows them.
pub const BUILTIN: &[Arm] = &[
    Arm(&labels::Labels),
    Arm(&plug_in::KD),
    Arm(&plug_in::CROSSFIT),
    Arm(&plug_in::GAMMA_CONSTANT),
    Arm(&plug_in::GAMMA_CORRECTED),
    Arm(&plug_in::FULL_ORTHOGONAL),
    Arm(&plug_in::ENHANCED),
    Arm(&kd_independent::KdIndependent),
    Arm(&kd_logits::KdLogits),
    Arm(&knowledge::LABEL_SMOOTHING),
    Arm(&knowledge::KD_INSTANCE),
    Arm(&knowledge::KD_CLASS_AVERAGED),
    Arm(&feature_kd::FeatureKd),
    Arm(&london::LONDON),
    Arm(&london::LONDON_DETACHED),
    Arm(&rkd::Rkd),
    Arm(&gkd::Gkd),
    Arm(&rco::Rco),
    Arm(&meta_distil::MetaDistil),
];

/// The arms the protocols themselves refer to.
pub const LABELS: Arm = Arm(&labels::Labels);
pub const KD: Arm = Arm(&plug_in::KD);
pub const KD_INDEPENDENT: Arm = Arm(&kd_independent::KdIndependent);
pub const KD_LOGITS: Arm = Arm(&kd_logits::KdLogits);

/// What an arm reads of the teacher, and what it trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// The teacher's probabilities on the fit rows (every arm but `labels`).
    pub teacher: bool,
    /// Cross-fit (out-of-fold) probabilities in place of the in-sample ones.
    pub out_of_fold: bool,
    /// The teacher network itself: activations, weights (trained by [`network::Unit`]).
    pub teacher_network: bool,
    /// The teacher's checkpoints along its training (RCO's route).
    pub teacher_checkpoints: bool,
    /// A second teacher from another seed (the fidelity protocol's control).
    pub independent_teacher: bool,
    /// The teacher's logits on each batch as the student sees it (logit matching, which only
    /// the fidelity protocol trains: it keeps the teacher network beside the student).
    pub teacher_logits: bool,
    /// A network student (the arm's loss is a sum of network loss terms).
    pub network_student: bool,
}

impl Needs {
    /// Plain KD's needs: the teacher's in-sample probabilities.
    pub const PROBABILITIES: Needs =
        Needs { teacher: true, out_of_fold: false, teacher_network: false, teacher_checkpoints: false, independent_teacher: false, teacher_logits: false, network_student: false };
    /// A method that reads the teacher network and trains a network student.
    pub const NETWORK: Needs = Needs { teacher_network: true, network_student: true, ..Needs::PROBABILITIES };

    /// Why these needs cannot be met together, if they cannot: every teacher-derived need
    /// needs a teacher, the checkpoints and the network come with a network student, and
    /// cross-fitting and the independent teacher have no network unit.
    pub fn conflict(&self) -> Option<&'static str> {
        let teacherless = !self.teacher && (self.out_of_fold || self.teacher_network || self.teacher_checkpoints || self.independent_teacher || self.teacher_logits);
        if teacherless {
            return Some("an arm that reads the teacher needs `teacher`");
        }
        if self.teacher_checkpoints && !self.teacher_network {
            return Some("the teacher's checkpoints come with `teacher_network`");
        }
        if self.teacher_network && !self.network_student {
            return Some("an arm that reads the teacher network trains a network student");
        }
        if self.teacher_network && (self.out_of_fold || self.independent_teacher || self.teacher_logits) {
            return Some("arms that read the teacher network have no cross-fitting, independent teacher or logit matching");
        }
        None
    }
}

/// Which γ an arm uses in the corrected target g(p̂) + γ·(y − p̂).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GammaRule {
    /// γ = 0: plain KD.
    Zero,
    /// γ = `distill.gamma`.
    Constant,
    /// γ = c·g′(p̂)/(c + (y − p̂)²), c chosen by cross-validation on labels.
    VarianceAware,
    /// γ = g′(p̂): the full orthogonal correction.
    Full,
}

impl GammaRule {
    /// The power of the teacher's squared error that the student's error tracks, by the
    /// semiparametric theory: to the first power without correction, to the second with one.
    pub fn predicted_rate(self) -> f64 {
        match self {
            GammaRule::Zero => 1.0,
            GammaRule::Constant | GammaRule::VarianceAware | GammaRule::Full => 2.0,
        }
    }
}

/// What a method's targets are built from: the fit rows' labels and the teacher's
/// probabilities on them (in-sample or out-of-fold, as the arm needs), with the resolved γ.
pub struct TargetInputs<'a> {
    pub y: &'a [usize],
    pub teacher: ArrayView2<'a, f64>,
    pub gamma: Gamma,
    pub n_classes: usize,
    pub distill: &'a DistillSpec,
    pub student: &'a StudentSpec,
}

/// Why a cell's networks do not suit an arm, with what to change.
pub struct Misfit {
    pub message: String,
    pub hint: Option<String>,
}

/// An activation loss with its weight in the student's loss.
pub type WeightedTerm = (f64, Arc<dyn ActivationLoss>);

/// A distillation method: one arm a study can name. What a method overrides must agree with
/// its [`Needs`]: `fits`, `activation_term` and `train` are called only for methods that need
/// the teacher network (they train in [`network::Unit`]); a method whose `targets` are loss
/// terms needs a network student.
pub trait Method: Sync {
    /// The name a study's `arms` and the results' `arm` column use.
    fn name(&self) -> &'static str;

    /// One sentence for the report's list of arms.
    fn description(&self) -> &'static str;

    /// What the arm reads of the teacher, and what it trains.
    fn needs(&self) -> Needs {
        Needs::PROBABILITIES
    }

    /// The γ of its corrected target; the theory's predicted rate follows from it.
    fn gamma_rule(&self) -> GammaRule {
        GammaRule::Zero
    }

    /// The `[method]` keys it reads.
    fn settings(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the cell's student and teacher networks suit it, where their widths are
    /// written out (checked when the study is read).
    fn fits(&self, _student: &NeuralSpec, _teacher: &NeuralSpec, _settings: &MethodSpec) -> Result<(), Misfit> {
        Ok(())
    }

    /// The student's targets on its fit rows (default: the corrected KD target with the
    /// arm's γ, or the labels alone when the arm needs no teacher).
    fn targets(&self, t: &TargetInputs) -> Result<StudentTargets, MethodError> {
        Ok(distill::student_targets(t.y, self.needs().teacher.then_some(t.teacher), t.gamma, t.n_classes, t.distill, t.student))
    }

    /// The extra loss term of a method that reads the teacher's activations (needs
    /// `teacher_network`).
    fn activation_term(&self, _unit: &network::Unit) -> Result<Option<WeightedTerm>, ModelError> {
        Ok(None)
    }

    /// A method with its own training procedure (needs `teacher_network`) trains here;
    /// `None`: the standard loop on its targets plus its activation term.
    fn train(&self, _unit: &network::Unit) -> Option<Result<Network, ModelError>> {
        None
    }
}

/// An arm: a handle on a registered method, compared, hashed and written by its name.
#[derive(Clone, Copy)]
pub struct Arm(pub &'static dyn Method);

impl std::ops::Deref for Arm {
    type Target = dyn Method;
    fn deref(&self) -> &(dyn Method + 'static) {
        self.0
    }
}

impl PartialEq for Arm {
    fn eq(&self, other: &Arm) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Arm {}

impl std::hash::Hash for Arm {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name().hash(state)
    }
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl Serialize for Arm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_unique_and_kebab_case() {
        let mut names: Vec<&str> = BUILTIN.iter().map(|a| a.name()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "two methods share a name");
    }

    #[test]
    fn builtin_needs_are_consistent() {
        for arm in BUILTIN {
            assert_eq!(arm.needs().conflict(), None, "{}", arm.name());
        }
        let checkpoints_alone = Needs { teacher_checkpoints: true, ..Needs::PROBABILITIES };
        assert!(checkpoints_alone.conflict().is_some());
    }

    #[test]
    fn only_correcting_arms_predict_the_second_order_rate() {
        for arm in BUILTIN {
            let corrects = arm.gamma_rule() != GammaRule::Zero;
            assert_eq!(arm.gamma_rule().predicted_rate(), if corrects { 2.0 } else { 1.0 }, "{}", arm.name());
        }
    }
}
