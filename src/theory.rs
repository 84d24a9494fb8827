//! Deciding a study's predictions: pair the rows a prediction compares, run its paired test,
//! correct for multiple testing across the study (Holm), and state a verdict.
//!
//! A verdict is *supported* when the Holm-corrected test rejects and the mean paired
//! difference lhs − rhs has the predicted sign, *contradicted* when it rejects with the other
//! sign, and *inconclusive* otherwise (including too few pairs to test).

use std::collections::BTreeMap;

use crate::results::Row;
use crate::stats::{self, PairedComparison, Verdict};
use crate::study::{Comparison, Expect, Prediction, Study, TestKind};

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

/// Pairs (lhs, rhs) of metric values for a prediction, plus how many were dropped.
pub fn pairs(study: &Study, rows: &[Row], prediction: &Prediction) -> (Vec<(f64, f64)>, usize) {
    let index: BTreeMap<(usize, usize, &str), &Row> = rows.iter().map(|r| ((r.cell_index, r.seed, r.arm.as_str()), r)).collect();
    let value = |cell: usize, seed: usize, arm: &str| -> Option<f64> {
        index.get(&(cell, seed, arm)).filter(|r| r.failure.is_none()).and_then(|r| r.get(&prediction.metric))
    };
    let passes = |levels: &[String]| prediction.filter.iter().all(|(axis, level)| &levels[*axis] == level);
    let mut out = Vec::new();
    let mut dropped = 0;
    for cell in study.cells.iter().filter(|c| passes(&c.levels)) {
        match &prediction.comparison {
            Comparison::Arms { lhs, rhs } => {
                for seed in 0..study.seeds {
                    match (value(cell.index, seed, lhs.name()), value(cell.index, seed, rhs.name())) {
                        (Some(a), Some(b)) => out.push((a, b)),
                        _ => dropped += 1,
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
                let Some(partner) = partner else { continue };
                for seed in 0..study.seeds {
                    match (value(cell.index, seed, arm), value(partner.index, seed, arm)) {
                        (Some(a), Some(b)) => out.push((a, b)),
                        _ => dropped += 1,
                    }
                }
            }
        }
    }
    (out, dropped)
}

/// Decides every prediction of `study` on `rows`, with Holm's correction across them.
pub fn evaluate(study: &Study, rows: &[Row]) -> Vec<Decision> {
    let mut decisions: Vec<Decision> = study
        .predictions
        .iter()
        .map(|p| {
            let (pairs, dropped) = pairs(study, rows, p);
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            let comparison = if pairs.len() >= 2 {
                match p.test {
                    TestKind::PairedT => stats::paired_t_test(&a, &b).ok(),
                    TestKind::Wilcoxon => stats::wilcoxon_signed_rank(&a, &b).ok(),
                }
            } else {
                None
            };
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
