//! A toy distillation method, as a program outside kdlab adds one: `label-copy` goes through
//! the teacher's path (it asks for teacher probabilities) but its target is the labels alone,
//! so its student must equal the `labels` student of the same seed, bit for bit. Were the arm
//! trained as plain KD under its name (the failure a closed list of methods invites), it would
//! not.

use kdlab::distill::error::MethodError;
use kdlab::method::{Method, TargetInputs};
use kdlab::models::loss::LossTerm;
use kdlab::models::student::{one_hot, StudentTargets};

pub struct LabelCopy;

impl Method for LabelCopy {
    fn name(&self) -> &'static str {
        "label-copy"
    }

    fn description(&self) -> &'static str {
        "toy: receives the teacher's probabilities and ignores them, fitting the labels"
    }

    fn targets(&self, t: &TargetInputs) -> Result<StudentTargets, MethodError> {
        assert_eq!(t.teacher.nrows(), t.y.len(), "the teacher's probabilities cover the fit rows");
        Ok(StudentTargets::Terms(vec![LossTerm::soft_ce(1.0, 1.0, one_hot(t.y, t.n_classes))]))
    }
}
