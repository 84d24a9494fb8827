//! The semiparametric theory's own quantities: the `[theory]` section (the oracle student and
//! the critical radius) and the reconstructed rate checks of student error on teacher error.
//! Predictions are decided in [`crate::verdicts`].

use serde::{Deserialize, Serialize};

use crate::results::{Row, RowKind};
use crate::stats;
use crate::method::Arm;

/// The `[theory]` section: quantities computed where the Bayes probabilities p0 are known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TheorySpec {
    /// Points of the fresh sample on which the oracle student f0 (the student class fit to p0)
    /// is trained, once per cell; 0 turns the oracle off.
    #[serde(default = "default_oracle_n")]
    pub oracle_n: usize,
    /// Sign draws of the empirical critical radius of network students; 0 (the default)
    /// turns it off: its SVD of the parameter Jacobian costs about as much as training a small
    /// student.
    #[serde(default)]
    pub rademacher_draws: usize,
}

fn default_oracle_n() -> usize {
    10_000
}

impl Default for TheorySpec {
    fn default() -> Self {
        TheorySpec { oracle_n: default_oracle_n(), rademacher_draws: 0 }
    }
}

impl TheorySpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.oracle_n > crate::data::MAX_ROWS {
            return Err(("oracle_n", format!("must be at most {}, got {}", crate::data::MAX_ROWS, self.oracle_n)));
        }
        if self.rademacher_draws == 1 || self.rademacher_draws > 100_000 {
            return Err(("rademacher_draws", format!("must be 0 (off) or between 2 and 100000, got {}", self.rademacher_draws)));
        }
        Ok(())
    }
}

/// A reconstructed rate check: the slope of log student error against log teacher error
/// across cells and seeds, with the slope the theory predicts.
#[derive(Debug, Clone)]
pub struct RateCheck {
    pub arm: String,
    /// Which teacher error is on the x axis.
    pub teacher_error: &'static str,
    pub fit: stats::LineFit,
    pub predicted_slope: f64,
}

/// Slopes of log `student_error` (‖f̂ − f0‖²) on log teacher error for each arm that uses a
/// teacher: plain and cross-fit KD are predicted to track the teacher's squared error to the
/// first power (slope 1), the corrected arms to the second power (slope 2), down to the
/// student's own estimation floor. Cross-fit arms are paired with the fold teachers' error.
pub fn rate_checks(arms: &[Arm], rows: &[Row]) -> Vec<RateCheck> {
    let teacher_error = |cell: usize, seed: usize, arm: &str| {
        rows.iter()
            .find(|r| r.cell_index == cell && r.seed == seed && r.arm == arm && r.failure.is_none())
            .and_then(|r| r.get("teacher_error_population"))
    };
    let mut out = Vec::new();
    for arm in arms.iter().filter(|a| a.needs().teacher) {
        let source = if arm.needs().out_of_fold { RowKind::CrossfitTeacher.arm() } else { RowKind::Teacher.arm() };
        let (x, y): (Vec<f64>, Vec<f64>) = rows
            .iter()
            .filter(|r| r.arm == arm.name() && r.failure.is_none())
            .filter_map(|r| Some((teacher_error(r.cell_index, r.seed, source)?, r.get("student_error")?)))
            .filter(|(t, s)| *t > 0.0 && *s > 0.0)
            .map(|(t, s)| (t.ln(), s.ln()))
            .unzip();
        if let Ok(fit) = stats::linear_fit(&x, &y) {
            let predicted_slope = arm.gamma_rule().predicted_rate();
            out.push(RateCheck { arm: arm.name().to_string(), teacher_error: source, fit, predicted_slope });
        }
    }
    out
}
