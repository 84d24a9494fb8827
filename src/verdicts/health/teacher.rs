//! A teacher that knows no more than the labels.

use super::{by_seed, summary, summary_text, Check, Finding};
use crate::results::Row;
use crate::verdicts::Design;

/// The teacher's test accuracy is not shown above the `labels` student's in a cell.
pub struct TeacherNoBetter;

impl Check for TeacherNoBetter {
    fn name(&self) -> &'static str {
        "teacher-no-better"
    }

    fn rule(&self) -> &'static str {
        "the teacher's test accuracy is not above the label-trained student's (`labels`) in a cell: the 95% interval of their per-seed difference reaches 0"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        for cell in 0..design.cells.len() {
            let labels: std::collections::BTreeMap<usize, f64> = by_seed(rows, cell, "labels", "accuracy").into_iter().collect();
            let teacher = by_seed(rows, cell, "teacher", "accuracy");
            let diffs: Vec<f64> = teacher.iter().filter_map(|(s, t)| labels.get(s).map(|l| t - l)).collect();
            if diffs.is_empty() {
                continue;
            }
            let d = summary(diffs.iter().copied());
            // With one seed or no spread there is no interval: the point estimate decides.
            let low = if d.ci_low.is_finite() { d.ci_low } else { d.mean };
            if low > 0.0 {
                continue;
            }
            let detail = format!(
                "cell {cell}: teacher accuracy {}, `labels` student {}; difference {}",
                summary_text(&summary(teacher.iter().map(|p| p.1))),
                summary_text(&summary(labels.values().copied())),
                summary_text(&d)
            );
            out.push(Finding::new(self.name(), detail, [cell], []));
        }
        out
    }
}
