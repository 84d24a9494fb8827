//! Students that collapsed in some seeds or cells.

use super::{by_seed, student_arms, summary, Check, Finding};
use crate::results::Row;
use crate::verdicts::Design;

/// A student unit far below its arm's other seeds in the same cell, or an arm's cell far below
/// its other cells (and below the `labels` student there).
pub struct Collapsed;

/// Least accuracy drop that counts as a collapse, and the robust z beyond which a unit is one.
const MIN_DROP: f64 = 0.10;
const ROBUST_Z: f64 = 5.0;
/// A cell's mean this far below the arm's median cell, and below `labels` by [`MIN_DROP`] /2.
const CELL_DROP: f64 = 0.15;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

impl Check for Collapsed {
    fn name(&self) -> &'static str {
        "collapsed"
    }

    fn rule(&self) -> &'static str {
        "a student unit whose accuracy is more than max(0.10, 5 robust sd) below the median of its arm's seeds in the cell, or an arm whose mean in a cell is more than 0.15 below its median over the study's cells and more than 0.05 below the `labels` student there"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut cell_means: std::collections::BTreeMap<String, Vec<(usize, f64)>> = Default::default();
        for cell in 0..design.cells.len() {
            for arm in student_arms(rows, cell) {
                let units = by_seed(rows, cell, &arm, "accuracy");
                if units.is_empty() {
                    continue;
                }
                cell_means.entry(arm.clone()).or_default().push((cell, summary(units.iter().map(|p| p.1)).mean));
                if units.len() < 3 {
                    continue;
                }
                let mut acc: Vec<f64> = units.iter().map(|p| p.1).collect();
                let med = median(&mut acc);
                let mut dev: Vec<f64> = acc.iter().map(|a| (a - med).abs()).collect();
                let robust_sd = 1.4826 * median(&mut dev);
                let floor = med - MIN_DROP.max(ROBUST_Z * robust_sd);
                let low: Vec<String> = units.iter().filter(|p| p.1 < floor).map(|(s, a)| format!("seed {s}: {a:.3}")).collect();
                if !low.is_empty() {
                    let detail = format!("cell {cell}, `{arm}`: {} of {} seeds below {floor:.3} (median {med:.3}): {}", low.len(), units.len(), low.join(", "));
                    out.push(Finding::new(self.name(), detail, [cell], [arm.clone()]));
                }
            }
        }
        for (arm, means) in cell_means.iter().filter(|(_, m)| m.len() >= 3) {
            let med = median(&mut means.iter().map(|m| m.1).collect::<Vec<_>>());
            for &(cell, mean) in means {
                let labels = summary(by_seed(rows, cell, "labels", "accuracy").into_iter().map(|p| p.1)).mean;
                let below_labels = !labels.is_finite() || arm == "labels" || mean < labels - MIN_DROP / 2.0;
                if mean < med - CELL_DROP && below_labels {
                    let detail = format!("cell {cell}, `{arm}`: mean accuracy {mean:.3} against its median cell {med:.3}{}", if labels.is_finite() { format!(" and `labels` {labels:.3}") } else { String::new() });
                    out.push(Finding::new(self.name(), detail, [cell], [arm.clone()]));
                }
            }
        }
        out
    }
}
