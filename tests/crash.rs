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
    assert!(kdlab(dir.path(), "reference").status().unwrap().success());
    let reference = std::fs::read(dir.path().join("reference/crash/results.csv")).unwrap();

    // Kill points spread over the run, by how many of its 8 units have finished: 0 (teachers
    // fitting), 1, 3 and 6. Whatever the exact moment, the rerun must match.
    let mut kills = 0;
    for (i, shards_done) in [0usize, 1, 3, 6].into_iter().enumerate() {
        let out = format!("killed-{i}");
        let mut child = kdlab(dir.path(), &out).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let cells = dir.path().join(&out).join("crash/cells");
        let lock = dir.path().join(&out).join("crash/.lock");
        let count = || std::fs::read_dir(&cells).map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))).count()).unwrap_or(0);
        while child.try_wait().unwrap().is_none() && !(lock.exists() && count() >= shards_done) {
            std::thread::sleep(Duration::from_millis(1));
        }
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
        assert!(status.success(), "rerun after a kill at {shards_done} finished units failed");
        let results = std::fs::read(dir.path().join(&out).join("crash/results.csv")).unwrap();
        assert!(results == reference, "rerun after a kill at {shards_done} finished units differs from the uninterrupted run");
        let leftovers: Vec<_> = files(&dir.path().join(&out).join("crash")).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    }
    assert!(kills >= 3, "the study finished before most kill points");
}

#[test]
fn a_second_run_on_the_same_output_directory_is_refused_with_the_holder_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crash.toml"), STUDY).unwrap();
    let mut first = kdlab(dir.path(), "shared").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait until the first run holds the lock (it writes its pid into the lock file).
    let lock = dir.path().join("shared/crash/.lock");
    let waited = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid")) {
        assert!(waited.elapsed() < Duration::from_secs(30), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Pause the first run so it certainly still holds the lock while the second starts.
    let signal = |sig: &str| assert!(Command::new("kill").args([sig, &first.id().to_string()]).status().unwrap().success());
    signal("-STOP");
    let second = kdlab(dir.path(), "shared").output().unwrap();
    signal("-CONT");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "the second run must be refused while the first holds the lock: {stderr}");
    assert!(stderr.contains(&format!("locked by another kdlab process (pid {})", first.id())), "{stderr}");
    assert!(first.wait().unwrap().success());
    // Afterwards the directory is whole: a third run reuses everything.
    let third = kdlab(dir.path(), "shared").output().unwrap();
    assert!(String::from_utf8_lossy(&third.stdout).contains("0 units computed"), "{}", String::from_utf8_lossy(&third.stdout));
}
