//! Students still improving when their epochs ran out.

use super::{by_seed, student_arms, Check, Finding};
use crate::results::Row;
use crate::verdicts::Design;

/// A unit's best epoch is in the last tenth of its epochs in more than a quarter of the seeds
/// of a cell's arm (rows whose early stopping scored a validation split).
pub struct NotConverged;

/// Share of an arm's units whose best epoch may lie in the last tenth before the arm is flagged.
const MAX_SHARE_AT_END: f64 = 0.25;

impl Check for NotConverged {
    fn name(&self) -> &'static str {
        "not-converged"
    }

    fn rule(&self) -> &'static str {
        "a student arm whose best epoch lies in the last 10% of its epochs in more than a quarter of a cell's seeds (early-stopped rows only): it was still improving when training stopped"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        for cell in 0..design.cells.len() {
            for arm in student_arms(rows, cell) {
                let budget: std::collections::BTreeMap<usize, f64> = by_seed(rows, cell, &arm, "epoch_budget").into_iter().collect();
                let best: Vec<(f64, f64)> = by_seed(rows, cell, &arm, "best_epoch").into_iter().filter_map(|(s, b)| budget.get(&s).map(|&e| (b, e))).collect();
                let late = best.iter().filter(|(b, e)| *b > e - (e / 10.0).ceil()).count();
                if best.is_empty() || late as f64 <= MAX_SHARE_AT_END * best.len() as f64 {
                    continue;
                }
                let mut epochs: Vec<f64> = best.iter().map(|p| p.0).collect();
                epochs.sort_by(f64::total_cmp);
                let detail = format!("cell {cell}, `{arm}`: best epoch in the last 10% of its {} epochs in {late} of {} seeds (median best epoch {})", best[0].1, best.len(), epochs[epochs.len() / 2]);
                out.push(Finding::new(self.name(), detail, [cell], [arm]));
            }
        }
        out
    }
}
