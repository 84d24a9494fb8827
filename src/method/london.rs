//! `london` and `london-detached`: KD plus LONDON's Lipschitz matching (Shang et al.):
//! Σ_l MSE(σ_l^s, σ_l^t)/2^{L−1−l} over the stage pairs' transmitting-matrix spectral norms
//! (computed in [`crate::distill::lipschitz_kd`]).

use std::sync::Arc;

use candle_core::Tensor;

use super::network::{candle_msg, stage_vectors, teacher_activations, Unit};
use super::{Method, MethodSpec, Misfit, Needs, WeightedTerm};
use crate::distill::lipschitz_kd;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{ActivationLoss, Activations};
use crate::models::student::NeuralSpec;
use crate::models::ModelError;

/// LONDON with the student's σ differentiable, or as released (computed without gradient, so
/// the term adds a constant and cannot change training).
pub struct London {
    name: &'static str,
    description: &'static str,
    differentiable: bool,
}

pub const LONDON: London = London {
    name: "london",
    description: "KD plus LONDON with the gradient flowing: matches σ_max of the student's and teacher's transmitting matrices between consecutive stages",
    differentiable: true,
};
pub const LONDON_DETACHED: London = London {
    name: "london-detached",
    description: "KD plus LONDON as released: σ_max computed without gradient, so the term adds a constant and cannot change training",
    differentiable: false,
};

impl Method for London {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn needs(&self) -> Needs {
        Needs::NETWORK
    }

    fn settings(&self) -> &'static [&'static str] {
        &["london_weight", "power_iterations"]
    }

    fn fits(&self, student: &NeuralSpec, teacher: &NeuralSpec, _settings: &MethodSpec) -> Result<(), Misfit> {
        let (Some(ws), Some(wt)) = (student.written_widths(), teacher.written_widths()) else { return Ok(()) };
        if ws.len() != wt.len() {
            return Err(Misfit {
                message: format!("LONDON matches one σ per stage pair, so student and teacher need as many hidden layers (student {}, teacher {})", ws.len(), wt.len()),
                hint: Some("give the student as many hidden layers (or conv widths) as the teacher".into()),
            });
        }
        Ok(())
    }

    fn activation_term(&self, unit: &Unit) -> Result<Option<WeightedTerm>, ModelError> {
        let (s, t) = unit.probe_activations()?;
        let (s, t) = (s.stages.len(), t.stages.len());
        if s != t {
            return Err(ModelError::Fit { model: self.name, reason: format!("LONDON matches one σ per stage pair, so student and teacher need as many hidden layers; the student has {s}, the teacher {t}") });
        }
        let term = LondonTerm { teacher: unit.teacher.clone(), iterations: unit.spec.power_iterations, differentiable: self.differentiable };
        Ok(Some((unit.spec.london_weight, Arc::new(term))))
    }
}

/// LONDON: Σ_l MSE(σ_l^s, σ_l^t)/2^{L−1−l} over stage pairs; `differentiable = false` is the
/// released behaviour, where no gradient reaches the student.
struct LondonTerm {
    teacher: Arc<NetworkEnsemble>,
    iterations: usize,
    differentiable: bool,
}

impl ActivationLoss for LondonTerm {
    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        let t = teacher_activations(&self.teacher, x)?;
        let sig_s = lipschitz_kd::stage_singular_values(&stage_vectors(student)?, self.iterations, self.differentiable).map_err(candle_msg)?;
        let sig_t = lipschitz_kd::stage_singular_values(&stage_vectors(&t)?, self.iterations, false).map_err(candle_msg)?;
        lipschitz_kd::london_loss(&sig_s, &sig_t).map_err(candle_msg)
    }
}
