//! The diagnostics a study asks for (`[diagnostics]`), computed for one model on the test
//! set: the numbers land in the model's results row under the metric names below, each
//! labelled in `metric::METRICS` with what it estimates.
//!
//! | metric | what | models |
//! |---|---|---|
//! | `mi_teacher_student`, `mi_null_high`, `mi_p_value` | MI of teacher and student labels (bits, Miller–Madow), permutation null | students |
//! | `ece_equal_mass`, `ece_classwise`, `ece_ci_low`, `ece_ci_high` | calibration, bootstrap interval of `ece` | all |
//! | `lipschitz_lower`, `lipschitz_upper`, `lipschitz_upper_product` | certified bounds, logit map | networks |
//! | `lipschitz_local_fd` | heuristic local sensitivity of the probability map | all |
//!
//! A diagnostic that cannot be computed for a model (e.g. a bound for a forest) is absent,
//! never a made-up value.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::calibration::{self, BinScheme, EceKind, EceParams, ReliabilityBin};
use super::lipschitz::{self, LocalSearchParams, PowerIteration, ReluMlp, SeqLipParams};
use super::{mi, NullParams};
use crate::seed;

/// The `[diagnostics]` section. Present (even empty) turns every family on; a family can be
/// switched off by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsSpec {
    #[serde(default = "yes")]
    pub calibration: bool,
    #[serde(default = "yes")]
    pub mutual_information: bool,
    #[serde(default = "yes")]
    pub lipschitz: bool,
    /// Equal-width bins of the reliability diagram; also the bin count of the equal-mass and
    /// classwise ECE.
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Bootstrap replicates of the ECE interval.
    #[serde(default = "default_replicates")]
    pub bootstrap: usize,
    /// Permutations of the MI null.
    #[serde(default = "default_replicates")]
    pub permutations: usize,
    /// Test points that seed the Lipschitz searches and the finite differences.
    #[serde(default = "default_points")]
    pub lipschitz_points: usize,
    /// Radius of the finite-difference heuristic, in (standardised) input units.
    #[serde(default = "default_radius")]
    pub lipschitz_radius: f64,
    /// Hidden layers up to this width get the exact SeqLip maximisation over all 2^width
    /// activation patterns (about a second at 16); wider ones the certified relaxation.
    #[serde(default = "default_exact_width")]
    pub lipschitz_exact_width: usize,
}

fn default_exact_width() -> usize {
    10
}

fn yes() -> bool {
    true
}
fn default_bins() -> usize {
    10
}
fn default_replicates() -> usize {
    200
}
fn default_points() -> usize {
    200
}
fn default_radius() -> f64 {
    0.1
}

impl Default for DiagnosticsSpec {
    fn default() -> Self {
        DiagnosticsSpec {
            calibration: true,
            mutual_information: true,
            lipschitz: true,
            bins: default_bins(),
            bootstrap: default_replicates(),
            permutations: default_replicates(),
            lipschitz_points: default_points(),
            lipschitz_radius: default_radius(),
            lipschitz_exact_width: default_exact_width(),
        }
    }
}

impl DiagnosticsSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(2..=1000).contains(&self.bins) {
            return Err(("bins", format!("must be between 2 and 1000, got {}", self.bins)));
        }
        if !(20..=100_000).contains(&self.bootstrap) {
            return Err(("bootstrap", format!("must be between 20 and 100000 replicates, got {}", self.bootstrap)));
        }
        if !(20..=100_000).contains(&self.permutations) {
            return Err(("permutations", format!("must be between 20 and 100000, got {}", self.permutations)));
        }
        if !(1..=100_000).contains(&self.lipschitz_points) {
            return Err(("lipschitz_points", format!("must be between 1 and 100000, got {}", self.lipschitz_points)));
        }
        if !(self.lipschitz_radius.is_finite() && self.lipschitz_radius > 0.0) {
            return Err(("lipschitz_radius", format!("must be finite and > 0, got {}", self.lipschitz_radius)));
        }
        if self.lipschitz_exact_width > 20 {
            return Err(("lipschitz_exact_width", format!("must be at most 20 (2^20 patterns per layer), got {}", self.lipschitz_exact_width)));
        }
        Ok(())
    }
}

/// How the diagnostics can see a model.
pub enum ModelAccess<'a> {
    /// A ReLU network as weights: certified Lipschitz bounds of its logit map apply.
    Network(ReluMlp),
    /// Only predictions (probabilities), e.g. a forest.
    BlackBox(&'a (dyn Fn(ArrayView2<f64>) -> Array2<f64> + Sync)),
    /// Its test probabilities alone (a teacher read from files): nothing that probes the model.
    TestProbabilities,
}

/// One model's diagnostics: metric values by name, and its reliability-diagram bins.
#[derive(Debug, Default)]
pub struct ModelDiagnostics {
    pub metrics: Vec<(&'static str, f64)>,
    pub reliability: Vec<ReliabilityBin>,
}

/// Computes what `spec` asks for. `p_test`: the model's test probabilities; `teacher_labels`:
/// the teacher's predicted test labels (students only); `seed`: the unit's diagnostics seed.
pub fn evaluate(
    spec: &DiagnosticsSpec,
    x_test: ArrayView2<f64>,
    y_test: &[usize],
    p_test: ArrayView2<f64>,
    teacher_labels: Option<&[usize]>,
    model: &ModelAccess,
    seed: u64,
) -> ModelDiagnostics {
    let mut out = ModelDiagnostics::default();
    let mut put = |name: &'static str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.metrics.push((name, v));
        }
    };
    if spec.calibration {
        let width = EceParams { n_bins: spec.bins, ..Default::default() };
        let mass = EceParams { scheme: BinScheme::EqualMass, ..width };
        put("ece_equal_mass", calibration::ece(p_test, y_test, &mass).ok().map(|e| e.value));
        put("ece_classwise", calibration::classwise_ece(p_test, y_test, &width).ok().map(|e| e.value));
        if let Ok(ci) = calibration::bootstrap_ci(p_test, y_test, &width, EceKind::TopLabel, spec.bootstrap, seed::derive(seed, &["ece-bootstrap"])) {
            put("ece_ci_low", Some(ci.low));
            put("ece_ci_high", Some(ci.high));
        }
        // Empty bins carry NaN means; the diagram needs only the occupied ones.
        out.reliability = calibration::reliability_diagram(p_test, y_test, &width).unwrap_or_default().into_iter().filter(|b| b.count > 0).collect();
    }
    if spec.mutual_information {
        if let Some(teacher) = teacher_labels {
            let student: Vec<usize> = p_test.rows().into_iter().map(crate::metrics::argmax).collect();
            let null = NullParams { permutations: spec.permutations, seed: seed::derive(seed, &["mi-null"]) };
            if let Ok(m) = mi::discrete_mi(teacher, &student, Some(null)) {
                put("mi_teacher_student", Some(m.bits));
                put("mi_null_high", m.null.as_ref().map(|b| b.high));
                put("mi_p_value", m.null.as_ref().map(|b| b.p_value));
            }
        }
    }
    if spec.lipschitz {
        let points = x_test.slice(ndarray::s![..spec.lipschitz_points.min(x_test.nrows()), ..]);
        let fd_seed = seed::derive(seed, &["lipschitz-fd"]);
        let fd = match model {
            ModelAccess::Network(net) => {
                let search = LocalSearchParams { seed: seed::derive(seed, &["lipschitz-search"]), ..Default::default() };
                put("lipschitz_lower", lipschitz::jacobian_lower_bound(net, points, &search).ok().map(|e| e.value));
                put("lipschitz_upper", lipschitz::seqlip_upper_bound(net, &SeqLipParams { max_exact_width: spec.lipschitz_exact_width }).ok().map(|e| e.value));
                let power = PowerIteration { seed: seed::derive(seed, &["power"]), ..Default::default() };
                put("lipschitz_upper_product", lipschitz::product_upper_bound(net, &power).ok().map(|e| e.value));
                let probabilities = |x: ArrayView2<f64>| crate::data::softmax_rows(&net.forward(x).unwrap_or_else(|_| Array2::from_elem((x.nrows(), net.output_dim()), f64::NAN)));
                lipschitz::finite_difference_local(&probabilities, points, spec.lipschitz_radius, 10, fd_seed)
            }
            ModelAccess::BlackBox(f) => lipschitz::finite_difference_local(*f, points, spec.lipschitz_radius, 10, fd_seed),
            ModelAccess::TestProbabilities => return out,
        };
        put("lipschitz_local_fd", fd.ok().map(|e| e.value));
    }
    out
}
