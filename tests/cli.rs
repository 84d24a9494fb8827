//! End-to-end runs of the `kdlab` binary: byte-identical results across runs and thread
//! counts, resuming an interrupted study, the report's contents, and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STUDY: &str = include_str!("data/tiny.toml");

fn kdlab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kdlab")).args(args).current_dir(cwd).output().expect("kdlab runs")
}

/// The study with two cells that differ only in the student: one teacher per seed serves both.
fn two_students() -> String {
    STUDY.replace("n_train = [120, 240]", "n_train = 120").replace("hidden = [16]", "hidden = [[8], [16]]").replace("axis = \"data.n_train\"", "axis = \"student.hidden\"").replace("compare = [240, 120]", "compare = [[16], [8]]")
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

/// An image study (CNN ensemble teacher, augmented CNN student with mixup, cross-fitting on the
/// in-repo digits) is reproducible across thread counts too.
const IMAGE_STUDY: &str = r#"name = "tiny-images"
claim = "A small image study for the determinism test."
seeds = 2
seed = 5
arms = ["labels", "kd", "crossfit"]

[data]
kind = "digits"
small = true
n_train = 120
n_test = 60

[teacher]
kind = "cnn"
members = 2
widths = [4, 8]
epochs = 3

[student]
kind = "cnn"
widths = [4]
epochs = 3
augment = "strong"

[distill]
crossfit_folds = 2
"#;

#[test]
fn image_study_results_are_byte_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("images.toml"), IMAGE_STUDY).unwrap();
    run_ok(dir.path(), &["study", "images.toml", "--jobs", "1", "--out", "one"]);
    run_ok(dir.path(), &["study", "images.toml", "--jobs", "2", "--out", "two"]);
    let read = |out: &str| std::fs::read_to_string(dir.path().join(out).join("tiny-images/results.csv")).unwrap();
    let one = read("one");
    // 1 cell × 2 seeds × (teacher + crossfit-teacher + 3 arms), all computed.
    assert_eq!(one.lines().count(), 1 + 2 * 5);
    assert!(!one.contains(",failed,"), "{one}");
    assert!(one == read("two"), "--jobs 1 and --jobs 2 differ on an image study");
}

/// A fidelity study (augmented stream labelled on the fly, an independent teacher, λ-start,
/// attention maps) and a method study (every network-reading arm) on synthetic images.
const PROTOCOL_STUDIES: [(&str, &str); 2] = [
    (
        "fidelity",
        r#"
name = "tiny-fidelity"
claim = "byte-identical across thread counts"
seeds = 2
arms = ["kd", "kd-independent"]

[data]
kind = "synthetic-images"
side = 8
n_classes = 3
sigma = 0.4
n_train = 90
n_test = 60
n_population = 60

[teacher]
kind = "cnn"
widths = [4, 8]
downsample = 1
members = 2
epochs = 3
validation_fraction = 0.0

[student]
kind = "cnn"
widths = [4, 8]
downsample = 1
epochs = 3
validation_fraction = 0.0
augment = "weak"

[distill]
alpha = 1.0

[fidelity]
extra = "fresh"
n_extra = 30
attention = true
"#,
    ),
    (
        "methods",
        r#"
name = "tiny-methods"
claim = "byte-identical across thread counts"
seeds = 2
arms = ["kd", "label-smoothing", "feature-kd", "london", "rkd", "gkd", "rco", "meta-distil"]

[data]
kind = "multiclass-synthetic"
dim = 5
n_classes = 3
n_train = 97
n_test = 60
n_population = 60

[teacher]
kind = "mlp"
hidden = [16, 16]
epochs = 6
validation_fraction = 0.0

# 97 rows in batches of 32 leave a last batch of one row, which has no pairwise distances:
# the method terms must skip it, not fail the arm (without the skip this study fails).
[student]
kind = "mlp"
hidden = [4, 4]
epochs = 4
batch_size = 32
validation_fraction = 0.0

[distill]
temperature = 2.0
alpha = 0.5

[method]
rco_anchors = 2
london_weight = 1e-3
"#,
    ),
];

#[test]
fn protocol_study_results_are_byte_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    for (file, source) in PROTOCOL_STUDIES {
        let name = format!("{file}.toml");
        std::fs::write(dir.path().join(&name), source).unwrap();
        run_ok(dir.path(), &["study", &name, "--jobs", "1", "--out", "one"]);
        run_ok(dir.path(), &["study", &name, "--jobs", "2", "--out", "two"]);
        let read = |out: &str| std::fs::read_to_string(dir.path().join(out).join(format!("tiny-{file}/results.csv"))).unwrap();
        let one = read("one");
        assert!(!one.contains(",failed,"), "{file}: {one}");
        assert!(one == read("two"), "--jobs 1 and --jobs 2 differ on the {file} study");
        // Each protocol's own metrics get their report section, MI beside its null band.
        let md = std::fs::read_to_string(dir.path().join(format!("one/tiny-{file}.md"))).unwrap();
        let (section, metric) = if file == "fidelity" { ("## Fidelity metrics", "mi_clean_null_high") } else { ("## Method metrics", "geometry_agreement") };
        assert!(md.contains(section) && md.contains(&format!(" {metric} |")), "{file}: report lacks {section} or the {metric} column");
    }
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
    let two_students = two_students();
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
    // Every prediction is also said in words.
    assert!(md.contains("In words, at this study's scale:") && md.contains("- `kd-vs-labels` ") && md.contains("- `more-data-helps` "));
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

// ---- cluster runs: the plan, array tasks, the merge, and the Slurm scripts ----

fn plan_json(dir: &Path, out: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(out).join("tiny/plan.json")).unwrap()).unwrap()
}

#[test]
fn the_plan_lists_one_task_per_cell_with_stable_ids_and_needs() {
    let (dir, _) = study_dir();
    let stdout = run_ok(dir.path(), &["study", "tiny.toml", "--plan", "--out", "p"]);
    assert!(stdout.contains("tiny: 2 array tasks (one per cell, each computing its 3 seeds), 6 units"), "{stdout}");
    let plan = plan_json(dir.path(), "p");
    let tasks = plan["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for (i, task) in tasks.iter().enumerate() {
        assert_eq!(task["index"].as_u64(), Some(i as u64));
        assert_eq!(task["data"]["kind"], "gaussian-mixture");
        assert_eq!(task["teacher"]["kind"], "forest");
        assert_eq!(task["student_fits_per_unit"].as_u64(), Some(2));
        let units = task["units"].as_array().unwrap();
        assert_eq!(units.len(), 3);
        let cell_id = task["cell_id"].as_str().unwrap();
        assert!(stdout.contains(&format!("{i}\t{cell_id}\tdata.n_train = {}", [120, 240][i])), "{stdout}");
        for (s, unit) in units.iter().enumerate() {
            assert_eq!(unit["id"].as_str().unwrap(), format!("{cell_id}-seed{s}"));
            assert!(stdout.contains(unit["teacher_key"].as_str().unwrap()));
        }
    }
    assert_eq!(tasks[0]["n_train"].as_u64(), Some(120));
    // Stable: the same plan again, and its unit ids name the shards a local run stores.
    run_ok(dir.path(), &["study", "tiny.toml", "--plan", "--out", "q"]);
    assert_eq!(plan, plan_json(dir.path(), "q"));
    assert!(!dir.path().join("p/tiny/cells").exists(), "--plan must not compute anything");
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "p"]);
    let mut shards: Vec<String> = std::fs::read_dir(dir.path().join("p/tiny/cells")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    shards.sort();
    let mut ids: Vec<String> = tasks.iter().flat_map(|t| t["units"].as_array().unwrap().iter().map(|u| format!("{}.json", u["id"].as_str().unwrap()))).collect();
    ids.sort();
    assert_eq!(shards, ids);
}

#[test]
fn array_tasks_then_a_merge_give_the_local_results_byte_for_byte() {
    let (dir, _) = study_dir();
    run_ok(dir.path(), &["study", "tiny.toml", "--jobs", "2", "--out", "local"]);
    // Before any task has run, a merge refuses and names what is missing.
    let out = kdlab(&["report", "tiny.toml", "--out", "array"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 units have no stored result yet"), "{}", String::from_utf8_lossy(&out.stderr));
    let status = run_ok(dir.path(), &["status", "tiny.toml", "--out", "array"]);
    assert!(status.contains("tiny: 2 tasks: 0 done, 0 running, 0 failed, 2 pending (0/6 units stored)"), "{status}");
    // Every task, as a job array would run them: by index, one thread each; task 1 by its id.
    let plan = run_ok(dir.path(), &["study", "tiny.toml", "--plan", "--out", "array"]);
    let cell1 = plan.lines().find_map(|l| l.strip_prefix("1\t")).unwrap().split('\t').next().unwrap().to_string();
    let first = run_ok(dir.path(), &["run-cell", "tiny.toml", "--index", "0", "--jobs", "1", "--out", "array"]);
    assert!(first.contains("task 0 (cell ") && first.contains("3 units computed, 0 already stored"), "{first}");
    let partial = run_ok(dir.path(), &["status", "tiny.toml", "--out", "array"]);
    assert!(partial.contains("1 done, 0 running, 0 failed, 1 pending (3/6 units stored)") && partial.contains("pending tasks: 1"), "{partial}");
    run_ok(dir.path(), &["run-cell", "tiny.toml", "--cell", &cell1, "--jobs", "1", "--out", "array"]);
    // A finished task is a no-op: nothing recomputed, no shard rewritten.
    let shards = dir.path().join("array/tiny/cells");
    let snapshot = |d: &Path| -> Vec<(String, std::time::SystemTime, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::metadata(&p).unwrap().modified().unwrap(), std::fs::read(&p).unwrap())
        }).collect();
        v.sort();
        v
    };
    let before = snapshot(&shards);
    assert_eq!(before.len(), 6);
    let again = run_ok(dir.path(), &["run-cell", "tiny.toml", "--index", "0", "--out", "array"]);
    assert!(again.contains("0 units computed, 3 already stored"), "{again}");
    assert!(snapshot(&shards) == before, "rerunning a finished task must not touch its shards");

    let merged = run_ok(dir.path(), &["report", "tiny.toml", "--out", "array"]);
    assert!(merged.contains("6 units merged, 0 failed rows"), "{merged}");
    for file in ["results.csv", "results.parquet", "verdicts.json"] {
        let read = |out: &str| std::fs::read(dir.path().join(out).join("tiny").join(file)).unwrap();
        assert!(read("local") == read("array"), "{file} of the merge differs from the local run's");
    }
    // The reports differ only in the provenance's timings and thread count.
    let body = |out: &str| {
        let md = std::fs::read_to_string(dir.path().join(out).join("tiny.md")).unwrap();
        md.lines().filter(|l| !(l.starts_with("| threads") || l.starts_with("| stage seconds") || l.starts_with("| wall seconds"))).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body("local"), body("array"));
    let provenance: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("array/tiny/provenance.json")).unwrap()).unwrap();
    assert_eq!(provenance["hosts"].as_array().map(|h| h.len()), Some(1));
    assert_eq!((provenance["teachers_fitted"].as_u64(), provenance["teacher_uses"].as_u64()), (Some(6), Some(6)));
    let done = run_ok(dir.path(), &["status", "tiny.toml", "--out", "array"]);
    assert!(done.contains("2 done, 0 running, 0 failed, 0 pending (6/6 units stored)") && done.contains("merged"), "{done}");
    // A task index beyond the study is an error that says how many there are.
    let out = kdlab(&["run-cell", "tiny.toml", "--index", "2", "--out", "array"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the study has 2 cells"));
}

#[test]
fn the_slurm_dry_run_writes_an_array_and_a_dependent_merge_job() {
    let (dir, _) = study_dir();
    let stdout = run_ok(
        dir.path(),
        &["study", "tiny.toml", "--out", "s", "--seeds", "2", "--slurm-dry-run", "--partition", "short", "--time", "1:00:00", "--cpus-per-task", "4", "--mem", "4G", "--max-parallel", "8"],
    );
    assert!(stdout.contains("scripts written (not submitted)"), "{stdout}");
    assert!(stdout.contains("A=$(sbatch --parsable ") && stdout.contains("&& sbatch --parsable --dependency=afterok:${A%%;*} "), "{stdout}");
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let kdlab_exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_kdlab")).unwrap();
    let array = std::fs::read_to_string(dir.path().join("s/tiny/slurm/array.sbatch")).unwrap();
    let lines: Vec<&str> = array.lines().collect();
    assert_eq!(lines[0], "#!/bin/bash");
    let job_name = lines.iter().find_map(|l| l.strip_prefix("#SBATCH --job-name=")).unwrap();
    assert!(job_name.starts_with("kdlab-tiny-"), "{job_name}");
    for directive in [
        "#SBATCH --array=0-1%8".to_string(),
        "#SBATCH --cpus-per-task=4".into(),
        "#SBATCH --partition=short".into(),
        "#SBATCH --time=1:00:00".into(),
        "#SBATCH --mem=4G".into(),
        format!("#SBATCH --chdir={}", root.display()),
        format!("#SBATCH --output={}/s/tiny/slurm/logs/task-%A_%a.out", root.display()),
    ] {
        assert!(lines.contains(&directive.as_str()), "array script lacks {directive}:\n{array}");
    }
    let exec = format!(
        "exec {} run-cell {}/tiny.toml --out {}/s --seeds 2 --index \"$SLURM_ARRAY_TASK_ID\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"",
        kdlab_exe.display(),
        root.display(),
        root.display()
    );
    assert_eq!(lines.last(), Some(&exec.as_str()), "{array}");
    assert!(dir.path().join("s/tiny/slurm/logs").is_dir(), "Slurm does not create the log directory itself");

    let merge = std::fs::read_to_string(dir.path().join("s/tiny/slurm/merge.sbatch")).unwrap();
    assert!(merge.contains(&format!("#SBATCH --job-name={job_name}-merge")), "{merge}");
    assert!(merge.contains("#SBATCH --cpus-per-task=1") && merge.contains("#SBATCH --partition=short") && !merge.contains("--array"), "{merge}");
    assert!(merge.trim_end().ends_with(&format!("exec {} report {}/tiny.toml --out {}/s --seeds 2 --jobs 1", kdlab_exe.display(), root.display(), root.display())), "{merge}");
    assert!(!dir.path().join("s/tiny/slurm/jobs.json").exists(), "a dry run submits nothing");
    // Slurm settings without --slurm are a mistake in the arguments.
    for args in [&["--partition", "short"][..], &["--cpus-per-task", "2"]] {
        let out = kdlab(&[&["study", "tiny.toml"][..], args].concat(), dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn concurrent_tasks_that_share_teachers_fit_each_one_once() {
    let (dir, path) = study_dir();
    // Their tasks need the same three teachers.
    std::fs::write(&path, two_students()).unwrap();
    let spawn = |i: &str| Command::new(env!("CARGO_BIN_EXE_kdlab")).args(["run-cell", "tiny.toml", "--index", i, "--jobs", "2", "--out", "c"]).current_dir(dir.path()).spawn().unwrap();
    let (mut a, mut b) = (spawn("0"), spawn("1"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    run_ok(dir.path(), &["report", "tiny.toml", "--out", "c"]);
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("c/tiny/provenance.json")).unwrap()).unwrap();
    assert_eq!((p["teachers_fitted"].as_u64(), p["teachers_loaded"].as_u64(), p["teacher_uses"].as_u64()), (Some(3), Some(3), Some(6)), "each teacher is fitted by one task and loaded by the other");
    run_ok(dir.path(), &["study", "tiny.toml", "--out", "local"]);
    let read = |out: &str| std::fs::read(dir.path().join(out).join("tiny/results.csv")).unwrap();
    assert!(read("c") == read("local"), "concurrent tasks must give the local run's results");
}

/// The tiny study as a sequential design (looks at 2, 4 and 6 seeds), with a null prediction
/// that keeps it running: the label-trained student against itself at a one-point larger test
/// set (only the draw changes).
fn sequential_study() -> String {
    STUDY.replace("seeds = 3", "seeds = { min = 2, max = 6, step = 2 }").replace("n_test = 300", "n_test = [300, 301]")
        + "\n[[predictions]]\nid = \"null-control\"\nmetric = \"accuracy\"\naxis = \"data.n_test\"\narm = \"labels\"\ncompare = [301, 300]\nexpect = \"higher\"\n"
        + "\n[health.silence]\nteacher-no-better = \"the null control compares the label student with itself; the tiny teacher's quality does not enter it\"\n"
}

#[test]
fn a_sequential_study_runs_its_looks_resumes_and_runs_on_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seq.toml"), sequential_study()).unwrap();
    run_ok(dir.path(), &["study", "seq.toml", "--jobs", "1", "--out", "one"]);
    run_ok(dir.path(), &["study", "seq.toml", "--jobs", "2", "--out", "two"]);
    let read = |p: &str| std::fs::read(dir.path().join(p)).unwrap();
    assert!(read("one/tiny/results.csv") == read("two/tiny/results.csv"), "--jobs 1 and --jobs 2 differ");
    let md = String::from_utf8(read("one/tiny.md")).unwrap();
    assert!(md.contains("Looks of the sequential design:") && md.contains("| 1 | 2 |"), "{md}");
    // Re-rendered from the stored results, it is read as the same sequential design.
    let table = |md: &str| md[md.find("## Predictions").unwrap()..md.find("## Results").unwrap()].to_string();
    run_ok(dir.path(), &["report", "one/tiny"]);
    assert_eq!(table(&md), table(&String::from_utf8(read("one/tiny.md")).unwrap()));
    // The null control cannot be decided at these sizes, so the design runs to 6 seeds in the
    // cells it uses; verdicts.json carries its numbers.
    let verdicts: serde_json::Value = serde_json::from_slice(&read("one/tiny/verdicts.json")).unwrap();
    let null = verdicts["predictions"].as_array().unwrap().iter().find(|p| p["id"] == "null-control").unwrap().clone();
    assert_eq!((null["verdict"].as_str(), null["look"].as_u64(), null["n_seeds"].as_u64()), (Some("inconclusive"), Some(3), Some(6)), "{null}");
    assert!(null["unit_sd"].as_f64().unwrap() > 0.0 && null["detectable_effect"].as_f64().unwrap() > 0.0, "{null}");
    // Resume: the last look's shards are gone; the rerun recomputes them alone, to the same bytes.
    let cells = dir.path().join("one/tiny/cells");
    let late: Vec<_> = std::fs::read_dir(&cells).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with("seed5.json")).collect();
    assert!(!late.is_empty());
    for p in &late {
        std::fs::remove_file(p).unwrap();
    }
    let stdout = run_ok(dir.path(), &["study", "seq.toml", "--out", "one"]);
    assert!(stdout.contains(&format!("{} units computed", late.len())), "{stdout}");
    assert!(read("one/tiny/results.csv") == read("two/tiny/results.csv"), "the resumed run differs");
    // As a cluster run: array tasks (every cell), then the merge, until the merge stops asking
    // for another look; the results are the local run's bytes.
    let plan = run_ok(dir.path(), &["study", "seq.toml", "--plan", "--out", "c"]);
    assert!(plan.contains("sequential design of 2 to 6 seeds"), "{plan}");
    let mut looks = 0;
    loop {
        for task in 0..4 {
            run_ok(dir.path(), &["run-cell", "seq.toml", "--index", &task.to_string(), "--jobs", "2", "--out", "c"]);
        }
        let merge = kdlab(&["report", "seq.toml", "--out", "c"], dir.path());
        looks += 1;
        if merge.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&merge.stderr);
        assert!(stderr.contains("is not decided yet") && stderr.contains("--slurm"), "{stderr}");
        assert!(looks < 3, "more merges than looks");
    }
    assert_eq!(looks, 3, "one merge per look");
    assert!(read("c/tiny/results.csv") == read("two/tiny/results.csv"), "the cluster run differs from the local run");
}
