//! End-to-end runs of the `kdlab` binary: byte-identical results across runs and thread
//! counts, resuming an interrupted study, the report's contents, and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STUDY: &str = r#"name = "tiny"
claim = "A small study for the end-to-end tests."
seeds = 3
seed = 11
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = [120, 240]
n_test = 300
n_population = 2000
dim = 3
radius = 0.6

[teacher]
kind = "forest"
n_trees = 20
max_depth = 6

[student]
kind = "mlp"
hidden = [16]
epochs = 25
patience = 5

[[predictions]]
id = "kd-vs-labels"
metric = "excess_risk"
compare = ["kd", "labels"]
expect = "lower"

[[predictions]]
id = "more-data-helps"
metric = "excess_risk"
axis = "data.n_train"
arm = "labels"
compare = [240, 120]
expect = "lower"
"#;

fn kdlab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kdlab")).args(args).current_dir(cwd).output().expect("kdlab runs")
}

fn study_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.toml");
    std::fs::write(&path, STUDY).unwrap();
    (dir, path)
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = kdlab(args, dir);
    assert!(out.status.success(), "kdlab {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn results_are_byte_identical_across_runs_and_thread_counts() {
    let (dir, _) = study_dir();
    run_ok(dir.path(), &["study", "tiny.toml", "--jobs", "1", "--out", "one"]);
    run_ok(dir.path(), &["study", "tiny.toml", "--jobs", "2", "--out", "two"]);
    run_ok(dir.path(), &["study", "tiny.toml", "--jobs", "2", "--out", "three"]);
    let read = |out: &str| std::fs::read(dir.path().join(out).join("tiny/results.csv")).unwrap();
    let one = read("one");
    assert!(one.len() > 1000, "results.csv is suspiciously small");
    assert!(one == read("two"), "--jobs 1 and --jobs 2 differ");
    assert!(read("two") == read("three"), "two runs with --jobs 2 differ");
    // 2 cells × 3 seeds × (teacher + oracle + 2 arms) rows plus the header.
    assert_eq!(String::from_utf8(one).unwrap().lines().count(), 1 + 2 * 3 * 4);
}

#[test]
fn an_interrupted_study_resumes_without_recomputing_and_gives_the_same_results() {
    let (dir, _) = study_dir();
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "r"]);
    let results = dir.path().join("r/tiny/results.csv");
    let before = std::fs::read(&results).unwrap();
    // Simulate an interruption: half of the finished units and the results are gone.
    let cells = dir.path().join("r/tiny/cells");
    let mut shards: Vec<_> = std::fs::read_dir(&cells).unwrap().map(|e| e.unwrap().path()).collect();
    shards.sort();
    assert_eq!(shards.len(), 6);
    for s in &shards[..3] {
        std::fs::remove_file(s).unwrap();
    }
    std::fs::remove_file(&results).unwrap();
    let stdout = run_ok(dir.path(), &["study", "tiny.toml", "--out", "r"]);
    assert!(stdout.contains("3 units computed, 3 reused"), "{stdout}");
    assert!(std::fs::read(&results).unwrap() == before, "resumed results differ from the uninterrupted run");
}

#[test]
fn teachers_are_shared_across_cells_and_loaded_by_later_runs() {
    let (dir, path) = study_dir();
    // Two cells that differ only in the student: one teacher per seed serves both.
    let two_students = STUDY.replace("n_train = [120, 240]", "n_train = 120").replace("hidden = [16]", "hidden = [[8], [16]]").replace("axis = \"data.n_train\"", "axis = \"student.hidden\"").replace("compare = [240, 120]", "compare = [[16], [8]]");
    std::fs::write(&path, &two_students).unwrap();
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "c"]);
    let provenance = |out: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(dir.path().join(out).join("tiny/provenance.json")).unwrap()).unwrap() };
    let p = provenance("c");
    assert_eq!((p["teachers_fitted"].as_u64(), p["teachers_loaded"].as_u64(), p["teacher_uses"].as_u64()), (Some(3), Some(0), Some(6)));
    let teacher_rows = |out: &str| -> Vec<String> {
        let csv = std::fs::read_to_string(dir.path().join(out).join("tiny/results.csv")).unwrap();
        csv.lines().filter(|l| l.contains(",teacher,")).map(|l| l.split_once(",teacher,").unwrap().1.to_string()).collect()
    };
    let first = teacher_rows("c");
    assert_eq!(first.len(), 6);
    assert_eq!(first[0], first[3], "both cells of seed 0 must show the same teacher");
    // A later run with another student in the same output directory loads every teacher.
    std::fs::write(&path, two_students.replace("[8]", "[4]")).unwrap();
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "c"]);
    let p = provenance("c");
    assert_eq!((p["teachers_fitted"].as_u64(), p["teachers_loaded"].as_u64()), (Some(0), Some(3)));
    assert_eq!(teacher_rows("c"), first, "a cached teacher must give the same rows as a fitted one");
    let report = std::fs::read_to_string(dir.path().join("c/tiny.md")).unwrap();
    assert!(report.contains("0 fitted, 3 loaded from the teacher cache"), "the report must say which teachers were reused");
}

#[test]
fn the_report_has_verdicts_figures_and_provenance() {
    let (dir, _) = study_dir();
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "rep"]);
    let md = std::fs::read_to_string(dir.path().join("rep/tiny.md")).unwrap();
    for section in ["**Claim.**", "## Setup", "## Predictions", "## Results", "## Figures", "## Failed rows", "## Provenance", "Holm", "study SHA-256", "git commit", "threads"] {
        assert!(md.contains(section), "report lacks {section}");
    }
    assert!(md.contains("| kd-vs-labels |") && md.contains("| more-data-helps |"));
    let fig = dir.path().join("rep/tiny/fig-excess_risk.svg");
    assert!(std::fs::read_to_string(&fig).unwrap().starts_with("<svg"));
    assert!(md.contains("(tiny/fig-excess_risk.svg)"));
    let index = std::fs::read_to_string(dir.path().join("rep/README.md")).unwrap();
    assert!(index.contains("[tiny](tiny.md)"));
    for file in ["results.parquet", "timings.csv", "provenance.json", "study.toml"] {
        assert!(dir.path().join("rep/tiny").join(file).exists(), "{file} missing");
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("rep/tiny")).unwrap().filter_map(|e| {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        name.contains(".tmp-").then_some(name)
    }).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Re-rendering from stored results gives the same prediction table.
    let table = |md: &str| md[md.find("## Predictions").unwrap()..md.find("## Results").unwrap()].to_string();
    run_ok(dir.path(), &["report", "rep/tiny"]);
    let again = std::fs::read_to_string(dir.path().join("rep/tiny.md")).unwrap();
    assert_eq!(table(&md), table(&again));
}

#[test]
fn a_bad_study_file_exits_with_2_and_names_file_line_and_key() {
    let (dir, path) = study_dir();
    std::fs::write(&path, STUDY.replace("n_trees = 20", "n_tres = 20")).unwrap();
    let out = kdlab(&["check", "tiny.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tiny.toml:17:1: key `teacher.n_tres`"), "{err}");
    assert!(err.contains("did you mean `n_trees`?"), "{err}");
    // `study` validates before computing anything.
    let out = kdlab(&["study", "tiny.toml", "--out", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn check_and_list_report_valid_studies() {
    let (dir, _) = study_dir();
    let out = run_ok(dir.path(), &["check", "tiny.toml"]);
    assert!(out.contains("ok (2 cells × 3 seeds × 2 arms, 2 predictions)"), "{out}");
}
