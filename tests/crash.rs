//! Killing `kdlab study` (SIGKILL, no chance to clean up) at several points and running it
//! again gives the same results as an uninterrupted run, and leaves no partial file behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const STUDY: &str = r#"name = "crash"
claim = "A study to kill."
seeds = 4
seed = 5
arms = ["labels", "kd", "crossfit"]

[data]
kind = "gaussian-mixture"
n_train = [300, 600]
n_test = 300
n_population = 3000
dim = 4

[teacher]
kind = "forest"
n_trees = 30

[student]
kind = "mlp"
hidden = [16]
epochs = 40

[distill]
crossfit_folds = 3

[[predictions]]
id = "kd-vs-labels"
metric = "excess_risk"
compare = ["kd", "labels"]
expect = "lower"
"#;

fn kdlab(dir: &Path, out: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kdlab"));
    c.args(["study", "crash.toml", "--jobs", "2", "--out", out]).current_dir(dir);
    c
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_killed_study_reruns_to_identical_results_without_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crash.toml"), STUDY).unwrap();
    let started = std::time::Instant::now();
    assert!(kdlab(dir.path(), "reference").status().unwrap().success());
    let duration = started.elapsed();
    let reference = std::fs::read(dir.path().join("reference/crash/results.csv")).unwrap();

    // Kill points spread over the run, as fractions of the uninterrupted run's duration: while
    // teachers fit, while units run, and near the end. Whatever the exact moment, the rerun
    // must match.
    let mut kills = 0;
    for (i, fraction) in [0.05, 0.25, 0.5, 0.8].into_iter().enumerate() {
        let delay_ms = (duration.as_secs_f64() * fraction * 1000.0) as u64;
        let out = format!("killed-{i}");
        let mut child = kdlab(dir.path(), &out).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever was written is whole: every shard that exists parses.
        let cells = dir.path().join(&out).join("crash/cells");
        if cells.exists() {
            for shard in files(&cells).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
                let bytes = std::fs::read(&shard).unwrap();
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| panic!("{} is corrupt: {e}", shard.display()));
            }
        }
        let status = kdlab(dir.path(), &out).stdout(std::process::Stdio::null()).status().unwrap();
        assert!(status.success(), "rerun after a kill at {delay_ms} ms failed");
        let results = std::fs::read(dir.path().join(&out).join("crash/results.csv")).unwrap();
        assert!(results == reference, "rerun after a kill at {delay_ms} ms differs from the uninterrupted run");
        let leftovers: Vec<_> = files(&dir.path().join(&out).join("crash")).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    }
    assert!(kills >= 3, "the study finished before most kill points");
}
