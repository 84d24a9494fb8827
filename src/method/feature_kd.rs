//! `feature-kd`: KD plus feature distillation (Miles & Mikolajczyk): D(N(Z_s W + b) − N(Z_t))
//! on the penultimate features through a projector (the loss is in
//! [`crate::distill::feature`]).

use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use rand::Rng;

use super::network::{candle_msg, teacher_activations, too_small, Unit};
use super::settings::Projector;
use super::{Method, MethodSpec, Misfit, Needs, WeightedTerm};
use crate::distill::feature;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{ActivationLoss, Activations};
use crate::models::student::NeuralSpec;
use crate::models::ModelError;
use crate::seed;

pub struct FeatureKd;

impl Method for FeatureKd {
    fn name(&self) -> &'static str {
        "feature-kd"
    }

    fn description(&self) -> &'static str {
        "KD plus feature distillation (Miles & Mikolajczyk): D(N(Z_s W + b) − N(Z_t)) on the penultimate features, projector, normalisation and distance from [method]"
    }

    fn needs(&self) -> Needs {
        Needs::NETWORK
    }

    fn settings(&self) -> &'static [&'static str] {
        &["feature_weight", "projector", "normalisation", "feature_loss", "log_sum_alpha"]
    }

    fn fits(&self, student: &NeuralSpec, teacher: &NeuralSpec, settings: &MethodSpec) -> Result<(), Misfit> {
        let (Some(ws), Some(wt)) = (student.written_widths(), teacher.written_widths()) else { return Ok(()) };
        if settings.projector == Projector::Identity && ws.last() != wt.last() {
            return Err(Misfit {
                message: format!("an identity projector needs equal penultimate widths (student {:?}, teacher {:?})", ws.last(), wt.last()),
                hint: Some("set method.projector = \"linear\"".into()),
            });
        }
        Ok(())
    }

    fn activation_term(&self, unit: &Unit) -> Result<Option<WeightedTerm>, ModelError> {
        let (s, t) = unit.probe_activations()?;
        let (d_s, d_t) = (s.penultimate.dim(1)?, t.penultimate.dim(1)?);
        let projector = match unit.spec.projector {
            Projector::Identity if d_s != d_t => {
                return Err(ModelError::Fit { model: "feature-kd", reason: format!("an identity projector needs equal feature widths; the student has {d_s}, the teacher {d_t}") })
            }
            Projector::Identity => None,
            Projector::Linear => Some(linear_projector(d_s, d_t, seed::derive(unit.seed, &["projector"]))?),
        };
        let term = FeatureTerm { teacher: unit.teacher.clone(), projector, norm: unit.spec.normalisation(), loss: unit.spec.feature_loss() };
        Ok(Some((unit.spec.feature_weight, Arc::new(term))))
    }
}

/// A linear projector d_s → d_t with PyTorch's default initialisation U(±1/√d_s).
fn linear_projector(d_s: usize, d_t: usize, seed: u64) -> candle_core::Result<(Var, Var)> {
    let mut rng = seed::rng(seed);
    let bound = 1.0 / (d_s as f64).sqrt();
    let w: Vec<f32> = (0..d_s * d_t).map(|_| rng.gen_range(-bound..bound) as f32).collect();
    let b: Vec<f32> = (0..d_t).map(|_| rng.gen_range(-bound..bound) as f32).collect();
    Ok((Var::from_tensor(&Tensor::from_vec(w, (d_s, d_t), &Device::Cpu)?)?, Var::from_tensor(&Tensor::from_vec(b, d_t, &Device::Cpu)?)?))
}

/// SRD: D(N(Z_s W + b) − N(Z_t)) on the penultimate features.
struct FeatureTerm {
    teacher: Arc<NetworkEnsemble>,
    projector: Option<(Var, Var)>,
    norm: feature::Normalisation,
    loss: feature::FeatureLoss,
}

impl ActivationLoss for FeatureTerm {
    fn vars(&self) -> Vec<Var> {
        self.projector.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    fn loss(&self, x: &Tensor, student: &Activations) -> candle_core::Result<Tensor> {
        if let Some(zero) = too_small(x)? {
            return Ok(zero);
        }
        let t = teacher_activations(&self.teacher, x)?;
        let result = match &self.projector {
            Some((w, b)) => feature::feature_distillation_loss(&student.penultimate, w.as_tensor(), Some(b.as_tensor()), &t.penultimate, self.norm, self.loss),
            None => {
                let d = student.penultimate.dim(1)?;
                let eye = Tensor::eye(d, student.penultimate.dtype(), &Device::Cpu)?;
                feature::feature_distillation_loss(&student.penultimate, &eye, None, &t.penultimate, self.norm, self.loss)
            }
        };
        result.map_err(candle_msg)
    }
}
