//! A cell whose training diverges is reported as failed with its reason; the rest of the study
//! completes, and the statistics exclude the failed rows and say how many there were.


use kdlab::study::{parse, LoadOptions};

const STUDY: &str = r#"name = "diverging"
claim = "One learning rate is absurd."
seeds = 3
seed = 3
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = 200
n_test = 200
n_population = 1000
dim = 3

[teacher]
kind = "forest"
n_trees = 10

[student]
kind = "mlp"
hidden = [8]
epochs = 20
learning_rate = [3e-3, 1e30]

[theory]
oracle_n = 0

[[predictions]]
id = "kd-vs-labels"
metric = "log_loss"
compare = ["kd", "labels"]
expect = "lower"
"#;

#[test]
fn a_diverging_cell_fails_alone_and_is_reported() {
    let study = parse(std::path::Path::new("diverging.toml"), STUDY, &LoadOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = kdlab::runner::run(&study, &kdlab::runner::RunOptions { jobs: 2, ..kdlab::runner::RunOptions::new(out.path()) }).unwrap();
    let rows = kdlab::results::read(&out.path().join("diverging"), &["student.learning_rate".to_string()], kdlab::registry::Registry::builtin().metrics()).unwrap();
    // The sane cell: every student row computed. The absurd one: every student row failed,
    // each with a reason; its teacher rows (which do not depend on the student) computed.
    for r in rows.iter().filter(|r| r.arm != "teacher") {
        match r.levels[0].as_str() {
            "0.003" => assert!(r.failure.is_none(), "{r:?}"),
            _ => {
                let reason = r.failure.as_deref().unwrap_or_else(|| panic!("{r:?} should fail"));
                assert!(reason.contains("diverged") || reason.contains("not finite") || reason.contains("NaN") || reason.contains("inf"), "{reason}");
            }
        }
    }
    assert_eq!(summary.failed_rows, 6);
    let report = std::fs::read_to_string(&summary.report).unwrap();
    assert!(report.contains("Failed rows: 6."), "the verdict line counts failed rows");
    assert!(report.contains("6 rows failed and are excluded from every statistic above."));
    // The prediction pairs only computed rows: 3 seeds of the sane cell, 3 pairs dropped.
    let decision = &kdlab::verdicts::evaluate(&study, &rows).decisions[0];
    assert_eq!((decision.seeds(), decision.cells, decision.dropped), (3, 1, 3));
}

#[test]
fn a_study_over_the_memory_limit_refuses_up_front_with_an_estimate() {
    let study = parse(std::path::Path::new("diverging.toml"), STUDY, &LoadOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = kdlab::runner::RunOptions { jobs: 2, max_memory: Some(1e6), ..kdlab::runner::RunOptions::new(out.path()) };
    let err = kdlab::runner::run(&study, &options).err().expect("1 MB cannot hold a study");
    let message = err.to_string();
    assert!(message.contains("estimated peak memory") && message.contains("GiB") && message.contains("--max-memory"), "{message}");
    // Nothing was computed or written.
    assert!(!out.path().join("diverging").exists());
}
