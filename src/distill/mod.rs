//! How a student's training targets are built from labels and a teacher: the losses and
//! targets the methods of [`crate::method`] use.
//!
//! Semiparametric KD (Dao et al. 2021): the teacher's p̂ is a plug-in estimate of the Bayes
//! probabilities p0. *Cross-fitting* ([`cross_fit`]) scores each training point with a teacher
//! fit on the other folds; *loss correction* steps the target in the direction y − p̂. For a
//! loss on the scale g (g(p) = p or log p), the corrected target is g(p̂) + γ·(y − p̂): γ = 0 is
//! plain KD, γ = g′(p̂) the full (Neyman-orthogonal) correction, and the variance-aware
//! γ = c·g′(p̂) / (c + (y − p̂)²) trades the correction's variance against the teacher's bias,
//! with c chosen by cross-validation on labels ([`select_c`]).
//!
//! Submodules hold the losses and schedules of other KD methods as pure, unit-tested functions
//! (candle tensors a training loop can add to a student's loss, with f64 references):
//! [`knowledge`] (Tang et al.'s partial teachers and gradient rescaling), [`feature`] (Miles &
//! Mikolajczyk's projector, normalisation and LogSum loss), [`lipschitz_kd`] (LONDON's
//! transmitting-matrix spectral norms), [`relational`] (RKD distance and angle, GKD graphs),
//! [`route`] (RCO's anchor checkpoints and stage epochs) and [`meta`] (MetaDistil's
//! finite-difference hypergradient and quiz split); [`error`] holds their shared error type.

mod corrected;
pub mod error;
pub mod feature;
pub mod knowledge;
pub mod lipschitz_kd;
pub mod meta;
pub mod relational;
pub mod route;
#[cfg(test)]
mod testkit;

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::metrics;
use crate::data::Rows;
use crate::models::{self, student, Teacher, TeacherSpec};
use crate::seed;

use crate::models::loss::{LossTerm, SquaredLogits, SquaredProbabilities};
use crate::models::student::{one_hot, StudentSpec, StudentTargets, TargetScale};
pub use corrected::CorrectedCrossEntropy;

/// The distillation loss family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistillLoss {
    /// Temperature cross-entropy (Hinton); corrections add γ·C(z).
    Ce,
    /// Squared error on the probability scale.
    MseP,
    /// Squared error on the log-probability scale (logits regress log p̂).
    MseLogp,
}

/// The `[distill]` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// Softmax temperature T of the teacher targets and the student's soft term (`ce` only).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight α of the distillation term; the label term gets 1 − α (network students).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Loss family; default `ce` for network students, `mse-logp` for forest students.
    #[serde(default)]
    pub loss: Option<DistillLoss>,
    /// γ of the `gamma-constant` arm.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// p̂ is clipped below at this value wherever 1/p̂ or log p̂ appears.
    #[serde(default = "default_clip")]
    pub clip: f64,
    /// Candidate c of the variance-aware γ, chosen by cross-validation on labels.
    #[serde(default = "default_c_grid")]
    pub c_grid: Vec<f64>,
    /// Folds of that cross-validation.
    #[serde(default = "default_cv_folds")]
    pub cv_folds: usize,
    /// Folds B of cross-fitting.
    #[serde(default = "default_crossfit_folds")]
    pub crossfit_folds: usize,
    /// Stratify the cross-fitting folds by label.
    #[serde(default = "default_true")]
    pub stratified: bool,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_alpha() -> f64 {
    1.0
}
fn default_gamma() -> f64 {
    0.5
}
fn default_clip() -> f64 {
    1.0 / 500.0
}
fn default_c_grid() -> Vec<f64> {
    vec![1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
}
fn default_cv_folds() -> usize {
    3
}
fn default_crossfit_folds() -> usize {
    10
}
fn default_true() -> bool {
    true
}

impl Default for DistillSpec {
    fn default() -> Self {
        DistillSpec {
            temperature: default_temperature(),
            alpha: default_alpha(),
            loss: None,
            gamma: default_gamma(),
            clip: default_clip(),
            c_grid: default_c_grid(),
            cv_folds: default_cv_folds(),
            crossfit_folds: default_crossfit_folds(),
            stratified: true,
        }
    }
}

impl DistillSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(("temperature", format!("must be finite and > 0, got {}", self.temperature)));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(("alpha", format!("must be in [0, 1], got {}", self.alpha)));
        }
        if !self.gamma.is_finite() {
            return Err(("gamma", format!("must be finite, got {}", self.gamma)));
        }
        if !(self.clip > 0.0 && self.clip < 0.5) {
            return Err(("clip", format!("must be in (0, 0.5), got {}", self.clip)));
        }
        if self.c_grid.is_empty() || self.c_grid.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(("c_grid", format!("must list finite values > 0, got {:?}", self.c_grid)));
        }
        if !(2..=100).contains(&self.cv_folds) {
            return Err(("cv_folds", format!("must be between 2 and 100, got {}", self.cv_folds)));
        }
        if !(2..=100).contains(&self.crossfit_folds) {
            return Err(("crossfit_folds", format!("must be between 2 and 100, got {}", self.crossfit_folds)));
        }
        Ok(())
    }

    /// The loss family in force for `student`.
    pub fn loss_for(&self, student: &StudentSpec) -> DistillLoss {
        self.loss.unwrap_or(match student {
            StudentSpec::Neural(_) => DistillLoss::Ce,
            StudentSpec::ForestRegressor(_) => DistillLoss::MseLogp,
        })
    }
}

/// A resolved γ: the rule with its constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    Zero,
    Constant(f64),
    VarianceAware { c: f64 },
    Full,
}

/// The corrected target g(p̂) + γ·(y − p̂) for one class of one point, with p̂ clipped below at
/// `clip` where it enters g = log or g′ = 1/p̂.
pub fn corrected_target(scale: TargetScale, p_hat: f64, y: f64, gamma: Gamma, clip: f64) -> f64 {
    let p_clip = p_hat.max(clip);
    let (g, g_prime) = match scale {
        TargetScale::Probability => (p_hat, 1.0),
        TargetScale::LogProbability => (p_clip.ln(), 1.0 / p_clip),
    };
    let residual = y - p_hat;
    let gamma = match gamma {
        Gamma::Zero => 0.0,
        Gamma::Constant(c) => c,
        Gamma::Full => g_prime,
        Gamma::VarianceAware { c } => c * g_prime / (c + residual * residual),
    };
    g + gamma * residual
}

/// The first-order correction of the temperature cross-entropy,
/// C(z) = ⟨∇_p CE_T(z, p̂), y − p̂⟩ with CE_T(z, p) = −Σ_j w_j(p) log softmax(z/T)_j and
/// w(p) = softmax(log p / T). In closed form, with u_j = (y_j/p̂_j − 1)·w_j:
/// C(z) = (1/T)·[(Σ_j u_j)(Σ_j w_j log q_j) − Σ_j u_j log q_j], q = softmax(z/T).
pub fn ce_correction(z: &[f64], p_hat: &[f64], y: &[f64], temperature: f64) -> f64 {
    let log_q = log_softmax(&z.iter().map(|v| v / temperature).collect::<Vec<_>>());
    let w = tempered_row(p_hat, temperature);
    let u: Vec<f64> = (0..z.len()).map(|j| (y[j] / p_hat[j] - 1.0) * w[j]).collect();
    let sum_u: f64 = u.iter().sum();
    let w_log_q: f64 = w.iter().zip(&log_q).map(|(a, b)| a * b).sum();
    let u_log_q: f64 = u.iter().zip(&log_q).map(|(a, b)| a * b).sum();
    (sum_u * w_log_q - u_log_q) / temperature
}

fn log_softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
    z.iter().map(|v| v - log_sum).collect()
}

fn tempered_row(p: &[f64], temperature: f64) -> Vec<f64> {
    let powered: Vec<f64> = p.iter().map(|v| v.max(0.0).powf(1.0 / temperature)).collect();
    let s: f64 = powered.iter().sum();
    powered.iter().map(|v| if s > 0.0 { v / s } else { 0.0 }).collect()
}

/// softmax(log p / T) row-wise, computed as p^(1/T) / Σ p^(1/T) so zero probabilities stay 0.
pub fn tempered(p: ArrayView2<f64>, temperature: f64) -> Array2<f64> {
    let mut out = p.mapv(|v| v.max(0.0).powf(1.0 / temperature));
    for mut row in out.rows_mut() {
        let s = row.sum();
        if s > 0.0 {
            row.mapv_inplace(|v| v / s);
        }
    }
    out
}

/// Builds the student's targets on its fit rows from labels, the teacher's probabilities on
/// those rows (`None` for the labels arm) and the resolved γ.
pub fn student_targets(
    y_fit: &[usize],
    teacher_fit: Option<ArrayView2<f64>>,
    gamma: Gamma,
    n_classes: usize,
    spec: &DistillSpec,
    student: &StudentSpec,
) -> StudentTargets {
    let labels = one_hot(y_fit, n_classes);
    let loss = spec.loss_for(student);
    let scale = match loss {
        DistillLoss::MseP | DistillLoss::Ce => TargetScale::Probability,
        DistillLoss::MseLogp => TargetScale::LogProbability,
    };
    let Some(p_hat) = teacher_fit else {
        return match student {
            StudentSpec::Neural(_) => StudentTargets::Terms(vec![LossTerm::soft_ce(1.0, 1.0, labels)]),
            // "No KD" for a forest student is the same regressor on the 0/1 labels.
            StudentSpec::ForestRegressor(_) => {
                StudentTargets::Regression { target: y_fit.iter().map(|&c| if c == 1 { 1.0 } else { 0.0 }).collect(), scale: TargetScale::Probability }
            }
        };
    };
    let corrected = || {
        let mut t = Array2::zeros(p_hat.raw_dim());
        for ((i, j), v) in t.indexed_iter_mut() {
            *v = corrected_target(scale, p_hat[[i, j]], labels[[i, j]], gamma, spec.clip);
        }
        t
    };
    match student {
        StudentSpec::ForestRegressor(_) => StudentTargets::Regression { target: corrected().column(1).to_vec(), scale },
        StudentSpec::Neural(_) => {
            let soft = match loss {
                DistillLoss::Ce if gamma == Gamma::Zero => LossTerm::soft_ce(spec.alpha, spec.temperature, tempered(p_hat, spec.temperature)),
                DistillLoss::Ce => {
                    // Per-row weight of C(z): the CE correction has g′ folded into C, so the
                    // full correction is weight 1 and the variance-aware one c/(c + ‖y − p̂‖²).
                    let row_gamma: Array1<f64> = (0..p_hat.nrows())
                        .map(|i| match gamma {
                            Gamma::Zero => 0.0,
                            Gamma::Full => 1.0,
                            Gamma::Constant(g) => g,
                            Gamma::VarianceAware { c } => {
                                let r2: f64 = (0..n_classes).map(|j| (labels[[i, j]] - p_hat[[i, j]]).powi(2)).sum();
                                c / (c + r2)
                            }
                        })
                        .collect();
                    let clipped = p_hat.mapv(|v| v.max(spec.clip));
                    LossTerm::new(spec.alpha, CorrectedCrossEntropy::new(spec.temperature, clipped.view(), labels.view(), &row_gamma))
                }
                DistillLoss::MseP => LossTerm::new(spec.alpha, SquaredProbabilities::new(corrected().view())),
                DistillLoss::MseLogp => LossTerm::new(spec.alpha, SquaredLogits::new(corrected().view())),
            };
            if spec.alpha >= 1.0 {
                StudentTargets::Terms(vec![soft])
            } else {
                StudentTargets::Terms(vec![LossTerm::soft_ce(1.0 - spec.alpha, 1.0, labels), soft])
            }
        }
    }
}

/// Out-of-fold teacher probabilities and the fold teachers that made them.
pub struct CrossFit {
    /// n × k: row i comes from the teacher that did not see fold(i).
    pub out_of_fold: Array2<f64>,
    pub teachers: Vec<Box<dyn Teacher>>,
}

/// Cross-fitting: B teachers, teacher t fit on every fold but t (in parallel), each training
/// point scored by the teacher that never saw it.
pub fn cross_fit(teacher: &TeacherSpec, train: Rows, y: &[usize], n_classes: usize, spec: &DistillSpec, seed: u64) -> models::Result<CrossFit> {
    let folds = crossfit_folds(y, spec, seed);
    let fits: Vec<models::Result<Box<dyn Teacher>>> = (0..spec.crossfit_folds)
        .into_par_iter()
        .map(|t| {
            let rows: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != t).collect();
            let x_t = train.x.select(Axis(0), &rows);
            let y_t: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
            teacher.fit(train.with(x_t.view()), &y_t, n_classes, seed::derive(seed, &["fold-teacher", &t.to_string()]))
        })
        .collect();
    let teachers = fits.into_iter().collect::<models::Result<Vec<_>>>()?;
    let mut out_of_fold = Array2::zeros((y.len(), n_classes));
    for (t, teacher) in teachers.iter().enumerate() {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == t).collect();
        let p = teacher.predict_proba(train.x.select(Axis(0), &rows).view());
        for (r, &i) in rows.iter().enumerate() {
            out_of_fold.row_mut(i).assign(&p.row(r));
        }
    }
    Ok(CrossFit { out_of_fold, teachers })
}

/// The fold of each training point in [`cross_fit`] with the same labels, settings and seed.
pub fn crossfit_folds(y: &[usize], spec: &DistillSpec, seed: u64) -> Vec<usize> {
    kfold(y.len(), spec.crossfit_folds, spec.stratified.then_some(y), seed::derive(seed, &["folds"]))
}

/// K-fold assignment of n points: a seeded shuffle dealt round-robin, within each class when
/// `stratify` gives labels (so every fold keeps the class proportions up to one point).
pub fn kfold(n: usize, k: usize, stratify: Option<&[usize]>, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seed::rng(seed));
    if let Some(y) = stratify {
        // A stable sort by label keeps the shuffled order within each class.
        order.sort_by_key(|&i| y[i]);
    }
    let mut fold = vec![0; n];
    for (pos, &i) in order.iter().enumerate() {
        fold[i] = pos % k;
    }
    fold
}

/// The c of the variance-aware γ chosen by K-fold cross-validation on labels: for each c of the
/// grid, students are fit on K − 1 folds of the fit rows with γ(c) targets and scored by the
/// Brier score against the held-out fold's labels (a proper, bounded score); the c with the
/// lowest mean wins (the smallest c on ties). Returns c and the mean score per grid value.
#[allow(clippy::too_many_arguments)]
pub fn select_c(
    spec: &DistillSpec,
    student: &StudentSpec,
    fit: Rows,
    y_fit: &[usize],
    teacher_fit: ArrayView2<f64>,
    x_val: ArrayView2<f64>,
    y_val: &[usize],
    n_classes: usize,
    seed: u64,
) -> models::Result<(f64, Vec<f64>)> {
    let folds = kfold(y_fit.len(), spec.cv_folds, Some(y_fit), seed::derive(seed, &["cv-folds"]));
    let mut scores = Vec::with_capacity(spec.c_grid.len());
    for &c in &spec.c_grid {
        let mut total = 0.0;
        for f in 0..spec.cv_folds {
            let train: Vec<usize> = (0..y_fit.len()).filter(|&i| folds[i] != f).collect();
            let held: Vec<usize> = (0..y_fit.len()).filter(|&i| folds[i] == f).collect();
            let y_train: Vec<usize> = train.iter().map(|&i| y_fit[i]).collect();
            let y_held: Vec<usize> = held.iter().map(|&i| y_fit[i]).collect();
            let p_train = teacher_fit.select(Axis(0), &train);
            let targets = student_targets(&y_train, Some(p_train.view()), Gamma::VarianceAware { c }, n_classes, spec, student);
            let x_train = fit.x.select(Axis(0), &train);
            let fitted = student::fit(student, fit.with(x_train.view()), &targets, x_val, y_val, n_classes, seed::derive(seed, &["cv", &f.to_string()]))?;
            let p = fitted.predict_proba(fit.x.select(Axis(0), &held).view())?;
            total += metrics::brier(p.view(), &y_held).unwrap_or(f64::INFINITY);
        }
        scores.push(total / spec.cv_folds as f64);
    }
    let best = (0..scores.len()).fold(0, |b, i| if scores[i] < scores[b] { i } else { b });
    Ok((spec.c_grid[best], scores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tempered_at_one_is_identity_and_flattens_with_temperature() {
        let p = array![[0.7, 0.2, 0.1, 0.0]];
        let same = tempered(p.view(), 1.0);
        assert!(same.iter().zip(p.iter()).all(|(a, b)| (a - b).abs() < 1e-15));
        let t = tempered(p.view(), 4.0);
        assert!((t.sum() - 1.0).abs() < 1e-12);
        assert!(t[[0, 0]] < 0.7 && t[[0, 2]] > 0.1 && t[[0, 3]] == 0.0);
    }

    #[test]
    fn corrected_targets_on_both_scales() {
        let clip = 1.0 / 500.0;
        let (p, y) = (0.2, 1.0);
        // γ = 0 is plain KD on either scale.
        assert_eq!(corrected_target(TargetScale::Probability, p, y, Gamma::Zero, clip), 0.2);
        assert!((corrected_target(TargetScale::LogProbability, p, y, Gamma::Zero, clip) - 0.2f64.ln()).abs() < 1e-15);
        // The full correction on the probability scale is the label itself.
        assert!((corrected_target(TargetScale::Probability, p, y, Gamma::Full, clip) - 1.0).abs() < 1e-15);
        // On the log scale it is log p̂ + y/p̂ − 1.
        assert!((corrected_target(TargetScale::LogProbability, p, y, Gamma::Full, clip) - (0.2f64.ln() + 1.0 / 0.2 - 1.0)).abs() < 1e-12);
        // Constant γ.
        assert!((corrected_target(TargetScale::Probability, p, y, Gamma::Constant(0.5), clip) - 0.6).abs() < 1e-15);
        // Variance-aware γ: c·g′/(c + r²) with r = 0.8.
        let c = 0.1;
        let expect = 0.2f64.ln() + c * (1.0 / 0.2) / (c + 0.64) * 0.8;
        assert!((corrected_target(TargetScale::LogProbability, p, y, Gamma::VarianceAware { c }, clip) - expect).abs() < 1e-12);
        // c → 0 gives plain KD, c → ∞ the full correction.
        let tiny = corrected_target(TargetScale::Probability, p, y, Gamma::VarianceAware { c: 1e-12 }, clip);
        let huge = corrected_target(TargetScale::Probability, p, y, Gamma::VarianceAware { c: 1e12 }, clip);
        assert!((tiny - 0.2).abs() < 1e-9 && (huge - 1.0).abs() < 1e-9);
        // p̂ below the clip enters 1/p̂ and log p̂ as the clip.
        let t = corrected_target(TargetScale::LogProbability, 1e-9, 0.0, Gamma::Full, clip);
        assert!((t - (clip.ln() + 500.0 * (0.0 - 1e-9))).abs() < 1e-9);
    }

    #[test]
    fn ce_correction_matches_the_finite_difference_directional_derivative() {
        // C(z) must equal ⟨∇_p CE_T(z, p), y − p⟩ at p = p̂; checked by a central difference of
        // CE_T along y − p̂ (step 1e-6: truncation error O(h²) ≈ 1e-12, rounding ≈ 1e-10).
        let ce = |z: &[f64], p: &[f64], t: f64| -> f64 {
            let log_q = log_softmax(&z.iter().map(|v| v / t).collect::<Vec<_>>());
            -tempered_row(p, t).iter().zip(&log_q).map(|(w, l)| w * l).sum::<f64>()
        };
        let cases: [(&[f64], &[f64], &[f64], f64); 4] = [
            (&[0.3, -1.2, 2.0], &[0.2, 0.3, 0.5], &[0.0, 0.0, 1.0], 1.0),
            (&[0.3, -1.2, 2.0], &[0.2, 0.3, 0.5], &[1.0, 0.0, 0.0], 4.0),
            (&[1.5, 0.1], &[0.9, 0.1], &[0.0, 1.0], 2.0),
            (&[-0.5, 0.5, 0.0, 2.5], &[0.05, 0.15, 0.3, 0.5], &[0.0, 1.0, 0.0, 0.0], 0.5),
        ];
        for (z, p, y, t) in cases {
            let h = 1e-6;
            let plus: Vec<f64> = p.iter().zip(y).map(|(pi, yi)| pi + h * (yi - pi)).collect();
            let minus: Vec<f64> = p.iter().zip(y).map(|(pi, yi)| pi - h * (yi - pi)).collect();
            let numeric = (ce(z, &plus, t) - ce(z, &minus, t)) / (2.0 * h);
            let closed = ce_correction(z, p, y, t);
            assert!((numeric - closed).abs() < 1e-7, "T={t}: numeric {numeric} vs closed {closed}");
        }
    }

    #[test]
    fn kd_with_alpha_mixes_label_and_soft_terms() {
        let spec = DistillSpec { temperature: 2.0, alpha: 0.25, ..DistillSpec::default() };
        let student = StudentSpec::Neural(Default::default());
        let StudentTargets::Terms(terms) = student_targets(&[1], Some(array![[0.2, 0.8]].view()), Gamma::Zero, 2, &spec, &student) else {
            panic!("network students get loss terms")
        };
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].weight, 0.75);
        assert_eq!(terms[1].loss.describe(), "soft cross-entropy, T = 2");
    }
}
