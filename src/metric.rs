//! The metric registry: every metric a results row may carry and a prediction may name, with
//! its direction and what it estimates. The results table's columns follow this order.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::metrics;

/// Whether a metric is better when lower or when higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Lower,
    Higher,
    /// A setting rather than a score (e.g. a chosen hyperparameter).
    Neither,
}

/// Where a metric is shown in a report (besides the results files, which hold every metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The per-cell results tables every report has.
    Results,
    /// The fidelity protocol's tables, by table (so no table is too wide to read).
    Fidelity(u8),
    /// The method protocol's table.
    Method,
    /// The `[diagnostics]` tables.
    Diagnostics,
}

/// A metric a row may carry and a prediction may name: its one definition, from which the
/// results table's columns, the report's sections and the README's metric table derive.
pub struct MetricInfo {
    pub name: &'static str,
    pub better: Better,
    /// The unit the metric is stated in.
    pub unit: &'static str,
    /// The report sections that show it (none: only the results files).
    pub sections: &'static [Section],
    /// What it estimates and how it is computed.
    pub description: &'static str,
    pub compute: Compute,
}

/// How a metric's value is computed.
#[derive(Clone, Copy)]
pub enum Compute {
    /// From a model's predictions, on every row (teacher, oracle and students) that has them.
    FromPredictions(fn(&Predictions) -> Option<f64>),
    /// By the protocol or stage its description names.
    ByProtocol,
}

/// A model's predictions, as [`Compute::FromPredictions`] metrics read them.
pub struct Predictions<'a> {
    /// Probabilities on the test rows, and the test labels.
    pub test: ArrayView2<'a, f64>,
    pub y_test: &'a [usize],
    /// The cell's teacher on the same test rows (student rows only).
    pub teacher_test: Option<ArrayView2<'a, f64>>,
    /// Probabilities on the population sample, and p0 there (known data-generating processes).
    pub population: ArrayView2<'a, f64>,
    pub p0: Option<ArrayView2<'a, f64>>,
}

/// The values of every [`Compute::FromPredictions`] metric of `metrics` that is defined here.
pub fn from_predictions<'m>(metrics: impl IntoIterator<Item = &'m &'static MetricInfo>, p: &Predictions) -> Vec<(&'static str, f64)> {
    metrics
        .into_iter()
        .filter_map(|m| match m.compute {
            Compute::FromPredictions(f) => f(p).map(|v| (m.name, v)),
            Compute::ByProtocol => None,
        })
        .collect()
}

/// ROC AUC of the class-1 probability (two classes only).
fn auc(p: &Predictions) -> Option<f64> {
    (p.test.ncols() == 2).then(|| metrics::auc_binary(&p.test.column(1).to_vec(), p.y_test).ok()).flatten()
}

/// Every metric column, in table order.
pub const METRICS: &[MetricInfo] = &[
    MetricInfo { name: "accuracy", better: Better::Higher, unit: "fraction", sections: &[Section::Results], description: "test accuracy (argmax, ties to the lowest class)", compute: Compute::FromPredictions(|p| metrics::accuracy(p.test, p.y_test).ok()) },
    MetricInfo { name: "log_loss", better: Better::Lower, unit: "nats", sections: &[Section::Results], description: "test log loss, nats, probabilities clipped at 1e-15", compute: Compute::FromPredictions(|p| metrics::log_loss(p.test, p.y_test).ok()) },
    MetricInfo { name: "brier", better: Better::Lower, unit: "score in [0, 2]", sections: &[], description: "test multi-class Brier score Σ_j (p_j − y_j)², range [0, 2]", compute: Compute::FromPredictions(|p| metrics::brier(p.test, p.y_test).ok()) },
    MetricInfo { name: "ece", better: Better::Lower, unit: "probability", sections: &[Section::Results, Section::Diagnostics], description: "test top-label ECE, 10 equal-width bins, weighted by bin size", compute: Compute::FromPredictions(|p| metrics::ece(p.test, p.y_test, 10).ok()) },
    MetricInfo { name: "auc", better: Better::Higher, unit: "probability", sections: &[Section::Results], description: "test ROC AUC of the class-1 probability (two classes only)", compute: Compute::FromPredictions(auc) },
    MetricInfo { name: "agreement", better: Better::Higher, unit: "fraction", sections: &[Section::Results], description: "test top-1 agreement of student and teacher", compute: Compute::FromPredictions(|p| p.teacher_test.and_then(|t| metrics::agreement(p.test, t).ok())) },
    MetricInfo { name: "kl_teacher_student", better: Better::Lower, unit: "nats", sections: &[Section::Results], description: "test mean KL(teacher ‖ student) at T = 1, nats", compute: Compute::FromPredictions(|p| p.teacher_test.and_then(|t| metrics::kl_rows(t, p.test).ok())) },
    MetricInfo { name: "excess_risk", better: Better::Lower, unit: "nats", sections: &[Section::Results], description: "population excess log-loss risk E_x KL(p0(x) ‖ f(x)), nats, on a fresh Monte-Carlo sample", compute: Compute::FromPredictions(|p| p.p0.and_then(|p0| metrics::kl_rows(p0, p.population).ok())) },
    MetricInfo { name: "bayes_sq_error", better: Better::Lower, unit: "squared probability", sections: &[Section::Results], description: "population E_x ‖f(x) − p0(x)‖², on a fresh Monte-Carlo sample", compute: Compute::FromPredictions(|p| p.p0.and_then(|p0| metrics::squared_error_rows(p.population, p0).ok())) },
    MetricInfo { name: "student_error", better: Better::Lower, unit: "squared probability", sections: &[Section::Results], description: "population E_x ‖f̂(x) − f0(x)‖², f0 the oracle student (the student class fit to p0 on a large fresh sample)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_error_in_sample", better: Better::Lower, unit: "squared probability", sections: &[Section::Results], description: "teacher ‖p̂ − p0‖² averaged over its own training points (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_error_population", better: Better::Lower, unit: "squared probability", sections: &[Section::Results], description: "teacher ‖p̂ − p0‖² on a fresh Monte-Carlo sample (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_error4_in_sample", better: Better::Lower, unit: "fourth power of probability", sections: &[], description: "teacher E Σ_j (p̂_j − p0_j)⁴ over its own training points, the fourth-power norm of the orthogonal bound (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_error4_population", better: Better::Lower, unit: "fourth power of probability", sections: &[], description: "teacher E Σ_j (p̂_j − p0_j)⁴ on a fresh Monte-Carlo sample (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_error_out_of_fold", better: Better::Lower, unit: "squared probability", sections: &[Section::Results], description: "‖p̂ − p0‖² of the cross-fit (out-of-fold) targets over the training points (crossfit-teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_in_sample_excess", better: Better::Neither, unit: "squared probability", sections: &[Section::Results], description: "teacher_error_in_sample − teacher_error_population: > 0 when the teacher's probabilities on its own training points are further from p0 than on fresh points (the sample-reuse bias cross-fitting removes), < 0 when closer (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_oof_gap", better: Better::Neither, unit: "nats", sections: &[Section::Results], description: "log loss of the out-of-fold probabilities minus that of the teacher's in-sample probabilities, both on the training labels: > 0 when the teacher is surer of its own training points than a teacher that did not see them (the overfitting cross-fitting repairs); needs no p0 (teacher rows of studies that cross-fit)", compute: Compute::ByProtocol },
    MetricInfo { name: "chosen_log10_c", better: Better::Neither, unit: "log10", sections: &[Section::Results], description: "log10 of the c of the variance-aware γ chosen by cross-validation on labels (gamma-corrected and enhanced rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "critical_radius_proxy", better: Better::Neither, unit: "dimensionless, up to constants", sections: &[Section::Results], description: "√(d log n / n), the critical radius of a d-dimensional student class up to constants (a proxy): d the student's parameter count (networks) or mean leaves per tree (forests), n its training points (student rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "critical_radius_empirical", better: Better::Neither, unit: "dimensionless", sections: &[Section::Results], description: "empirical critical radius δ̂_n = E_σ‖Pσ‖/√n (b = 1): the local Rademacher complexity of the network student's tangent class at its fitted weights (the span of the parameter Jacobian of the logits on its n training points, one sign per point and logit; Monte-Carlo over `theory.rademacher_draws` sign vectors); ≈ √(rank/n); absent for forests and when the Jacobian exceeds 5M entries (student rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_teacher_student", better: Better::Neither, unit: "bits", sections: &[Section::Diagnostics], description: "mutual information of the teacher's and the student's predicted test labels, bits, plug-in with the Miller–Madow correction (student rows; [diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_null_high", better: Better::Neither, unit: "bits", sections: &[Section::Diagnostics], description: "97.5% point of the permutation null of mi_teacher_student (bits): MI below it is indistinguishable from independence ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_p_value", better: Better::Neither, unit: "probability", sections: &[Section::Diagnostics], description: "permutation p-value of mi_teacher_student, (1 + #{null ≥ observed}) / (1 + B) ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "ece_equal_mass", better: Better::Lower, unit: "probability", sections: &[Section::Diagnostics], description: "test top-label ECE with equal-mass bins (as many as `diagnostics.bins`), L1, weighted by bin size ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "ece_classwise", better: Better::Lower, unit: "probability", sections: &[Section::Diagnostics], description: "test classwise ECE: mean over classes of the equal-width binned |p_j − 1{y = j}| gap ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "ece_ci_low", better: Better::Neither, unit: "probability", sections: &[Section::Diagnostics], description: "lower end of the 95% percentile bootstrap interval of this row's `ece` (test points resampled) ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "ece_ci_high", better: Better::Neither, unit: "probability", sections: &[Section::Diagnostics], description: "upper end of that bootstrap interval ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "lipschitz_lower", better: Better::Neither, unit: "logit per unit input", sections: &[Section::Diagnostics], description: "certified LOWER bound on the global ℓ2 Lipschitz constant of the logit map: largest Jacobian spectral norm over test points and a seeded search from them (network models; [diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "lipschitz_upper", better: Better::Neither, unit: "logit per unit input", sections: &[Section::Diagnostics], description: "certified UPPER bound on that constant, SeqLip-style per-layer maximisation (network models; [diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "lipschitz_upper_product", better: Better::Neither, unit: "logit per unit input", sections: &[Section::Diagnostics], description: "UPPER bound: product of the layers' spectral norms (power iteration), the loosest bound (network models; [diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "lipschitz_local_fd", better: Better::Neither, unit: "probability per unit input", sections: &[Section::Diagnostics], description: "HEURISTIC, local: largest finite-difference quotient ‖p(x+δ) − p(x)‖/‖δ‖ of the probability map, ‖δ‖ = `diagnostics.lipschitz_radius`, 10 directions around each of `diagnostics.lipschitz_points` test points; defined for every model, not a bound ([diagnostics])", compute: Compute::ByProtocol },
    MetricInfo { name: "train_agreement", better: Better::Higher, unit: "fraction", sections: &[Section::Fidelity(0)], description: "TRAIN fidelity: top-1 agreement of the student with the teacher it was distilled from, on one seeded pass of the student's augmentation over the distillation stream (training rows plus extra rows), final weights ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "train_kl", better: Better::Lower, unit: "nats", sections: &[Section::Fidelity(0)], description: "TRAIN fidelity: mean KL(teacher ‖ student) at τ = 1, nats, on that pass ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "final_train_kl", better: Better::Lower, unit: "nats", sections: &[Section::Fidelity(0)], description: "the distillation objective reached: mean KL(teacher ‖ student) at the training temperature, nats, on the clean distillation stream ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "train_accuracy", better: Better::Higher, unit: "fraction", sections: &[Section::Fidelity(2), Section::Method], description: "accuracy on the student's clean labelled training rows ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "train_accuracy_augmented", better: Better::Higher, unit: "fraction", sections: &[Section::Fidelity(2)], description: "accuracy on those rows under the student's augmentation, against their original labels ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "generalisation_gap", better: Better::Lower, unit: "fraction", sections: &[Section::Fidelity(2)], description: "train_accuracy_augmented − test accuracy: Guo et al.'s \"overfitting\", which stronger augmentation lowers mechanically ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "generalisation_gap_clean", better: Better::Lower, unit: "fraction", sections: &[Section::Fidelity(2), Section::Method], description: "train_accuracy − test accuracy, both on clean images: the confound-free gap ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "agreement_augmented", better: Better::Higher, unit: "fraction", sections: &[Section::Fidelity(0)], description: "top-1 agreement with this cell's teacher on the test images under the student's augmentation (Guo et al.'s val_aug), the teacher labelling the same augmented images ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "kl_augmented", better: Better::Lower, unit: "nats", sections: &[Section::Fidelity(0)], description: "mean KL(teacher ‖ student) at τ = 1, nats, on those augmented test images ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_augmented", better: Better::Neither, unit: "bits", sections: &[Section::Fidelity(1)], description: "MI of the teacher's and the student's predicted labels on the augmented test images, bits, Miller–Madow ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_clean", better: Better::Neither, unit: "bits", sections: &[Section::Fidelity(1)], description: "MI of the teacher's and the student's predicted labels on the clean test images, bits, Miller–Madow ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_augmented_null_high", better: Better::Neither, unit: "bits", sections: &[Section::Fidelity(1)], description: "97.5% point of the permutation null of mi_augmented (bits, 200 permutations): MI below it is indistinguishable from independence ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "mi_clean_null_high", better: Better::Neither, unit: "bits", sections: &[Section::Fidelity(1)], description: "97.5% point of the permutation null of mi_clean (bits, 200 permutations) ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "congruence_kl", better: Better::Lower, unit: "nats", sections: &[Section::Method], description: "RCO's congruence loss: mean KL(teacher ‖ student) at τ = 1 on the student's fit rows, nats, final teacher ([method] studies)", compute: Compute::ByProtocol },
    MetricInfo { name: "geometry_agreement", better: Better::Higher, unit: "correlation", sections: &[Section::Method], description: "Pearson correlation of the pairwise distances of student and teacher penultimate features over the first 256 test rows ([method] studies)", compute: Compute::ByProtocol },
    MetricInfo { name: "sigma_gap", better: Better::Lower, unit: "spectral norm", sections: &[Section::Method], description: "LONDON's mismatch: mean over stage pairs of |σ_max(TM_s) − σ_max(TM_t)|, transmitting matrices of the first 256 test rows, `method.power_iterations` power steps; a spectral norm of feature products, not a Lipschitz constant ([method] studies, equal depths)", compute: Compute::ByProtocol },
    MetricInfo { name: "ece_unweighted", better: Better::Lower, unit: "probability", sections: &[Section::Fidelity(1)], description: "Guo et al.'s released ECE: the unweighted mean over 10 equal-width bins of |accuracy − confidence|, empty bins 0 ([fidelity])", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_iou_sumcam", better: Better::Neither, unit: "fraction", sections: &[Section::Fidelity(3)], description: "attention IoU of the teacher's members on the clean test images: sum-over-classes CAM, bilinear to input size, min–max, > cam_threshold, batch-pooled over 128 images (teacher rows; [fidelity] attention)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_iou_classcam", better: Better::Neither, unit: "fraction", sections: &[Section::Fidelity(3)], description: "the same IoU with each member's predicted-class CAM, the robustness variant (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "teacher_iou_sumcam_augmented", better: Better::Neither, unit: "fraction", sections: &[Section::Fidelity(3)], description: "the sum-CAM IoU on the test images under the student's augmentation (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "sumcam_direction_drift", better: Better::Neither, unit: "relative norm", sections: &[Section::Fidelity(3)], description: "‖Σ_c w_c − Σ_c w_c(init)‖ / ‖Σ_c w_c(init)‖ of the members' heads, averaged: 0 means the sum-CAM projects on its random initial direction (teacher rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "best_epoch", better: Better::Lower, unit: "epochs", sections: &[], description: "epoch whose weights the early-stopping rule kept (student rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "epoch_budget", better: Better::Neither, unit: "epochs", sections: &[], description: "passes over the fit rows the student was allowed, where early stopping scored a validation split (network student rows; the convergence check compares `best_epoch` with it)", compute: Compute::ByProtocol },
    MetricInfo { name: "step_budget", better: Better::Neither, unit: "steps", sections: &[], description: "optimiser steps the student was allowed: `student.steps`, or epochs × batches per epoch (network student rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "fit_rows", better: Better::Neither, unit: "rows", sections: &[], description: "rows the student trained on, validation and quiz rows excluded (network student rows)", compute: Compute::ByProtocol },
    MetricInfo { name: "chance_accuracy", better: Better::Neither, unit: "fraction", sections: &[], description: "accuracy of always predicting the test set's most frequent class (teacher rows; the at-chance health check reads it)", compute: Compute::ByProtocol },
];

/// The README's metric table: every metric with its direction, unit, sections and what it
/// estimates (`tests/docs.rs` holds the README to it).
pub fn markdown_table(metrics: &[&'static MetricInfo]) -> String {
    let mut out = String::from("| metric | better | unit | report section | what it estimates |\n|---|---|---|---|---|\n");
    for m in metrics {
        let better = match m.better {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Neither => "neither",
        };
        let sections: Vec<&str> = m
            .sections
            .iter()
            .map(|s| match s {
                Section::Results => "results",
                Section::Fidelity(_) => "fidelity",
                Section::Method => "method",
                Section::Diagnostics => "diagnostics",
            })
            .collect();
        let sections = if sections.is_empty() { "results files only".to_string() } else { sections.join(", ") };
        out.push_str(&format!("| `{}` | {better} | {} | {sections} | {} |\n", m.name, m.unit, m.description.replace('|', "\\|")));
    }
    out
}
