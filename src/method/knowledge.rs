//! Tang et al.'s three levels of knowledge: partial teachers that keep only some of what the
//! teacher's probabilities say. Each arm's target is
//! (1 − α)·CE(labels) + α·τ²·CE(q, softmax(z/τ)) with q built from the tempered teacher p_t^τ,
//! so an arm differs from `kd` only in what q keeps (the builders are in
//! [`crate::distill::knowledge`]).

use super::{Method, Needs, TargetInputs};
use crate::distill::error::MethodError;
use crate::distill::{knowledge, tempered};
use crate::models::loss::LossTerm;
use crate::models::student::{one_hot, StudentTargets};

/// Which part of the teacher's knowledge q keeps.
#[derive(Clone, Copy)]
enum Keeps {
    /// Universe knowledge only: label smoothing with ε matched to the teacher's off-label mass.
    Universe,
    /// Universe + instance knowledge: the teacher's p_t,y per example.
    Instance,
    /// Universe + domain knowledge: the teacher's mean row over each class.
    Domain,
}

pub struct PartialTeacher {
    name: &'static str,
    description: &'static str,
    keeps: Keeps,
}

pub const LABEL_SMOOTHING: PartialTeacher = PartialTeacher {
    name: "label-smoothing",
    description: "universe knowledge only (Tang et al.): label smoothing with ε matched to the tempered teacher's mean off-label mass, in place of the teacher term",
    keeps: Keeps::Universe,
};
pub const KD_INSTANCE: PartialTeacher = PartialTeacher {
    name: "kd-instance",
    description: "universe + instance knowledge (KD-pt): the teacher's tempered p_t,y kept per example, the rest spread evenly over the other classes",
    keeps: Keeps::Instance,
};
pub const KD_CLASS_AVERAGED: PartialTeacher = PartialTeacher {
    name: "kd-class-averaged",
    description: "universe + domain knowledge (KD-sim): each example's target is the tempered teacher's mean row over its class",
    keeps: Keeps::Domain,
};

impl Method for PartialTeacher {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn needs(&self) -> Needs {
        Needs { network_student: true, ..Needs::PROBABILITIES }
    }

    fn targets(&self, t: &TargetInputs) -> Result<StudentTargets, MethodError> {
        let spec = t.distill;
        let tempered_teacher = tempered(t.teacher, spec.temperature);
        let q = match self.keeps {
            Keeps::Universe => {
                let eps = knowledge::matched_smoothing(tempered_teacher.view(), t.y)?;
                knowledge::label_smoothing_targets(t.y, t.n_classes, eps)?
            }
            Keeps::Instance => knowledge::instance_only_targets(tempered_teacher.view(), t.y)?,
            Keeps::Domain => knowledge::class_averaged_targets(tempered_teacher.view(), t.y, t.n_classes)?,
        };
        let soft = LossTerm::soft_ce(spec.alpha, spec.temperature, q);
        Ok(if spec.alpha >= 1.0 {
            StudentTargets::Terms(vec![soft])
        } else {
            StudentTargets::Terms(vec![LossTerm::soft_ce(1.0 - spec.alpha, 1.0, one_hot(t.y, t.n_classes)), soft])
        })
    }
}
