//! Models that learned nothing.

use super::{by_seed, student_arms, summary, Check, Finding};
use crate::results::Row;
use crate::verdicts::Design;

/// A teacher or student whose mean test accuracy is within [`MARGIN`] of always predicting the
/// most frequent class.
pub struct AtChance;

/// How close to chance counts as at chance (accuracy points).
const MARGIN: f64 = 0.02;

impl Check for AtChance {
    fn name(&self) -> &'static str {
        "at-chance"
    }

    fn rule(&self) -> &'static str {
        "a teacher or student whose mean test accuracy in a cell is within 0.02 of `chance_accuracy` (always the test set's most frequent class); a teacher at chance touches every prediction of its cell"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        for cell in 0..design.cells.len() {
            let chance = summary(by_seed(rows, cell, "teacher", "chance_accuracy").into_iter().map(|p| p.1));
            if chance.n == 0 {
                continue;
            }
            let arms = std::iter::once("teacher".to_string()).chain(student_arms(rows, cell));
            for arm in arms {
                let acc = summary(by_seed(rows, cell, &arm, "accuracy").into_iter().map(|p| p.1));
                if acc.n == 0 || acc.mean > chance.mean + MARGIN {
                    continue;
                }
                let detail = format!("cell {cell}, `{arm}`: mean accuracy {:.3} (n = {}) against chance {:.3}", acc.mean, acc.n, chance.mean);
                // A teacher at chance leaves nothing to distil: every row of the cell is touched.
                let rows_touched = if arm == "teacher" { vec![] } else { vec![arm] };
                out.push(Finding::new(self.name(), detail, [cell], rows_touched));
            }
        }
        out
    }
}
