//! Health checks: signs that a study's rows cannot judge its claims, whatever the verdict
//! engine says of them. Each check reads the results table and reports [`Finding`]s naming the
//! cells and rows it concerns, with their numbers. A finding that touches a prediction's cells
//! and compared rows makes its verdict "not applicable", unless the study silences the check
//! (`[health.silence]`, with a reason the report prints).
//!
//! Adding a check: one file with a type that implements [`Check`], plus its line in [`CHECKS`].

mod budget;
mod chance;
mod collapse;
mod convergence;
mod diverged;
mod teacher;

use std::collections::BTreeSet;

use crate::results::{Row, RowKind};
use crate::stats::{self, Summary};
use crate::study::{Comparison, Operand, Prediction};
use crate::verdicts::Design;

/// One health check.
pub trait Check: Sync {
    /// The name a study silences it by.
    fn name(&self) -> &'static str;
    /// What it flags, for the report.
    fn rule(&self) -> &'static str;
    fn run(&self, design: &Design, rows: &[Row]) -> Vec<Finding>;
}

/// Every check, in the order the report lists them.
pub const CHECKS: &[&dyn Check] = &[
    &convergence::NotConverged,
    &teacher::TeacherNoBetter,
    &chance::AtChance,
    &budget::UnequalBudget,
    &collapse::Collapsed,
    &diverged::Diverged,
];

/// The checks' names.
pub fn names() -> Vec<&'static str> {
    CHECKS.iter().map(|c| c.name()).collect()
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub check: &'static str,
    /// What was measured, with its numbers.
    pub detail: String,
    pub cells: BTreeSet<usize>,
    /// The rows (arms or pseudo-arms) it concerns; empty: every row of those cells.
    pub rows: BTreeSet<String>,
    /// Set when the finding is about one prediction's own comparison.
    pub prediction: Option<String>,
    /// The study's reason, when it silences the check.
    pub silenced: Option<String>,
}

impl Finding {
    fn new(check: &'static str, detail: String, cells: impl IntoIterator<Item = usize>, rows: impl IntoIterator<Item = String>) -> Finding {
        Finding { check, detail, cells: cells.into_iter().collect(), rows: rows.into_iter().collect(), prediction: None, silenced: None }
    }

    /// Whether it bears on `prediction`, which reads `cells` and compares `rows`.
    pub fn touches(&self, prediction: &Prediction, cells: &BTreeSet<usize>, rows: &BTreeSet<String>) -> bool {
        if let Some(id) = &self.prediction {
            return *id == prediction.id;
        }
        !self.cells.is_disjoint(cells) && (self.rows.is_empty() || !self.rows.is_disjoint(rows))
    }
}

/// Every check's findings on `rows`, with the study's silencing applied.
pub fn run(design: &Design, rows: &[Row]) -> Vec<Finding> {
    let mut out = Vec::new();
    for check in CHECKS {
        let reason = design.silenced.iter().find(|(name, _)| name == check.name()).map(|(_, why)| why.clone());
        out.extend(check.run(design, rows).into_iter().map(|f| Finding { silenced: reason.clone(), ..f }));
    }
    out
}

/// The rows a prediction compares, its preconditions' rows included.
pub fn rows_compared(prediction: &Prediction) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match &prediction.comparison {
        Comparison::Arms { lhs, rhs } => out.extend([lhs.name().to_string(), rhs.name().to_string()]),
        Comparison::ArmVsBest { lhs, candidates } => out.extend(std::iter::once(lhs.name().to_string()).chain(candidates.iter().map(|a| a.name().to_string()))),
        Comparison::Constant { arm, .. } => {
            out.insert(arm.name().to_string());
        }
        Comparison::Levels { arm, minus, .. } => out.extend(std::iter::once(arm.clone()).chain(minus.clone())),
        Comparison::Correlation { arm, .. } => {
            out.insert(arm.clone());
        }
        Comparison::Rows { lhs, rhs } => {
            out.insert(lhs.clone());
            if let Operand::Row(r) = rhs {
                out.insert(r.clone());
            }
        }
    }
    for c in &prediction.requires {
        out.insert(c.lhs.clone());
        if let Operand::Row(r) = &c.rhs {
            out.insert(r.clone());
        }
    }
    out
}

/// `metric` of the rows of `arm` in `cell` that computed, by seed.
fn by_seed(rows: &[Row], cell: usize, arm: &str, metric: &str) -> Vec<(usize, f64)> {
    rows.iter().filter(|r| r.cell_index == cell && r.arm == arm && r.failure.is_none()).filter_map(|r| r.get(metric).map(|v| (r.seed, v))).collect()
}

/// The arms (student rows, not pseudo-arms) of `cell`, in first-seen order.
fn student_arms(rows: &[Row], cell: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.cell_index == cell && r.kind() == RowKind::Arm) {
        if !out.contains(&r.arm) {
            out.push(r.arm.clone());
        }
    }
    out
}

/// "0.812 [0.790, 0.834], n = 10".
fn summary_text(s: &Summary) -> String {
    if s.n < 2 {
        return format!("{:.3}, n = {}", s.mean, s.n);
    }
    format!("{:.3} [{:.3}, {:.3}], n = {}", s.mean, s.ci_low, s.ci_high, s.n)
}

fn summary(values: impl IntoIterator<Item = f64>) -> Summary {
    stats::summarize(&values.into_iter().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::results::Row;
    use crate::stats::Verdict;
    use crate::study::{self, Study};
    use crate::verdicts::evaluate;

    /// A one-cell study whose `kd`-beats-`labels` prediction holds by a wide margin, with
    /// `extra` appended to the prediction and `tail` to the file.
    fn study(extra: &str, tail: &str) -> Study {
        let source = format!("name = \"h\"\nclaim = \"c\"\nseeds = 8\narms = [\"labels\", \"kd\"]\n[data]\nkind = \"gaussian-mixture\"\nn_train = 100\n[teacher]\nkind = \"forest\"\n[student]\nkind = \"mlp\"\n[[predictions]]\nid = \"kd-beats-labels\"\nmetric = \"accuracy\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"higher\"\n{extra}\n{tail}");
        study::parse(Path::new("h.toml"), &source, &study::LoadOptions::default()).expect("valid")
    }

    /// 8 seeds of teacher, labels and kd rows: `metric(arm, seed)` gives each row's metrics.
    fn rows(study: &Study, metric: impl Fn(&str, usize) -> Vec<(&'static str, f64)>) -> Vec<Row> {
        let cell = &study.cells[0];
        let mut out = Vec::new();
        for s in 0..8 {
            for arm in ["teacher", "labels", "kd"] {
                let metrics: BTreeMap<String, f64> = metric(arm, s).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                out.push(Row { cell_index: 0, cell_id: cell.id.clone(), levels: cell.levels.clone(), seed: s, arm: arm.into(), failure: None, metrics, reliability: Vec::new() });
            }
        }
        out
    }

    /// Healthy rows: teacher 0.9, kd 0.8, labels 0.7 (± a seed wobble), converged, equal budgets.
    fn healthy(arm: &str, s: usize) -> Vec<(&'static str, f64)> {
        let wobble = (s as f64 * 0.37).sin() * 0.01;
        let acc = match arm {
            "teacher" => 0.9,
            "kd" => 0.8,
            _ => 0.7,
        } + wobble;
        let mut m = vec![("accuracy", acc), ("teacher_in_sample_excess", 0.05 + wobble)];
        if arm == "teacher" {
            m.push(("chance_accuracy", 0.5));
        } else {
            m.extend([("best_epoch", 30.0), ("epoch_budget", 100.0), ("step_budget", 1000.0), ("fit_rows", 500.0)]);
        }
        m
    }

    #[test]
    fn the_study_reader_knows_every_check_by_name() {
        assert_eq!(crate::study::HEALTH_CHECKS, super::names().as_slice());
    }

    #[test]
    fn healthy_rows_pass_every_check_and_keep_their_verdict() {
        let study = study("", "");
        let e = evaluate(&study, &rows(&study, healthy));
        assert!(e.health.is_empty(), "{:?}", e.health);
        assert_eq!(e.decisions[0].verdict, Verdict::Supported);
    }

    #[test]
    fn an_unshown_precondition_makes_the_verdict_not_applicable() {
        // The teacher's excess is 0.05 > 0 in every seed: shown. Required below 0: not shown.
        let shown = study("requires = [{ metric = \"teacher_in_sample_excess\", compare = [\"teacher\", 0.0], expect = \"higher\" }]", "");
        let e = evaluate(&shown, &rows(&shown, healthy));
        assert!(e.decisions[0].conditions[0].met);
        assert_eq!(e.decisions[0].verdict, Verdict::Supported);
        let unshown = study("requires = [{ metric = \"teacher_in_sample_excess\", compare = [\"teacher\", 0.0], expect = \"lower\" }]", "");
        let e = evaluate(&unshown, &rows(&unshown, healthy));
        assert!(!e.decisions[0].conditions[0].met);
        assert_eq!(e.decisions[0].verdict, Verdict::NotApplicable);
        // A condition between two rows: the teacher above the label student.
        let rows_condition = study("requires = [{ metric = \"accuracy\", compare = [\"teacher\", \"labels\"], expect = \"higher\" }]", "");
        assert_eq!(evaluate(&rows_condition, &rows(&rows_condition, healthy)).decisions[0].verdict, Verdict::Supported);
    }

    /// The verdict on rows where `change` breaks the healthy ones, and the checks that fired.
    fn broken(change: impl Fn(&str, usize, &mut Vec<(&'static str, f64)>), tail: &str) -> (Verdict, Vec<&'static str>) {
        let study = study("", tail);
        let e = evaluate(&study, &rows(&study, |arm, s| {
            let mut m = healthy(arm, s);
            change(arm, s, &mut m);
            m
        }));
        (e.decisions[0].verdict, e.health.iter().map(|f| f.check).collect())
    }

    fn set(m: &mut [(&'static str, f64)], key: &str, v: f64) {
        m.iter_mut().find(|p| p.0 == key).expect("present").1 = v;
    }

    #[test]
    fn each_check_fires_on_its_fault_and_gates_the_verdict() {
        let cases: Vec<(&str, Box<dyn Fn(&str, usize, &mut Vec<(&'static str, f64)>)>)> = vec![
            ("not-converged", Box::new(|arm, _, m| if arm == "kd" { set(m, "best_epoch", 99.0) })),
            ("teacher-no-better", Box::new(|arm, s, m| if arm == "teacher" { set(m, "accuracy", 0.69 + s as f64 * 1e-3) })),
            ("at-chance", Box::new(|arm, _, m| if arm == "kd" { set(m, "accuracy", 0.51) })),
            ("unequal-budget", Box::new(|arm, _, m| if arm == "kd" { set(m, "fit_rows", 450.0) })),
            ("collapsed", Box::new(|arm, s, m| if arm == "kd" && s == 3 { set(m, "accuracy", 0.4) })),
        ];
        for (check, change) in cases {
            let (verdict, fired) = broken(change, "");
            assert_eq!(fired, vec![check]);
            assert_eq!(verdict, Verdict::NotApplicable, "{check}");
        }
    }

    #[test]
    fn a_silenced_check_is_reported_and_does_not_gate() {
        let (verdict, fired) = broken(|arm, _, m| if arm == "kd" { set(m, "best_epoch", 99.0) }, "[health.silence]\nnot-converged = \"fixed-length protocol\"\n");
        assert_eq!(fired, vec!["not-converged"]);
        assert_eq!(verdict, Verdict::Supported);
    }

    #[test]
    fn a_finding_on_rows_a_prediction_does_not_compare_leaves_it_alone() {
        // `labels` at chance would touch a prediction on `kd` alone, not one comparing `kd`
        // with a constant.
        let study = study("", "");
        let mut p = study.predictions[0].clone();
        p.comparison = crate::study::Comparison::Rows { lhs: "kd".into(), rhs: crate::study::Operand::Constant(0.5) };
        let f = super::Finding::new("at-chance", String::new(), [0], ["labels".to_string()]);
        assert!(!f.touches(&p, &[0].into(), &super::rows_compared(&p)));
        assert!(f.touches(&study.predictions[0], &[0].into(), &super::rows_compared(&study.predictions[0])));
    }
}
