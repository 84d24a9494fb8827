//! `rco`: route-constrained optimisation (Jin et al.): the student's epochs split over stages
//! distilled from the teacher's checkpoints at equal epoch intervals, the last the final
//! teacher (the schedule is in [`crate::distill::route`]).

use candle_core::Tensor;

use super::network::{method_error, Unit};
use super::{Method, Needs, KD};
use crate::distill::route;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::student::{self, NeuralSpec, Network};
use crate::models::ModelError;

pub struct Rco;

impl Method for Rco {
    fn name(&self) -> &'static str {
        "rco"
    }

    fn description(&self) -> &'static str {
        "route-constrained KD (Jin et al.): the student's epochs split over stages distilled from the teacher's checkpoints at equal epoch intervals, the last the final teacher"
    }

    fn needs(&self) -> Needs {
        Needs { teacher_checkpoints: true, ..Needs::NETWORK }
    }

    fn settings(&self) -> &'static [&'static str] {
        &["rco_anchors"]
    }

    fn train(&self, unit: &Unit) -> Option<Result<Network, ModelError>> {
        Some(fit_rco(unit))
    }
}

/// RCO: the student epochs split over stages, stage i distilled from the teacher's
/// checkpoint at anchor i (equal epoch intervals; the last stage the final teacher), each
/// stage starting from the previous stage's weights. Optimiser state restarts per stage.
/// The route is the first member's, so with several members only that member is followed.
fn fit_rco(unit: &Unit) -> Result<Network, ModelError> {
    let member = unit.member()?;
    if member.route.is_empty() {
        return Err(ModelError::Fit { model: "rco", reason: "the teacher kept no checkpoints".into() });
    }
    let anchors = route::equal_interval_anchors(member.route.len(), unit.spec.rco_anchors).map_err(method_error)?;
    if unit.student.steps.is_some() {
        return Err(ModelError::Fit { model: "rco", reason: "RCO splits the student's `epochs` into stages; give `epochs`, not `steps`".into() });
    }
    let epochs = route::stage_epochs(unit.student.epochs, anchors.len()).map_err(method_error)?;
    let mut start: Option<Vec<Tensor>> = None;
    let mut network: Option<Network> = None;
    let mut steps = 0;
    for (i, (&anchor, &stage_epochs)) in anchors.iter().zip(&epochs).enumerate() {
        let anchor_net = student::initial_network(&unit.teacher_network, unit.fit.rows(), unit.k(), unit.seed)?;
        // The last stage uses the final teacher (which differs from the last checkpoint when
        // the teacher was early-stopped).
        if i + 1 == anchors.len() {
            anchor_net.set_weights(&member.weights()?)?;
        } else {
            anchor_net.set_weights(&member.route[anchor])?;
        }
        // Scored as the cell's teacher is (its reduction's f64 softmax), so a single anchor
        // gives exactly `kd`'s targets.
        let anchor = NetworkEnsemble { members: vec![anchor_net], reduction: unit.teacher.reduction };
        let p = anchor.try_predict_proba(unit.fit.x.view())?;
        let terms = unit.target_terms(KD, p.view(), &unit.fit.y)?;
        let spec = NeuralSpec { epochs: stage_epochs, ..unit.student.clone() };
        let net = unit.train(&terms, &spec, start.as_deref())?;
        steps += net.budget.steps;
        start = Some(net.weights()?);
        network = Some(net);
    }
    // Its budget is every stage's steps; its best epoch is the last stage's, as is its epochs.
    let mut net = network.ok_or_else(|| ModelError::Fit { model: "rco", reason: "no stages".into() })?;
    net.budget.steps = steps;
    Ok(net)
}