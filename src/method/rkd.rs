//! `rkd`: KD plus relational KD (Park et al.): distance- and angle-potential Huber losses on the
//! penultimate features of each batch (the losses are in [`crate::distill::relational`]).

use std::sync::Arc;

use candle_core::Tensor;

use super::network::{candle_msg, teacher_activations, too_small, Unit};
use super::{Method, Needs, WeightedTerm};
use crate::distill::relational;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{ActivationLoss, Activations};
use crate::models::ModelError;

pub struct Rkd;

impl Method for Rkd {
    fn name(&self) -> &'static str {
        "rkd"
    }

    fn description(&self) -> &'static str {
        "KD plus relational KD (Park et al.): distance- and angle-potential Huber losses on the penultimate features of each batch"
    }

    fn needs(&self) -> Needs {
        Needs::NETWORK
    }

    fn settings(&self) -> &'static [&'static str] {
        &["rkd_distance_weight", "rkd_angle_weight"]
    }

    fn activation_term(&self, unit: &Unit) -> Result<Option<WeightedTerm>, ModelError> {
        let term = RkdTerm { teacher: unit.teacher.clone(), distance: unit.spec.rkd_distance_weight, angle: unit.spec.rkd_angle_weight };
        Ok(Some((1.0, Arc::new(term))))
    }
}

/// The distance and angle terms, weighted.
struct RkdTerm {
    teacher: Arc<NetworkEnsemble>,
    distance: f64,
    angle: f64,
}

impl ActivationLoss for RkdTerm {
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        if let Some(zero) = too_small(x)? {
            return Ok(zero);
        }
        let s = &student.penultimate;
        let t = teacher_activations(&self.teacher, x)?.penultimate;
        let d = relational::rkd_distance_loss(s, &t).map_err(candle_msg)?;
        let a = relational::rkd_angle_loss(s, &t).map_err(candle_msg)?;
        (d * self.distance)? + (a * self.angle)?
    }
}
