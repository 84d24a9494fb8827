//! `gkd`: KD plus graph KD (Lassance et al.): squared difference of the normalised
//! cosine-similarity graphs of the batch (the loss is in [`crate::distill::relational`]).

use std::sync::Arc;

use candle_core::Tensor;

use super::network::{candle_msg, teacher_activations, too_small, Unit};
use super::{Method, Needs, WeightedTerm};
use crate::distill::relational;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{ActivationLoss, Activations};
use crate::models::ModelError;

pub struct Gkd;

impl Method for Gkd {
    fn name(&self) -> &'static str {
        "gkd"
    }

    fn description(&self) -> &'static str {
        "KD plus graph KD (Lassance et al.): squared difference of the normalised cosine-similarity graphs of the batch"
    }

    fn needs(&self) -> Needs {
        Needs::NETWORK
    }

    fn settings(&self) -> &'static [&'static str] {
        &["gkd_weight", "gkd_neighbours", "gkd_power"]
    }

    fn activation_term(&self, unit: &Unit) -> Result<Option<WeightedTerm>, ModelError> {
        let term = GkdTerm { teacher: unit.teacher.clone(), neighbours: unit.spec.gkd_neighbours, power: unit.spec.gkd_power };
        Ok(Some((unit.spec.gkd_weight, Arc::new(term))))
    }
}

/// The graph term: neighbours kept per row (all when `None`) and the graph's power.
struct GkdTerm {
    teacher: Arc<NetworkEnsemble>,
    neighbours: Option<usize>,
    power: u32,
}

impl ActivationLoss for GkdTerm {
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        if let Some(zero) = too_small(x)? {
            return Ok(zero);
        }
        let s = &student.penultimate;
        let t = teacher_activations(&self.teacher, x)?.penultimate;
        let b = s.dim(0)?;
        relational::gkd_loss(s, &t, self.neighbours.map(|k| k.clamp(1, b - 1)), self.power).map_err(candle_msg)
    }
}
