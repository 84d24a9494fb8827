//! Training budgets and the rows each arm trains on: `steps` fixes the optimiser steps whatever
//! the rows, MetaDistil's quiz rows can be held out of every arm, and the index's replication
//! scoreboard groups predictions by the paper a study names.

mod common;

use std::path::Path;

use kdlab::results::Row;
use kdlab::runner::{self, RunOptions};
use kdlab::study::{parse, LoadOptions};

/// `metric` of every student row of `arm` in the cell whose first level is `level`.
fn values(rows: &[Row], arm: &str, level: &str, metric: &str) -> Vec<f64> {
    rows.iter().filter(|r| r.arm == arm && r.levels[0] == level).map(|r| r.get(metric).unwrap_or_else(|| panic!("{arm} lacks {metric}"))).collect()
}

const SIZES: &str = r#"name = "budgets"
claim = "c"
seeds = 2
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = [100, 400]
n_test = 200
n_population = 200

[teacher]
kind = "forest"
n_trees = 5

[student]
kind = "mlp"
hidden = [4]
TRAINING
batch_size = 32
"#;

#[test]
fn a_step_budget_is_the_same_whatever_the_rows() {
    // 80 and 320 fit rows (20% validation) at batch 32 are 3 and 10 batches per pass: 30 steps
    // take 10 and 3 passes.
    let (_, rows) = common::run_study(&SIZES.replace("TRAINING", "steps = 30"));
    for (level, fit, passes) in [("100", 80.0, 10.0), ("400", 320.0, 3.0)] {
        for arm in ["labels", "kd"] {
            assert!(values(&rows, arm, level, "step_budget").iter().all(|&s| s == 30.0), "{arm} at n = {level}");
            assert!(values(&rows, arm, level, "fit_rows").iter().all(|&r| r == fit));
            assert!(values(&rows, arm, level, "epoch_budget").iter().all(|&e| e == passes));
        }
    }
    // With epochs, the budget grows with the rows: 5 passes of 3 and of 10 batches.
    let (_, rows) = common::run_study(&SIZES.replace("TRAINING", "epochs = 5"));
    assert!(values(&rows, "kd", "100", "step_budget").iter().all(|&s| s == 15.0));
    assert!(values(&rows, "kd", "400", "step_budget").iter().all(|&s| s == 50.0));
}

const META: &str = r#"name = "quiz"
claim = "c"
seeds = 2
arms = ["kd", "meta-distil"]

[data]
kind = "gaussian-mixture"
n_train = 100
n_test = 200
n_population = 200

[teacher]
kind = "mlp"
hidden = [8]
epochs = 3

[student]
kind = "mlp"
hidden = [4]
epochs = 2
validation_fraction = 0.0

[method]
quiz_for_every_arm = [true, false]
teacher_frozen_fraction = 0.5
"#;

#[test]
fn the_quiz_rows_can_be_held_out_of_every_arm() {
    // 10% of 100 rows are the quiz: with `quiz_for_every_arm` both arms train on 90 rows and
    // take the same steps; without it `kd` trains on all 100.
    let (_, rows) = common::run_study(META);
    for arm in ["kd", "meta-distil"] {
        assert!(values(&rows, arm, "true", "fit_rows").iter().all(|&r| r == 90.0), "{arm}");
    }
    assert_eq!(values(&rows, "kd", "true", "step_budget"), values(&rows, "meta-distil", "true", "step_budget"));
    assert!(values(&rows, "kd", "false", "fit_rows").iter().all(|&r| r == 100.0));
    assert!(values(&rows, "meta-distil", "false", "fit_rows").iter().all(|&r| r == 90.0));
}

#[test]
fn the_index_groups_predictions_by_paper_with_both_effects() {
    let source = SIZES.replace("TRAINING", "epochs = 5").replace("claim = \"c\"", "claim = \"c\"\npaper = \"Someone et al. 2020\"")
        + "\n[[predictions]]\nid = \"kd-vs-labels\"\nmetric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\npaper = { effect = -0.123, unit = \"nats\", source = \"Table 9\" }\n";
    let study = parse(Path::new("budgets.toml"), &source, &LoadOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    runner::run(&study, &RunOptions { jobs: 2, ..RunOptions::new(out.path()) }).unwrap();
    let index = std::fs::read_to_string(out.path().join("README.md")).unwrap();
    let board = index.split("## Replication scoreboard").nth(1).expect("the index has a scoreboard");
    assert!(board.contains("### Someone et al. 2020"), "{board}");
    let line = board.lines().find(|l| l.contains("`kd-vs-labels`")).expect("the prediction is listed");
    assert!(line.contains("-0.1230 nats (Table 9)"), "{line}");
    let report = std::fs::read_to_string(out.path().join("budgets.md")).unwrap();
    assert!(report.contains("| kd-vs-labels |") && report.contains("Table 9"), "the report shows the paper's effect");
}
