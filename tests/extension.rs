//! kdlab is extended from outside: a method and a metric, each one file in `extension/` plus
//! one registry line below, run in a study end to end (results table, report, verdicts).

mod extension {
    pub mod toy_method;
    pub mod toy_metric;
}

use std::path::Path;

use extension::{toy_method, toy_metric};
use kdlab::registry::Registry;
use kdlab::runner::{self, RunOptions};
use kdlab::study::{parse, LoadOptions};

const STUDY: &str = r#"
name = "extension"
claim = "a registered method and metric run like kdlab's own"
seeds = 4
arms = ["labels", "label-copy", "kd"]
[data]
kind = "gaussian-mixture"
n_train = 200
n_test = 200
n_population = 500
dim = 3
[theory]
oracle_n = 0
[teacher]
kind = "forest"
n_trees = 20
[student]
kind = "mlp"
hidden = [8]
epochs = 20
[[predictions]]
id = "kd-beats-copy"
metric = "test_error"
compare = ["kd", "label-copy"]
expect = "lower"
"#;

fn registry() -> Registry {
    Registry::builtin().with_method(&toy_method::LabelCopy).with_metric(&toy_metric::TEST_ERROR)
}

#[test]
fn a_study_runs_a_registered_method_and_metric() {
    let study = parse(Path::new("extension.toml"), STUDY, &LoadOptions { registry: registry(), ..LoadOptions::default() }).unwrap();
    let out = tempfile::tempdir().unwrap();
    runner::run(&study, &RunOptions { jobs: 2, ..RunOptions::new(out.path()) }).unwrap();
    let dir = out.path().join("extension");
    let rows = kdlab::results::read(&dir, &[], study.registry.metrics()).unwrap();
    assert!(rows.iter().all(|r| r.failure.is_none()), "no row may fail");

    // The method: its student is the labels student, every metric equal, in every seed.
    for seed in 0..4 {
        let of = |arm: &str| rows.iter().find(|r| r.seed == seed && r.arm == arm).unwrap_or_else(|| panic!("no {arm} row for seed {seed}"));
        let (copy, labels, kd) = (of("label-copy"), of("labels"), of("kd"));
        assert_eq!(copy.metrics, labels.metrics, "seed {seed}: label-copy must train the labels student");
        assert_ne!(copy.metrics, kd.metrics, "seed {seed}: label-copy must not train plain KD");
    }

    // The metric: a column of the table, 1 − accuracy on every row (the teacher's too).
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert!(csv.lines().next().unwrap().split(',').any(|c| c == "test_error"), "results.csv has the metric's column");
    for r in &rows {
        let (error, accuracy) = (r.get("test_error").expect("every row has the toy metric"), r.get("accuracy").unwrap());
        assert!((error - (1.0 - accuracy)).abs() < 1e-12, "{}: {error} vs 1 − {accuracy}", r.arm);
    }

    // The report knows both by name, and the prediction on them has a verdict.
    let report = std::fs::read_to_string(out.path().join("extension.md")).unwrap();
    assert!(report.contains("`label-copy`: toy: receives the teacher's probabilities"), "the report lists the arm");
    assert!(report.contains("`test_error`: toy: test error"), "the report's legend states the metric");
    let verdicts = std::fs::read_to_string(dir.join("verdicts.json")).unwrap();
    assert!(verdicts.contains("kd-beats-copy"), "the prediction was judged");

    // Re-rendering needs the same registry; kdlab's own does not know the toy names.
    kdlab::report::rerender(&dir, &registry()).unwrap();
    let unknown = kdlab::report::rerender(&dir, &Registry::builtin()).unwrap_err().to_string();
    assert!(unknown.contains("label-copy"), "{unknown}");
}

/// A method whose targets do not suit the cell's student (loss terms for a forest student,
/// which `label-copy` does not declare it cannot train) fails its rows with the reason; the
/// other arms and the report go on.
#[test]
fn targets_that_do_not_suit_the_student_fail_the_row_not_the_run() {
    let source = STUDY.replace("kind = \"mlp\"\nhidden = [8]\nepochs = 20", "kind = \"forest-regressor\"\nn_trees = 5");
    let study = parse(Path::new("extension.toml"), &source, &LoadOptions { registry: registry(), ..LoadOptions::default() }).unwrap();
    let out = tempfile::tempdir().unwrap();
    runner::run(&study, &RunOptions { jobs: 2, ..RunOptions::new(out.path()) }).unwrap();
    let rows = kdlab::results::read(&out.path().join("extension"), &[], study.registry.metrics()).unwrap();
    let copies: Vec<_> = rows.iter().filter(|r| r.arm == "label-copy").collect();
    assert_eq!(copies.len(), 4);
    for r in copies {
        let reason = r.failure.as_deref().expect("the arm's rows fail");
        assert!(reason.contains("forest student needs a regression target"), "{reason}");
    }
    assert!(rows.iter().filter(|r| r.arm == "kd").all(|r| r.failure.is_none()), "the other arms train");
}

#[test]
fn a_taken_name_cannot_be_registered_twice() {
    let twice = std::panic::catch_unwind(|| Registry::builtin().with_method(&toy_method::LabelCopy).with_method(&toy_method::LabelCopy));
    assert!(twice.is_err());
}
