//! Arms compared on unequal training.

use super::{Check, Finding};
use crate::results::Row;
use crate::study::{Comparison, Operand, Prediction};
use crate::verdicts::{per_seed, Design};

/// A prediction compares rows that were allowed different optimiser steps or trained on
/// different rows, so "better" may only mean "trained more".
pub struct UnequalBudget;

/// Grid axes whose levels are the training budget itself: comparing them is the point.
const BUDGET_AXES: [&str; 3] = ["student.epochs", "student.steps", "student.batch_size"];

impl Check for UnequalBudget {
    fn name(&self) -> &'static str {
        "unequal-budget"
    }

    fn rule(&self) -> &'static str {
        "a prediction compares arms that were allowed different optimiser steps (`step_budget`) or trained on different rows (`fit_rows`) in the same seed; across grid levels only the step budget counts (rows may be what the axis varies), and only where early stopping did not choose the training length, and not on an axis of the budget itself"
    }

    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in design.predictions {
            for metric in ["step_budget", "fit_rows"] {
                let pairs = sides(design, rows, p, metric);
                let unequal = pairs.iter().find_map(|q| first_unequal(design, rows, &Prediction { metric: metric.to_string(), ..q.clone() }));
                if let Some((seed, lhs, rhs)) = unequal {
                    let what = if metric == "fit_rows" { "training rows" } else { "optimiser steps" };
                    let detail = format!("`{}` compares rows with unequal {what}: {lhs} against {rhs} (seed {seed})", p.id);
                    out.push(Finding { prediction: Some(p.id.clone()), ..Finding::new(self.name(), detail, [], []) });
                    break;
                }
            }
        }
        out
    }
}

/// Whether `arm`'s rows were early-stopped on a validation split (then validation, not the
/// budget, set how long each trained).
fn early_stopped(rows: &[Row], arm: &str) -> bool {
    rows.iter().any(|r| r.arm == arm && r.get("epoch_budget").is_some())
}

/// The pairings of `p` whose `metric` must agree: arms within a cell on both budgets (a best-of
/// comparison against each candidate, an interaction's two rows), one arm across grid levels
/// on the step budget only.
fn sides(design: &Design, rows: &[Row], p: &Prediction, metric: &str) -> Vec<Prediction> {
    let as_rows = |lhs: &str, rhs: &str| Prediction { comparison: Comparison::Rows { lhs: lhs.into(), rhs: Operand::Row(rhs.into()) }, ..p.clone() };
    match &p.comparison {
        Comparison::Arms { .. } => vec![p.clone()],
        Comparison::ArmVsBest { lhs, candidates } => candidates.iter().map(|c| as_rows(lhs.name(), c.name())).collect(),
        Comparison::Levels { axis, arm, minus, .. } => {
            let across = metric == "step_budget" && !BUDGET_AXES.contains(&design.axes[*axis].key.as_str()) && !early_stopped(rows, arm);
            let within = minus.as_ref().map(|m| as_rows(arm, m));
            across.then(|| p.clone()).into_iter().chain(within).collect()
        }
        _ => Vec::new(),
    }
}

/// The first seed whose paired values differ, with both values.
fn first_unequal(design: &Design, rows: &[Row], p: &Prediction) -> Option<(usize, f64, f64)> {
    let sample = per_seed::collect(design, rows, p, design.seeds);
    sample.seeds.iter().find_map(|s| s.pairs.iter().find(|q| q.lhs != q.rhs).map(|q| (s.seed, q.lhs, q.rhs)))
}
