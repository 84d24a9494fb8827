//! The semiparametric protocol: each arm's student trains on the teacher's stored
//! probabilities on the training rows (cross-fit arms on the out-of-fold targets), with the
//! arm's γ rule, knowledge targets or loss.

use ndarray::{Array2, ArrayView2, Axis};

use super::{ArmError, ArmFit, Protocol};
use crate::data::Dataset;
use crate::distill::{self, DistillSpec, Gamma};
use crate::method::{Arm, GammaRule, TargetInputs};
use crate::models::student::{self, StudentSpec};
use crate::models::ModelError;

/// What the semiparametric students of one unit train on.
pub struct Semiparametric<'a> {
    pub distill: &'a DistillSpec,
    pub student: &'a StudentSpec,
    /// The student's fit and validation rows, and the fit rows' indices into the training rows.
    pub fit: &'a Dataset,
    pub val: &'a Dataset,
    pub fit_idx: &'a [usize],
    /// The teacher's probabilities on the training rows.
    pub teacher_train: &'a Array2<f64>,
    /// The cross-fit out-of-fold targets on the training rows; `None` when the cross-fit
    /// teacher failed (or no arm cross-fits).
    pub out_of_fold: Option<&'a Array2<f64>>,
    pub seed: u64,
}

impl Semiparametric<'_> {
    /// The arm's γ, and the c chosen by cross-validation for the variance-aware rule.
    fn gamma(&self, arm: Arm, teacher_fit: ArrayView2<f64>) -> Result<(Gamma, Option<f64>), ModelError> {
        Ok(match arm.gamma_rule() {
            GammaRule::Zero => (Gamma::Zero, None),
            GammaRule::Constant => (Gamma::Constant(self.distill.gamma), None),
            GammaRule::Full => (Gamma::Full, None),
            GammaRule::VarianceAware => {
                let (fit, val) = (self.fit, self.val);
                let (c, _) = distill::select_c(self.distill, self.student, fit.rows(), &fit.y, teacher_fit, val.x.view(), &val.y, fit.n_classes, self.seed)?;
                (Gamma::VarianceAware { c }, Some(c))
            }
        })
    }
}

impl Protocol for Semiparametric<'_> {
    fn fit_arm(&self, arm: Arm) -> Result<ArmFit, ArmError> {
        let source = if arm.needs().out_of_fold { self.out_of_fold } else { Some(self.teacher_train) };
        let source = source.ok_or_else(|| ArmError::Unavailable("cross-fit teacher failed".into()))?;
        let teacher_fit = source.select(Axis(0), self.fit_idx);
        let (fit, val, k) = (self.fit, self.val, self.fit.n_classes);
        let (gamma, chosen_c) = self.gamma(arm, teacher_fit.view())?;
        let inputs = TargetInputs { y: &fit.y, teacher: teacher_fit.view(), gamma, n_classes: k, distill: self.distill, student: self.student };
        let targets = arm.targets(&inputs).map_err(|e| ModelError::Fit { model: arm.name(), reason: e.to_string() })?;
        let fitted = student::fit(self.student, fit.rows(), &targets, val.x.view(), &val.y, k, self.seed)?;
        Ok(ArmFit { chosen_c, ..ArmFit::new(fitted) })
    }
}
