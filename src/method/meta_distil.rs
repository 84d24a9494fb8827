//! `meta-distil`: MetaDistil with the pilot update (Zhou et al.): the teacher takes an SGD step
//! on the finite-difference hypergradient of a pilot student's quiz loss before each real
//! student step (the hypergradient and quiz split are in [`crate::distill::meta`]).

use candle_core::{DType, Device, Tensor, Var};
use ndarray::Array1;
use rand::seq::SliceRandom;

use super::network::{method_error, Unit};
use super::{Method, Misfit, MethodSpec, Needs};
use crate::distill::{self, meta};
use crate::models::loss::distillation_loss;
use crate::models::student::{self, one_hot, NeuralSpec, Network};
use crate::models::tensor::to_tensor;
use crate::models::ModelError;
use crate::seed;

pub struct MetaDistil;

impl Method for MetaDistil {
    fn name(&self) -> &'static str {
        "meta-distil"
    }

    fn description(&self) -> &'static str {
        "MetaDistil with the pilot update (Zhou et al.): the teacher takes an SGD step on the finite-difference hypergradient of a pilot student's quiz loss before each real student step; quiz rows carved from the fit rows"
    }

    fn needs(&self) -> Needs {
        Needs::NETWORK
    }

    fn settings(&self) -> &'static [&'static str] {
        &["quiz_fraction", "pilot_learning_rate", "teacher_learning_rate", "finite_difference", "quiz_for_every_arm", "teacher_frozen_fraction", "pilot_update"]
    }

    fn fits(&self, student: &NeuralSpec, _teacher: &NeuralSpec, _settings: &MethodSpec) -> Result<(), Misfit> {
        match student.augment.as_ref().is_some_and(|a| !a.is_identity()) {
            true => Err(Misfit { message: "meta-distil trains on the rows as they are (no augmentation)".into(), hint: Some("remove student.augment".into()) }),
            false => Ok(()),
        }
    }

    fn train(&self, unit: &Unit) -> Option<Result<Network, ModelError>> {
        Some(fit_meta(unit))
    }
}

/// MetaDistil with the pilot update: per batch, a plain SGD pilot step of the student, the
/// pilot's cross-entropy on a quiz batch, a teacher SGD step on the finite-difference
/// hypergradient, then the real student step with the updated teacher. The quiz rows are
/// carved from the fit rows and never trained on; the student trains on the rest for
/// exactly its step budget at a constant learning rate (no early stopping). For the first
/// `teacher_frozen_fraction` of the steps the teacher stays frozen (plain KD steps). Only the
/// teacher's first member is updated (a copy; the cell's teacher is unchanged).
fn fit_meta(unit: &Unit) -> Result<Network, ModelError> {
    let k = unit.k();
    // The runner holds the quiz out of every arm when the study asks; else it is carved here.
    let (train, quiz) = match unit.quiz {
        Some(quiz) => (unit.fit.clone(), quiz.clone()),
        None => {
            let (train_idx, quiz_idx) = meta::carve_quiz(unit.fit.len(), unit.spec.quiz_fraction, Some(&unit.fit.y), seed::derive(unit.seed, &["quiz"])).map_err(method_error)?;
            (unit.fit.select(&train_idx), unit.fit.select(&quiz_idx))
        }
    };
    let teacher = student::initial_network(&unit.teacher_network, unit.fit.rows(), k, unit.seed)?;
    teacher.set_weights(&unit.member()?.weights()?)?;
    let net = student::initial_network(unit.student, unit.fit.rows(), k, unit.seed)?;
    let svars = net.vars();
    let tvars = teacher.vars();
    let mut opt = crate::models::optim::Opt::new(unit.student.optimizer, svars.clone(), unit.student.rate(), unit.student.momentum.unwrap_or(0.9), unit.student.weight_decay)?;
    let (alpha, t) = (unit.distill.alpha, unit.distill.temperature);
    let x_all = to_tensor(train.x.view())?;
    let y_all = to_tensor(one_hot(&train.y, k).view())?;
    let xq_all = to_tensor(quiz.x.view())?;
    let yq_all = to_tensor(one_hot(&quiz.y, k).view())?;
    // L = (1 − α)·CE(y, q) + α·τ²·CE(p_t^τ, q^τ); the teacher's logits keep their graph when
    // `teacher_grad` (the hypergradient needs ∇_θT).
    let loss_of = |x: &Tensor, y: &Tensor, teacher_grad: bool| -> candle_core::Result<Tensor> {
        let z_s = net.activations(x)?.logits;
        let z_t = teacher.activations(x)?.logits;
        let z_t = if teacher_grad { z_t } else { z_t.detach() };
        let p_t = candle_nn::ops::softmax(&(z_t / t)?, candle_core::D::Minus1)?;
        let hard = distillation_loss(&z_s, y, 1.0)?;
        let soft = distillation_loss(&z_s, &p_t, t)?;
        (hard * (1.0 - alpha))? + (soft * alpha)?
    };
    let mut rng = seed::rng(seed::derive(unit.seed, &["meta-batches"]));
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let quiz_rows: Vec<u32> = (0..quiz.len() as u32).collect();
    let budget = student::Budget { fit_rows: train.len(), steps: unit.student.step_budget(train.len()), epochs: unit.student.passes(train.len()), validated: false };
    let mut steps = 0;
    for epoch in 1..=budget.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(unit.student.batch_size) {
            if steps == budget.steps {
                break;
            }
            steps += 1;
            let frozen = (steps as f64) <= unit.spec.teacher_frozen_fraction * budget.steps as f64;
            let idx = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
            let (xb, yb) = (x_all.index_select(&idx, 0)?, y_all.index_select(&idx, 0)?);
            let q: Vec<u32> = quiz_rows.choose_multiple(&mut rng, unit.student.batch_size.min(quiz_rows.len())).copied().collect();
            let qidx = Tensor::from_slice(&q, q.len(), &Device::Cpu)?;
            let (xq, yq) = (xq_all.index_select(&qidx, 0)?, yq_all.index_select(&qidx, 0)?);
            if frozen {
                // The teacher is still frozen: a plain distillation step.
                opt.backward_step(&finite_loss(loss_of(&xb, &yb, false)?, epoch)?)?;
                continue;
            }
            let theta_s = net.weights()?;
            // Pilot step θ_S′ = θ_S − η′∇L, then g_q = ∇ CE(quiz) at θ_S′ (without the pilot
            // update, at θ_S).
            if unit.spec.pilot_update {
                let grads = loss_of(&xb, &yb, false)?.backward()?;
                for v in &svars {
                    if let Some(g) = grads.get(v) {
                        v.set(&(v.as_tensor() - (g * unit.spec.pilot_learning_rate)?)?)?;
                    }
                }
            }
            let quiz_grads = distillation_loss(&net.activations(&xq)?.logits, &yq, 1.0)?.backward()?;
            let g_q = flatten(&svars, |v| quiz_grads.get(v).cloned())?;
            let norm = g_q.dot(&g_q).sqrt();
            net.set_weights(&theta_s)?;
            if norm > 0.0 && norm.is_finite() && unit.spec.teacher_learning_rate > 0.0 {
                let eps = unit.spec.finite_difference / norm;
                let theta = flatten(&svars, |v| Some(v.as_tensor().clone()))?;
                let hyper = meta::finite_difference_hypergradient(
                    |at| {
                        unflatten_into(&svars, at).map_err(distill::error::MethodError::from)?;
                        let g = loss_of(&xb, &yb, true)?.backward()?;
                        Ok(flatten(&tvars, |v| g.get(v).cloned())?)
                    },
                    theta.view(),
                    g_q.view(),
                    unit.spec.pilot_learning_rate,
                    eps,
                )
                .map_err(method_error)?;
                net.set_weights(&theta_s)?;
                let current = flatten(&tvars, |v| Some(v.as_tensor().clone()))?;
                unflatten_into(&tvars, (&current - &(hyper * unit.spec.teacher_learning_rate)).view())?;
            }
            // The real step with the updated teacher.
            opt.backward_step(&finite_loss(loss_of(&xb, &yb, false)?, epoch)?)?;
        }
    }
    Ok(Network { best_epoch: budget.epochs, epochs_run: budget.epochs, budget, ..net })
}

/// `loss`, or the divergence error when it is not finite.
fn finite_loss(loss: Tensor, epoch: usize) -> Result<Tensor, ModelError> {
    let value = loss.to_scalar::<f32>()? as f64;
    match value.is_finite() {
        true => Ok(loss),
        false => Err(ModelError::Diverged { epoch, loss: value }),
    }
}

/// The variables' values (or their gradients, zeros where absent) as one f64 vector.
fn flatten(vars: &[Var], value: impl Fn(&Var) -> Option<Tensor>) -> candle_core::Result<Array1<f64>> {
    let mut out = Vec::new();
    for v in vars {
        match value(v) {
            Some(t) => out.extend(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?),
            None => out.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
        }
    }
    Ok(Array1::from(out))
}

/// Sets the variables from one f64 vector, in order.
fn unflatten_into(vars: &[Var], values: ndarray::ArrayView1<f64>) -> candle_core::Result<()> {
    let mut at = 0;
    for v in vars {
        let n = v.as_tensor().elem_count();
        let part: Vec<f32> = values.slice(ndarray::s![at..at + n]).iter().map(|&x| x as f32).collect();
        v.set(&Tensor::from_vec(part, v.as_tensor().shape(), &Device::Cpu)?)?;
        at += n;
    }
    Ok(())
}