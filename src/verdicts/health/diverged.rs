//! Rows that failed.

use super::{Check, Finding};
use crate::results::{Row, RowKind};
use crate::verdicts::Design;

/// Any failed (diverged or errored) row: the rows that remain may no longer be a fair sample.
pub struct Diverged;

impl Check for Diverged {
    fn name(&self) -> &'static str {
        "diverged"
    }

    fn rule(&self) -> &'static str {
        "any failed row (a diverged loss or another error): the seeds that remain may not be a fair sample of the arm"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        for cell in 0..design.cells.len() {
            let mut arms: Vec<(&str, usize, &str)> = Vec::new();
            for r in rows.iter().filter(|r| r.cell_index == cell) {
                let Some(why) = &r.failure else { continue };
                match arms.iter_mut().find(|a| a.0 == r.arm) {
                    Some(a) => a.1 += 1,
                    None => arms.push((&r.arm, 1, why)),
                }
            }
            for (arm, n, why) in arms {
                let touched = if RowKind::of(arm) == RowKind::Teacher { vec![] } else { vec![arm.to_string()] };
                out.push(Finding::new(self.name(), format!("cell {cell}, `{arm}`: {n} failed rows (first: {why})"), [cell], touched));
            }
        }
        out
    }
}
