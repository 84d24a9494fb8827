//! How the students of a unit are trained. Every protocol answers one question, "train the
//! student of this arm", so the runner treats every unit alike: it builds the unit's protocol,
//! asks it for each arm's student, and scores what comes back.
//!
//! - [`Semiparametric`]: students on the teacher's stored probabilities (or cross-fit
//!   out-of-fold targets), γ-corrected where the arm corrects (Dao et al.).
//! - [`crate::fidelity::Unit`]: students distilled from the teacher networks on a stream
//!   (Stanton et al., Guo et al.).
//! - [`crate::method::network::Unit`] (adapted in `network.rs`): students trained from the
//!   teacher network itself (feature, relational, LONDON, RCO, MetaDistil arms).

mod network;
mod semiparametric;

use std::collections::BTreeMap;

pub use semiparametric::Semiparametric;

use crate::method::Arm;
use crate::loss_surface::LossSurface;
use crate::models::student::FittedStudent;
use crate::models::ModelError;

/// A trained student of one arm.
pub struct ArmFit {
    pub student: FittedStudent,
    /// Metrics only this protocol measures, beside the ones every student gets.
    pub metrics: BTreeMap<String, f64>,
    /// The c of a variance-aware γ, when the arm chose one.
    pub chosen_c: Option<f64>,
    /// A loss-surface slice, when the protocol drew one.
    pub surface: Option<LossSurface>,
}

impl ArmFit {
    pub fn new(student: FittedStudent) -> ArmFit {
        ArmFit { student, metrics: BTreeMap::new(), chosen_c: None, surface: None }
    }
}

/// Why an arm has no student.
#[derive(Debug)]
pub enum ArmError {
    /// What the arm trains on is missing (e.g. the cross-fit teacher failed); the row's reason.
    Unavailable(String),
    /// Training failed (e.g. diverged).
    Model(ModelError),
}

impl From<ModelError> for ArmError {
    fn from(e: ModelError) -> ArmError {
        ArmError::Model(e)
    }
}

impl std::fmt::Display for ArmError {
    /// The failed row's reason.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArmError::Unavailable(reason) => f.write_str(reason),
            ArmError::Model(e) => write!(f, "student: {e}"),
        }
    }
}

/// One unit's way of training students.
pub trait Protocol {
    /// Metrics the protocol adds to the `teacher` row (e.g. the teachers' attention).
    fn teacher_metrics(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// Trains the student of `arm`.
    fn fit_arm(&self, arm: Arm) -> Result<ArmFit, ArmError>;
}
