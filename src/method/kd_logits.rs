//! `kd-logits`: logit matching (fidelity studies). The student regresses the teacher's logits
//! by squared error instead of matching its tempered probabilities: the τ → ∞ limit of KD
//! (Hinton et al. 2015; Ba & Caruana 2014), which Guo et al. 2024 find helps generalisation at
//! the cost of fidelity.

use super::{Method, Needs};

pub struct KdLogits;

impl Method for KdLogits {
    fn name(&self) -> &'static str {
        "kd-logits"
    }

    fn description(&self) -> &'static str {
        "logit matching (fidelity studies): mean squared error between the student's and the teacher's centred logits on each batch as the student sees it, in place of the tempered KL; the hard-label term as in `kd`"
    }

    fn needs(&self) -> Needs {
        Needs { teacher_logits: true, ..Needs::PROBABILITIES }
    }
}
