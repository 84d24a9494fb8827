//! `kd-independent`: the fidelity protocol's control (Stanton et al.): KD, as `kd`, from an
//! independent teacher, scored against the cell's teacher, so A(t, s′) sits beside A(t, s).

use super::{Method, Needs};

pub struct KdIndependent;

impl Method for KdIndependent {
    fn name(&self) -> &'static str {
        "kd-independent"
    }

    fn description(&self) -> &'static str {
        "control (fidelity studies): KD, as `kd`, from an independent teacher (another seed); its agreement and KL are measured against this cell's teacher, i.e. A(t, s′)"
    }

    fn needs(&self) -> Needs {
        Needs { independent_teacher: true, ..Needs::PROBABILITIES }
    }
}
