//! Deciding a study's predictions: pair the rows a prediction compares, run its paired test,
//! correct for multiple testing across the study (Holm), and state a verdict.
//!
//! A verdict is *supported* when the Holm-corrected test rejects and the mean paired
//! difference lhs − rhs has the predicted sign, *contradicted* when it rejects with the other
//! sign, and *inconclusive* otherwise (including too few pairs to test). With a margin δ the
//! test is one of non-inferiority (lhs − rhs compared with δ instead of 0); with the
//! Pitman–Morgan test the "difference" is Var(lhs) − Var(rhs) across seeds. A correlation
//! prediction's "difference" is Pearson's r of its two metrics over the arm's rows, and an arm
//! compared with a constant is a one-sample test of metric − constant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{self, Better, Row};
use crate::stats::{self, PairedComparison, Verdict};
use crate::distill::GammaRule;
use crate::study::{Comparison, Expect, Prediction, Study, TestKind};

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
pub fn rate_checks(study: &Study, rows: &[Row]) -> Vec<RateCheck> {
    let teacher_error = |cell: usize, seed: usize, arm: &str| {
        rows.iter()
            .find(|r| r.cell_index == cell && r.seed == seed && r.arm == arm && r.failure.is_none())
            .and_then(|r| r.get("teacher_error_population"))
    };
    let mut out = Vec::new();
    for arm in study.arms.iter().filter(|a| a.uses_teacher()) {
        let source = if arm.uses_crossfit() { results::CROSSFIT_TEACHER_ARM } else { results::TEACHER_ARM };
        let (x, y): (Vec<f64>, Vec<f64>) = rows
            .iter()
            .filter(|r| r.arm == arm.name() && r.failure.is_none())
            .filter_map(|r| Some((teacher_error(r.cell_index, r.seed, source)?, r.get("student_error")?)))
            .filter(|(t, s)| *t > 0.0 && *s > 0.0)
            .map(|(t, s)| (t.ln(), s.ln()))
            .unzip();
        if let Ok(fit) = stats::linear_fit(&x, &y) {
            let predicted_slope = match arm.gamma_rule() {
                GammaRule::Zero => 1.0,
                _ => 2.0,
            };
            out.push(RateCheck { arm: arm.name().to_string(), teacher_error: source, fit, predicted_slope });
        }
    }
    out
}

/// Family-wise error rate of the Holm correction over a study's predictions.
pub const ALPHA: f64 = 0.05;

/// One prediction's outcome.
#[derive(Debug, Clone)]
pub struct Decision {
    pub prediction: Prediction,
    /// The paired test on lhs − rhs; `None` when fewer than two pairs were available.
    pub comparison: Option<PairedComparison>,
    pub n_pairs: usize,
    pub adjusted_p: Option<f64>,
    pub verdict: Verdict,
    /// Pairs dropped because a row failed or lacked the metric.
    pub dropped: usize,
}

/// Pairs (lhs, rhs) of metric values for a prediction, each with the index of the cell (or
/// cell pair) it came from, plus how many pairs were dropped.
pub fn pairs(study: &Study, rows: &[Row], prediction: &Prediction) -> (Vec<(f64, f64, usize)>, usize) {
    let index: BTreeMap<(usize, usize, &str), &Row> = rows.iter().map(|r| ((r.cell_index, r.seed, r.arm.as_str()), r)).collect();
    let value = |cell: usize, seed: usize, arm: &str| -> Option<f64> {
        index.get(&(cell, seed, arm)).filter(|r| r.failure.is_none()).and_then(|r| r.get(&prediction.metric))
    };
    let mean_of = |cell: usize, arm: &str| -> Option<f64> {
        let v: Vec<f64> = (0..study.seeds).filter_map(|s| value(cell, s, arm)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let better = results::metric(&prediction.metric).map(|m| m.better).unwrap_or(Better::Lower);
    let passes = |levels: &[String]| prediction.filter.iter().all(|(axis, level)| &levels[*axis] == level);
    let mut out = Vec::new();
    let dropped = std::cell::Cell::new(0);
    let push_seeds = |out: &mut Vec<(f64, f64, usize)>, group: usize, lhs: (usize, &str), rhs: (usize, &str)| {
        for seed in 0..study.seeds {
            match (value(lhs.0, seed, lhs.1), value(rhs.0, seed, rhs.1)) {
                (Some(a), Some(b)) => out.push((a, b, group)),
                _ => dropped.set(dropped.get() + 1),
            }
        }
    };
    for cell in study.cells.iter().filter(|c| passes(&c.levels)) {
        match &prediction.comparison {
            Comparison::Arms { lhs, rhs } => push_seeds(&mut out, cell.index, (cell.index, lhs.name()), (cell.index, rhs.name())),
            Comparison::ArmVsBest { lhs, candidates } => {
                // The candidate with the better mean in this cell (per the metric's direction).
                let best = candidates
                    .iter()
                    .filter_map(|a| mean_of(cell.index, a.name()).map(|m| (a, m)))
                    .reduce(|x, y| match better {
                        Better::Higher if y.1 > x.1 => y,
                        Better::Lower | Better::Neither if y.1 < x.1 => y,
                        _ => x,
                    });
                if let Some((best, _)) = best {
                    push_seeds(&mut out, cell.index, (cell.index, lhs.name()), (cell.index, best.name()));
                }
            }
            Comparison::Constant { arm, value: constant } => {
                for seed in 0..study.seeds {
                    match value(cell.index, seed, arm.name()) {
                        Some(a) => out.push((a, *constant, cell.index)),
                        None => dropped.set(dropped.get() + 1),
                    }
                }
            }
            Comparison::Correlation { with, arm } => {
                for seed in 0..study.seeds {
                    let other = index.get(&(cell.index, seed, arm.as_str())).filter(|r| r.failure.is_none()).and_then(|r| r.get(with));
                    match (value(cell.index, seed, arm), other) {
                        (Some(a), Some(b)) => out.push((a, b, cell.index)),
                        _ => dropped.set(dropped.get() + 1),
                    }
                }
            }
            Comparison::Levels { axis, lhs, rhs, arm } => {
                if &cell.levels[*axis] != lhs {
                    continue;
                }
                let partner = study.cells.iter().find(|o| {
                    o.levels.iter().enumerate().all(|(a, l)| if a == *axis { l == rhs } else { *l == cell.levels[a] })
                });
                if let Some(partner) = partner {
                    push_seeds(&mut out, cell.index, (cell.index, arm), (partner.index, arm));
                }
            }
        }
    }
    (out, dropped.get())
}

/// Runs a prediction's test on its pairs. A non-inferiority margin δ shifts rhs by ±δ; a
/// variance test first removes each group's (cell's) means, so only seed-to-seed spread is
/// compared.
fn test(prediction: &Prediction, pairs: &[(f64, f64, usize)]) -> Option<PairedComparison> {
    if pairs.len() < 2 {
        return None;
    }
    let shift = match (prediction.margin, prediction.expect) {
        (Some(m), Expect::Lower) => m,
        (Some(m), Expect::Higher) => -m,
        (None, _) => 0.0,
    };
    let a: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let b: Vec<f64> = pairs.iter().map(|p| p.1 + shift).collect();
    match prediction.test {
        TestKind::PairedT => stats::paired_t_test(&a, &b).ok(),
        TestKind::Wilcoxon => stats::wilcoxon_signed_rank(&a, &b).ok(),
        TestKind::Pearson => stats::pearson(&a, &b).ok().map(|c| PairedComparison {
            test: stats::PairedTest::Pearson,
            n: c.n,
            mean_diff: c.r,
            ci_low: c.ci_low,
            ci_high: c.ci_high,
            statistic: c.r,
            p_value: c.p_value,
        }),
        TestKind::PitmanMorgan => {
            let groups: std::collections::BTreeSet<usize> = pairs.iter().map(|p| p.2).collect();
            let centered = |get: &dyn Fn(&(f64, f64, usize)) -> f64| -> Vec<f64> {
                let means: BTreeMap<usize, f64> = groups
                    .iter()
                    .map(|g| {
                        let v: Vec<f64> = pairs.iter().filter(|p| p.2 == *g).map(get).collect();
                        (*g, v.iter().sum::<f64>() / v.len() as f64)
                    })
                    .collect();
                pairs.iter().map(|p| get(p) - means[&p.2]).collect()
            };
            let a = centered(&|p| p.0);
            let b = centered(&|p| p.1);
            stats::pitman_morgan(&a, &b, groups.len() - 1).ok()
        }
    }
}

/// Decides every prediction of `study` on `rows`, with Holm's correction across them.
pub fn evaluate(study: &Study, rows: &[Row]) -> Vec<Decision> {
    let mut decisions: Vec<Decision> = study
        .predictions
        .iter()
        .map(|p| {
            let (pairs, dropped) = pairs(study, rows, p);
            let comparison = test(p, &pairs);
            Decision { prediction: p.clone(), comparison, n_pairs: pairs.len(), adjusted_p: None, verdict: Verdict::Inconclusive, dropped }
        })
        .collect();
    let tested: Vec<usize> = (0..decisions.len()).filter(|&i| decisions[i].comparison.is_some()).collect();
    let p_values: Vec<f64> = tested.iter().map(|&i| decisions[i].comparison.as_ref().expect("tested").p_value).collect();
    let holm = stats::holm(&p_values, ALPHA);
    for (&i, h) in tested.iter().zip(holm) {
        let d = &mut decisions[i];
        let c = d.comparison.as_ref().expect("tested");
        let sign = match d.prediction.expect {
            Expect::Lower => -1.0,
            Expect::Higher => 1.0,
        };
        d.adjusted_p = Some(h.adjusted_p);
        d.verdict = stats::verdict(c.mean_diff, sign, h.reject);
    }
    decisions
}
