//! The unit of analysis: a prediction's paired values, grouped by seed.
//!
//! The cells of one seed share its data split, usually its teacher and often the student's
//! initial weights, so their values are correlated; only seeds are independent. Every test in
//! [`super::seed_tests`] therefore reduces a seed's cells to one value (or, for variances and
//! within-cell correlations, to contrasts between seeds) before testing.

use std::collections::{BTreeMap, BTreeSet};

use crate::metric::Better;
use crate::results::Row;
use super::Design;
use crate::study::{Comparison, Operand, Prediction};

/// One (lhs, rhs) measurement of a prediction within one seed; `cell` is the lhs row's cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub cell: usize,
    pub lhs: f64,
    pub rhs: f64,
}

/// The pairs of one seed, one per distinct measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedPairs {
    pub seed: usize,
    pub pairs: Vec<Pair>,
}

/// A prediction's values over the seeds a look uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seeds with at least one usable pair, in seed order.
    pub seeds: Vec<SeedPairs>,
    /// Distinct cells that gave a pair.
    pub cells: usize,
    /// Pairs dropped because a row failed or lacked the metric.
    pub dropped: usize,
    /// Pairs that repeated a measurement already counted in the same seed (the same rows in
    /// several cells, e.g. a teacher row compared across a student-side axis): counted once.
    pub duplicates: usize,
}

impl Sample {
    /// Number of pairs kept, over all seeds.
    pub fn pairs(&self) -> usize {
        self.seeds.iter().map(|s| s.pairs.len()).sum()
    }

    /// Whether every seed has the same cells (what the contrast-based tests need).
    pub fn balanced(&self) -> bool {
        let cells = |s: &SeedPairs| s.pairs.iter().map(|p| p.cell).collect::<Vec<_>>();
        self.seeds.windows(2).all(|w| cells(&w[0]) == cells(&w[1]))
    }
}

/// The cells whose rows a prediction reads (both sides of a level comparison).
pub fn cells_used(design: &Design, prediction: &Prediction) -> BTreeSet<usize> {
    let passes = |levels: &[String]| prediction.filter.iter().all(|(axis, level)| &levels[*axis] == level);
    let mut out = BTreeSet::new();
    for (index, levels) in design.cells.iter().enumerate().filter(|(_, l)| passes(l)) {
        match &prediction.comparison {
            Comparison::Levels { axis, lhs, rhs, .. } => {
                if &levels[*axis] == lhs {
                    if let Some(partner) = level_partner(design, index, *axis, rhs) {
                        out.insert(index);
                        out.insert(partner);
                    }
                }
            }
            _ => {
                out.insert(index);
            }
        }
    }
    out
}

/// The cell with the same levels as `cell` except `level` on `axis`.
fn level_partner(design: &Design, cell: usize, axis: usize, level: &str) -> Option<usize> {
    let levels = design.cells[cell];
    design.cells.iter().position(|o| o.iter().enumerate().all(|(a, l)| if a == axis { l == level } else { *l == levels[a] }))
}

/// Metrics of a model's own test predictions, continuous enough that two different models
/// never share them bit for bit.
const IDENTITY_METRICS: [&str; 2] = ["log_loss", "brier"];

/// What identifies a measurement within a seed: its arm, the exact bits of the value compared,
/// and of the row's own test log loss and Brier score. Two cells give the same measurement when
/// the row does not depend on the setting that tells them apart (a teacher row across a
/// student-side axis); two different students that happen to share a discrete value (the same
/// agreement) still differ in log loss. Averaging within a seed keeps the test valid either
/// way; counting a repeat once keeps n and the weights honest.
fn fingerprint(row: &Row, value: f64) -> (String, u64, Vec<u64>) {
    (row.arm.clone(), value.to_bits(), IDENTITY_METRICS.iter().filter_map(|m| row.get(m)).map(f64::to_bits).collect())
}

/// The pairs of `prediction` over seeds `0..seeds`, grouped by seed.
pub fn collect(design: &Design, rows: &[Row], prediction: &Prediction, seeds: usize) -> Sample {
    let index: BTreeMap<(usize, usize, &str), &Row> = rows.iter().filter(|r| r.seed < seeds).map(|r| ((r.cell_index, r.seed, r.arm.as_str()), r)).collect();
    let row = |cell: usize, seed: usize, arm: &str| index.get(&(cell, seed, arm)).copied().filter(|r| r.failure.is_none());
    let value = |cell: usize, seed: usize, arm: &str, metric: &str| row(cell, seed, arm).and_then(|r| r.get(metric).map(|v| (v, r)));
    let metric = prediction.metric.as_str();
    let mut sample = Sample { seeds: Vec::new(), cells: 0, dropped: 0, duplicates: 0 };
    let mut cells = BTreeSet::new();
    let sides = sides(design, rows, prediction, seeds);
    for seed in 0..seeds {
        let mut seen = BTreeSet::new();
        let mut pairs = Vec::new();
        for side in &sides {
            let got = match side {
                Side::Rows { lhs, rhs } => value(lhs.0, seed, &lhs.1, metric).zip(value(rhs.0, seed, &rhs.1, metric)).map(|((a, ra), (b, rb))| (a, b, (fingerprint(ra, a), fingerprint(rb, b)))),
                Side::Contrast { lhs, rhs, minus } => {
                    let lead = |cell: usize| value(cell, seed, lhs.1.as_str(), metric).zip(value(cell, seed, minus, metric)).map(|((a, ra), (b, _))| (a - b, ra));
                    lead(lhs.0).zip(lead(rhs.0)).map(|((a, ra), (b, rb))| (a, b, (fingerprint(ra, a), fingerprint(rb, b))))
                }
                Side::Constant { cell, arm, value: c } => value(*cell, seed, arm, metric).map(|(a, ra)| (a, *c, (fingerprint(ra, a), fingerprint(ra, *c)))),
                Side::TwoMetrics { cell, arm, with } => row(*cell, seed, arm).and_then(|r| Some((r.get(metric)?, r.get(with)?, r))).map(|(a, b, r)| (a, b, (fingerprint(r, a), fingerprint(r, b)))),
            };
            match got {
                None => sample.dropped += 1,
                Some((lhs, rhs, key)) => {
                    if seen.insert(key) {
                        pairs.push(Pair { cell: side.cell(), lhs, rhs });
                        cells.insert(side.cell());
                    } else {
                        sample.duplicates += 1;
                    }
                }
            }
        }
        if !pairs.is_empty() {
            sample.seeds.push(SeedPairs { seed, pairs });
        }
    }
    sample.cells = cells.len();
    sample
}

/// Where the two values of one pair come from, for every seed.
enum Side {
    Rows { lhs: (usize, String), rhs: (usize, String) },
    /// An interaction: the lead of `lhs.1` over `minus` in cell `lhs.0` against the same lead
    /// in cell `rhs.0`.
    Contrast { lhs: (usize, String), rhs: (usize, String), minus: String },
    Constant { cell: usize, arm: String, value: f64 },
    TwoMetrics { cell: usize, arm: String, with: String },
}

impl Side {
    fn cell(&self) -> usize {
        match self {
            Side::Rows { lhs, .. } | Side::Contrast { lhs, .. } => lhs.0,
            Side::Constant { cell, .. } | Side::TwoMetrics { cell, .. } => *cell,
        }
    }
}

fn sides(design: &Design, rows: &[Row], prediction: &Prediction, seeds: usize) -> Vec<Side> {
    let passes = |levels: &[String]| prediction.filter.iter().all(|(axis, level)| &levels[*axis] == level);
    let mut out = Vec::new();
    for (c, levels) in design.cells.iter().enumerate().filter(|(_, l)| passes(l)) {
        match &prediction.comparison {
            Comparison::Arms { lhs, rhs } => out.push(Side::Rows { lhs: (c, lhs.name().into()), rhs: (c, rhs.name().into()) }),
            Comparison::ArmVsBest { lhs, candidates } => {
                let names: Vec<&str> = candidates.iter().map(|a| a.name()).collect();
                if let Some(best) = best_candidate(design, rows, &prediction.metric, c, &names, seeds) {
                    out.push(Side::Rows { lhs: (c, lhs.name().into()), rhs: (c, best.into()) });
                }
            }
            Comparison::Constant { arm, value } => out.push(Side::Constant { cell: c, arm: arm.name().into(), value: *value }),
            Comparison::Correlation { with, arm } => out.push(Side::TwoMetrics { cell: c, arm: arm.clone(), with: with.clone() }),
            Comparison::Rows { lhs, rhs: Operand::Row(rhs) } => out.push(Side::Rows { lhs: (c, lhs.clone()), rhs: (c, rhs.clone()) }),
            Comparison::Rows { lhs, rhs: Operand::Constant(value) } => out.push(Side::Constant { cell: c, arm: lhs.clone(), value: *value }),
            Comparison::Levels { axis, lhs, rhs, arm, minus } => {
                if &levels[*axis] == lhs {
                    if let Some(partner) = level_partner(design, c, *axis, rhs) {
                        let (lhs, rhs) = ((c, arm.clone()), (partner, arm.clone()));
                        out.push(match minus {
                            None => Side::Rows { lhs, rhs },
                            Some(minus) => Side::Contrast { lhs, rhs, minus: minus.clone() },
                        });
                    }
                }
            }
        }
    }
    out
}

/// The candidate arm with the better mean of `metric` in `cell` over seeds `0..seeds` (chosen on
/// the same data, which favours the candidates).
fn best_candidate<'a>(design: &Design, rows: &[Row], metric: &str, cell: usize, candidates: &[&'a str], seeds: usize) -> Option<&'a str> {
    let better = design.registry.metric(metric).map(|m| m.better).unwrap_or(Better::Lower);
    let mean = |arm: &str| {
        let v: Vec<f64> = rows.iter().filter(|r| r.cell_index == cell && r.arm == arm && r.seed < seeds && r.failure.is_none()).filter_map(|r| r.get(metric)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    candidates.iter().filter_map(|a| mean(a).map(|m| (*a, m))).reduce(|x, y| match better {
        Better::Higher if y.1 > x.1 => y,
        Better::Lower | Better::Neither if y.1 < x.1 => y,
        _ => x,
    }).map(|(a, _)| a)
}
