//! Semiparametric KD (Dao et al. 2021): the teacher's p̂ is a plug-in estimate of the Bayes
//! probabilities p0. The arms differ in where p̂ comes from (the teacher fit on the same points,
//! or cross-fit: each point scored by a teacher fit on the other folds) and in the γ of the
//! corrected target g(p̂) + γ·(y − p̂) (see [`crate::distill::student_targets`]).

use super::{GammaRule, Method, Needs};

/// One plug-in arm: its source of p̂ and its γ rule.
pub struct PlugIn {
    name: &'static str,
    description: &'static str,
    crossfit: bool,
    gamma: GammaRule,
}

pub const KD: PlugIn = PlugIn {
    name: "kd",
    description: "plain KD: targets from a teacher fit on the same training points (γ = 0)",
    crossfit: false,
    gamma: GammaRule::Zero,
};
pub const CROSSFIT: PlugIn = PlugIn {
    name: "crossfit",
    description: "cross-fit KD: each training point's target comes from a teacher fit on the other folds (γ = 0)",
    crossfit: true,
    gamma: GammaRule::Zero,
};
pub const GAMMA_CONSTANT: PlugIn = PlugIn {
    name: "gamma-constant",
    description: "KD with a constant correction γ = distill.gamma toward the label",
    crossfit: false,
    gamma: GammaRule::Constant,
};
pub const GAMMA_CORRECTED: PlugIn = PlugIn {
    name: "gamma-corrected",
    description: "KD with the variance-aware correction γ = c·g′(p̂)/(c + (y − p̂)²), c chosen by cross-validation on labels",
    crossfit: false,
    gamma: GammaRule::VarianceAware,
};
pub const FULL_ORTHOGONAL: PlugIn = PlugIn {
    name: "full-orthogonal",
    description: "KD with the full orthogonal correction γ = g′(p̂)",
    crossfit: false,
    gamma: GammaRule::Full,
};
pub const ENHANCED: PlugIn = PlugIn {
    name: "enhanced",
    description: "enhanced KD: cross-fitting plus the variance-aware correction",
    crossfit: true,
    gamma: GammaRule::VarianceAware,
};

impl Method for PlugIn {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn needs(&self) -> Needs {
        Needs { out_of_fold: self.crossfit, ..Needs::PROBABILITIES }
    }

    fn gamma_rule(&self) -> GammaRule {
        self.gamma
    }
}
