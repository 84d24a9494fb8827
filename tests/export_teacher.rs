//! `kdlab study --export-teacher DIR`: each seed's teacher predictions as files, on the rows
//! of a `file` data set. The files must carry the teacher's own outputs on the replicate's own
//! rows: recomputing the teacher row's test accuracy from `test.csv` and the data file's labels
//! gives the `results.csv` figure exactly.

use std::collections::BTreeSet;
use std::path::Path;

use kdlab::runner::{self, RunOptions};
use kdlab::study::{parse, LoadOptions};

/// 240 rows of three features and a label 0, 1 or 2 (the class shifts the first feature), from a
/// fixed formula.
fn write_data(path: &Path) -> Vec<usize> {
    let mut text = String::from("a,b,c,y\n");
    let mut labels = Vec::new();
    for i in 0..240usize {
        let y = i % 3;
        let jitter = |k: usize| (((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0) - 0.5;
        text.push_str(&format!("{},{},{},{y}\n", y as f64 * 0.8 + jitter(1), jitter(2), jitter(3)));
        labels.push(y);
    }
    std::fs::write(path, text).unwrap();
    labels
}

fn study(data: &Path, kind: &str) -> String {
    let data_section = match kind {
        "file" => format!("kind = \"file\"\npath = \"{}\"\nlabel = \"y\"\ntest_fraction = 0.25", data.display()),
        _ => "kind = \"gaussian-mixture\"\nn_train = 100\nn_test = 100\nn_population = 200".into(),
    };
    format!("name = \"export\"\nclaim = \"c\"\nseeds = 2\nseed = 5\narms = [\"labels\", \"kd\", \"crossfit\"]\n\n[data]\n{data_section}\n\n[teacher]\nkind = \"forest\"\nn_trees = 20\n\n[student]\nkind = \"mlp\"\nhidden = [8]\nepochs = 5\n")
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect())
}

#[test]
fn exported_files_carry_the_teachers_outputs_on_the_replicates_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    let labels = write_data(&data);
    let s = parse(Path::new("export.toml"), &study(&data, "file"), &LoadOptions::default()).unwrap();
    let options = RunOptions { jobs: 2, ..RunOptions::new(dir.path().join("out")) };
    runner::run(&s, &options).unwrap();
    let export = dir.path().join("teacher");
    assert_eq!(runner::export_teachers(&s, &options, &export).unwrap(), 2);
    let results = std::fs::read_to_string(dir.path().join("out/export/results.csv")).unwrap();
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for seed in 0..2 {
        let seed_dir = export.join(format!("seed-{seed}"));
        let (h_train, train) = read_csv(&seed_dir.join("train.csv"));
        let (h_test, test) = read_csv(&seed_dir.join("test.csv"));
        let (h_oof, oof) = read_csv(&seed_dir.join("out_of_fold.csv"));
        assert_eq!((h_train.join(","), h_test.join(","), h_oof.join(",")), ("row,p0,p1,p2".into(), "row,p0,p1,p2".into(), "row,fold,p0,p1,p2".into()));
        // 240 rows, a quarter of each class held out: 180 training rows and 60 test rows, disjoint.
        let ids = |t: &[Vec<f64>]| t.iter().map(|r| r[0] as usize).collect::<BTreeSet<_>>();
        assert_eq!((train.len(), test.len()), (180, 60));
        assert!(ids(&train).is_disjoint(&ids(&test)) && ids(&train).iter().chain(&ids(&test)).all(|&r| (1..=240).contains(&r)));
        // Out-of-fold: the same rows in the same order, folds 0..10 (the default B), all used;
        // probabilities summing to 1.
        assert!(oof.iter().zip(&train).all(|(o, t)| o[0] == t[0] && (0.0..10.0).contains(&o[1])));
        assert_eq!(oof.iter().map(|o| o[1] as usize).collect::<BTreeSet<_>>().len(), 10);
        assert!(train.iter().chain(&test).all(|r| (r[1..].iter().sum::<f64>() - 1.0).abs() < 1e-9));
        // The teacher row's test accuracy, recomputed from the file and the data's labels.
        let correct = test.iter().filter(|r| {
            let p = &r[1..];
            let argmax = (0..3).fold(0, |best, j| if p[j] > p[best] { j } else { best });
            argmax == labels[r[0] as usize - 1]
        });
        let accuracy = correct.count() as f64 / test.len() as f64;
        let line = results.lines().find(|l| l.split(',').nth(col("seed")) == Some(&seed.to_string()) && l.split(',').nth(col("arm")) == Some("teacher")).unwrap();
        assert_eq!(line.split(',').nth(col("accuracy")).unwrap().parse::<f64>().unwrap(), accuracy, "seed {seed}");
        // teacher_oof_gap: out-of-fold minus in-sample log loss on the training labels, from the
        // files; positive for a forest of fully grown trees (sure of the rows it saw).
        let log_loss = |t: &[Vec<f64>], first: usize| t.iter().map(|r| -r[first + labels[r[0] as usize - 1]].max(1e-15).ln()).sum::<f64>() / t.len() as f64;
        let gap = log_loss(&oof, 2) - log_loss(&train, 1);
        let reported = line.split(',').nth(col("teacher_oof_gap")).unwrap().parse::<f64>().unwrap();
        assert!((reported - gap).abs() < 1e-12 && gap > 0.0, "seed {seed}: gap {gap}, reported {reported}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(export.join("teacher.json")).unwrap()).unwrap();
    assert_eq!((manifest["seeds"].clone(), manifest["classes"].clone()), (serde_json::json!([0, 1]), serde_json::json!(3)));
}

#[test]
fn export_needs_rows_with_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = parse(Path::new("export.toml"), &study(Path::new("unused"), "synthetic"), &LoadOptions::default()).unwrap();
    let options = RunOptions { jobs: 2, ..RunOptions::new(dir.path().join("out")) };
    let e = runner::export_teachers(&s, &options, &dir.path().join("teacher")).unwrap_err().to_string();
    assert!(e.contains("--export-teacher") && e.contains("kind = \"file\""), "{e}");
}

/// Student rows of `results.csv` keyed by (seed, arm): everything from the `seed` column on
/// (the cell id, which hashes the teacher's settings, differs between the two studies).
fn student_rows(results: &str) -> Vec<String> {
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let seed = header.iter().position(|h| *h == "seed").unwrap();
    results.lines().skip(1).filter(|l| !l.contains(",teacher,") && !l.contains(",crossfit-teacher,")).map(|l| l.split(',').skip(seed).collect::<Vec<_>>().join(",")).collect()
}

/// Runs the file-data study in `dir/own` and exports its teachers to `dir/teacher`; returns
/// the data file and the export directory.
fn run_and_export(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data.csv");
    write_data(&data);
    let own = parse(Path::new("export.toml"), &study(&data, "file"), &LoadOptions::default()).unwrap();
    let options = RunOptions { jobs: 2, ..RunOptions::new(dir.join("own")) };
    runner::run(&own, &options).unwrap();
    let export = dir.join("teacher");
    runner::export_teachers(&own, &options, &export).unwrap();
    (data, export)
}

/// The same study with its teacher read back from the exported files: every student (labels,
/// KD on the in-sample probabilities, cross-fit KD on the out-of-fold ones) is byte-identical.
#[test]
fn a_teacher_read_from_exported_files_gives_byte_identical_students() {
    let dir = tempfile::tempdir().unwrap();
    let (data, export) = run_and_export(dir.path());
    let source = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &format!("kind = \"predictions\"\ndir = \"{}\"", export.display()));
    let read = parse(Path::new("export.toml"), &source, &LoadOptions::default()).unwrap();
    runner::run(&read, &RunOptions { jobs: 2, ..RunOptions::new(dir.path().join("read")) }).unwrap();
    let a = std::fs::read_to_string(dir.path().join("own/export/results.csv")).unwrap();
    let b = std::fs::read_to_string(dir.path().join("read/export/results.csv")).unwrap();
    assert_eq!(student_rows(&a).len(), 6, "2 seeds × 3 arms");
    assert!(student_rows(&a).iter().all(|r| r.contains(",ok,")), "every student computed: {a}");
    assert_eq!(student_rows(&a), student_rows(&b));
    // The teacher row's metrics computed from its test probabilities match too.
    let teacher = |r: &str| r.lines().filter(|l| l.contains(",teacher,")).map(|l| l.split(',').skip(3).take(8).collect::<Vec<_>>().join(",")).collect::<Vec<_>>();
    assert_eq!(teacher(&a), teacher(&b));
}

/// Broken teacher prediction files, each made from a good export by one edit: the study stops
/// before any work with the file, and where the fault lies in one, its row and column.
#[test]
fn broken_teacher_files_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (data, good) = run_and_export(dir.path());
    let (train_2, test_1) = {
        let read = |f: &str| std::fs::read_to_string(good.join("seed-0").join(f)).unwrap();
        (read("train.csv").lines().nth(2).unwrap().to_string(), read("test.csv").lines().nth(1).unwrap().to_string())
    };
    let first_field = |line: &str| line.split(',').next().unwrap().to_string();
    type Edit = Box<dyn Fn(&Path)>;
    type LineEdit = Box<dyn Fn(usize, &str) -> String>;
    // Replaces the `n`th line (0 = header) of `file` in seed 0 by `f(line)`.
    let line = |file: &'static str, n: usize, f: Box<dyn Fn(&str) -> String>| -> Edit {
        Box::new(move |d: &Path| {
            let path = d.join("seed-0").join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let out: Vec<String> = text.lines().enumerate().map(|(i, l)| if i == n { f(l) } else { l.to_string() }).collect();
            std::fs::write(&path, out.join("\n") + "\n").unwrap();
        })
    };
    // Applies `f(line index, line)` to every line of `file` in seed 0.
    let every_line = |file: &'static str, f: LineEdit| -> Edit {
        Box::new(move |d: &Path| {
            let path = d.join("seed-0").join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let out: Vec<String> = text.lines().enumerate().map(|(i, l)| f(i, l)).collect();
            std::fs::write(&path, out.join("\n") + "\n").unwrap();
        })
    };
    let set_field = |file: &'static str, n: usize, field: usize, value: &'static str| line(file, n, Box::new(move |l: &str| {
        let mut v: Vec<String> = l.split(',').map(str::to_string).collect();
        v[field] = value.to_string();
        v.join(",")
    }));
    let train_row_2 = first_field(&train_2);
    let test_row_1 = first_field(&test_1);
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        ("no train file", Box::new(|d: &Path| std::fs::remove_file(d.join("seed-0/train.csv")).unwrap()), vec!["seed-0/train.csv: not found".into()]),
        ("no out-of-fold file", Box::new(|d: &Path| std::fs::remove_file(d.join("seed-0/out_of_fold.csv")).unwrap()), vec!["out_of_fold.csv: not found".into(), "arms crossfit need".into()]),
        ("no seed-1 directory", Box::new(|d: &Path| std::fs::remove_dir_all(d.join("seed-1")).unwrap()), vec!["seed-1/train.csv: not found".into()]),
        ("probabilities not summing to 1", set_field("test.csv", 1, 1, "0.5"), vec!["test.csv: row 1, column \"p0 … p2\": the probabilities sum to".into()]),
        ("two classes, not three", every_line("train.csv", Box::new(|_, l: &str| l.rsplit_once(',').unwrap().0.to_string())), vec!["train.csv: columns row, p0, p1, p2 expected, found row, p0, p1 (3 classes, probabilities)".into()]),
        ("a fourth class", every_line("test.csv", Box::new(|i, l: &str| format!("{l},{}", if i == 0 { "p3" } else { "0" }))), vec!["test.csv: columns row, p0, p1, p2 expected, found row, p0, p1, p2, p3".into()]),
        ("a row with a field too many", line("test.csv", 2, Box::new(|l: &str| format!("{l},0"))), vec!["test.csv: row 2".into(), "fields".into()]),
        ("misspelt header", line("test.csv", 0, Box::new(|l: &str| l.replacen("row", "rows", 1))), vec!["test.csv: columns row, p0, p1, p2 expected, found rows,".into()]),
        ("NaN", set_field("test.csv", 2, 2, "NaN"), vec!["test.csv: row 2, column \"p1\"".into(), "not a finite number".into()]),
        ("negative probability", set_field("test.csv", 2, 2, "-0.1"), vec!["test.csv: row 2, column \"p1\": -0.1 is not a probability".into()]),
        ("probability above 1", set_field("train.csv", 3, 1, "1.5"), vec!["train.csv: row 3, column \"p0\": 1.5 is not a probability".into()]),
        ("missing probability", set_field("train.csv", 4, 3, ""), vec!["train.csv: row 4, column \"p2\": missing probability".into()]),
        ("row 0", set_field("train.csv", 1, 0, "0"), vec!["train.csv: row 1, column \"row\": data rows are numbered from 1".into()]),
        ("row beyond the data", set_field("test.csv", 3, 0, "999"), vec!["seed-0: data row 999 does not exist: the data set has 240 rows".into()]),
        ("fractional row", set_field("test.csv", 3, 0, "3.5"), vec!["test.csv: row 3, column \"row\": 3.5 is not a whole number".into()]),
        ("text row", set_field("test.csv", 3, 0, "abc"), vec!["test.csv: row 3, column \"row\": \"abc\" is not a number".into()]),
        ("duplicated row", set_field("train.csv", 1, 0, Box::leak(train_row_2.clone().into_boxed_str())), vec![format!("train.csv: row 2, column \"row\": data row {train_row_2} appears twice (rows 1 and 2)")]),
        ("row in train and test", set_field("train.csv", 5, 0, Box::leak(test_row_1.clone().into_boxed_str())), vec![format!("row {test_row_1} of the data file is both a training row and a test row")]),
        ("out-of-fold rows reordered", set_field("out_of_fold.csv", 1, 0, Box::leak(train_row_2.clone().into_boxed_str())), vec!["out_of_fold.csv: row".into()]),
        ("out-of-fold without folds", every_line("out_of_fold.csv", Box::new(|_, l: &str| { let mut v: Vec<&str> = l.split(',').collect(); v.remove(1); v.join(",") })), vec!["out_of_fold.csv: columns row, fold, p0, p1, p2 expected".into()]),
        ("negative fold", set_field("out_of_fold.csv", 2, 1, "-1"), vec!["out_of_fold.csv: row 2, column \"fold\": -1 is not a whole number".into()]),
        ("header only", Box::new(|d: &Path| std::fs::write(d.join("seed-0/test.csv"), "row,p0,p1,p2\n").unwrap()), vec!["test.csv: no rows".into()]),
        ("empty file", Box::new(|d: &Path| std::fs::write(d.join("seed-0/test.csv"), "").unwrap()), vec!["test.csv: the file is empty".into()]),
        ("semicolons", line("test.csv", 0, Box::new(|l: &str| l.replace(',', ";"))), vec!["test.csv".into(), "semicolons".into()]),
    ];
    assert!(cases.len() >= 20);
    for (i, (name, edit, expected)) in cases.iter().enumerate() {
        let files = dir.path().join(format!("case-{i}"));
        copy_dir(&good, &files);
        edit(&files);
        let source = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &format!("kind = \"predictions\"\ndir = \"{}\"", files.display()));
        let s = parse(Path::new("export.toml"), &source, &LoadOptions::default()).unwrap();
        let message = match runner::run(&s, &RunOptions { jobs: 2, ..RunOptions::new(dir.path().join(format!("out-{i}"))) }) {
            Ok(_) => panic!("{name}: the study ran"),
            Err(e) => e.to_string(),
        };
        for part in expected {
            assert!(message.contains(part.as_str()), "{name}: expected {part:?} in {message:?}");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A teacher of predictions is refused where it cannot serve: data without row ids, a missing
/// directory, an arm that reads the teacher network.
#[test]
fn a_teacher_of_predictions_is_checked_when_the_study_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    write_data(&data);
    let files = dir.path().join("teacher");
    std::fs::create_dir_all(files.join("seed-0")).unwrap();
    std::fs::write(files.join("seed-0/train.csv"), "row,p0,p1,p2\n").unwrap();
    let teacher = format!("kind = \"predictions\"\ndir = \"{}\"", files.display());
    let with = |source: String| parse(Path::new("s.toml"), &source, &LoadOptions::default()).map(|_| ()).unwrap_err().to_string();
    let synthetic = study(&data, "synthetic").replace("kind = \"forest\"\nn_trees = 20", &teacher);
    assert!(with(synthetic).contains("key `teacher.kind`: a teacher of predictions needs `[data] kind = \"file\"`"));
    let missing = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", "kind = \"predictions\"\ndir = \"no-such-directory\"");
    assert!(with(missing).contains("key `teacher.dir`: no-such-directory:"));
    let network_arm = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &teacher).replace("[\"labels\", \"kd\", \"crossfit\"]", "[\"labels\", \"feature-kd\"]");
    assert!(with(network_arm).contains("arm `feature-kd` reads the teacher network"));
}

/// Every CSV of an export as a `.npy` array of the same columns (f64), the CSV removed.
fn to_npy(dir: &Path, logits: bool) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            to_npy(&path, logits);
        } else if path.extension().is_some_and(|e| e == "csv") {
            let (header, rows) = read_csv(&path);
            let first = if header.iter().any(|h| h == "fold") { 2 } else { 1 };
            let flat: Vec<f64> = rows.iter().flat_map(|r| r.iter().enumerate().map(|(j, &v)| if logits && j >= first { v.max(1e-12).ln() } else { v }).collect::<Vec<_>>()).collect();
            let t = candle_core::Tensor::from_vec(flat, (rows.len(), header.len()), &candle_core::Device::Cpu).unwrap();
            t.write_npy(path.with_extension("npy")).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// The export as NumPy arrays gives byte-identical students again; as logits (the log of each
/// probability floored at 1e-12, `values = "logits"`), the teacher's test accuracy is
/// unchanged (a softmax of log-probabilities has the same argmax) and every student computes.
#[test]
fn npy_files_and_logits_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (data, export) = run_and_export(dir.path());
    let npy = dir.path().join("npy");
    copy_dir(&export, &npy);
    to_npy(&npy, false);
    let run = |files: &Path, values: &str, out: &str| {
        let source = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &format!("kind = \"predictions\"\ndir = \"{}\"{values}", files.display()));
        let s = parse(Path::new("export.toml"), &source, &LoadOptions::default()).unwrap();
        runner::run(&s, &RunOptions { jobs: 2, ..RunOptions::new(dir.path().join(out)) }).unwrap();
        std::fs::read_to_string(dir.path().join(out).join("export/results.csv")).unwrap()
    };
    let own = std::fs::read_to_string(dir.path().join("own/export/results.csv")).unwrap();
    assert_eq!(student_rows(&run(&npy, "", "from-npy")), student_rows(&own));
    let logits = dir.path().join("logits");
    copy_dir(&export, &logits);
    to_npy(&logits, true);
    let from_logits = run(&logits, "\nvalues = \"logits\"", "from-logits");
    let header: Vec<&str> = own.lines().next().unwrap().split(',').collect();
    let accuracy = header.iter().position(|h| *h == "accuracy").unwrap();
    let teacher_accuracy = |r: &str| r.lines().filter(|l| l.contains(",teacher,")).map(|l| l.split(',').nth(accuracy).unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(teacher_accuracy(&from_logits), teacher_accuracy(&own));
    assert!(student_rows(&from_logits).iter().all(|r| r.contains(",ok,")));
    // A 1-D array and an array of the wrong width are refused with the file named.
    let broken = dir.path().join("broken");
    copy_dir(&npy, &broken);
    candle_core::Tensor::from_vec(vec![1.0f64, 2.0], 2, &candle_core::Device::Cpu).unwrap().write_npy(broken.join("seed-0/test.npy")).unwrap();
    let source = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &format!("kind = \"predictions\"\ndir = \"{}\"", broken.display()));
    let s = parse(Path::new("export.toml"), &source, &LoadOptions::default()).unwrap();
    let error = |out: &str| runner::run(&s, &RunOptions { jobs: 2, ..RunOptions::new(dir.path().join(out)) }).err().map(|e| e.to_string()).unwrap_or_default();
    let e = error("broken-out");
    assert!(e.contains("seed-0/test.npy: a 1-dimensional array; expected (rows, 4): row, p0, p1, p2"), "{e}");
    candle_core::Tensor::from_vec(vec![1.0f64; 6], (2, 3), &candle_core::Device::Cpu).unwrap().write_npy(broken.join("seed-0/test.npy")).unwrap();
    let e = error("broken-out2");
    assert!(e.contains("seed-0/test.npy: a (2, 3) array; expected 4 columns: row, p0, p1, p2"), "{e}");
}

/// One set of files for every seed (`shared = true`): every seed reads the same split and the
/// same teacher, so the teacher rows agree across seeds while the students (their own seeds)
/// differ. The same files as Parquet give the same students as the CSVs; and every arm that needs
/// only the teacher's probabilities computes.
#[test]
fn shared_sets_parquet_files_and_every_probability_arm() {
    let dir = tempfile::tempdir().unwrap();
    let (data, export) = run_and_export(dir.path());
    let shared = dir.path().join("shared");
    copy_dir(&export.join("seed-0"), &shared);
    let arms = "[\"labels\", \"kd\", \"crossfit\", \"gamma-constant\", \"gamma-corrected\", \"full-orthogonal\", \"enhanced\", \"label-smoothing\", \"kd-instance\", \"kd-class-averaged\"]";
    let run = |files: &Path, extra: &str, out: &str| {
        let source = study(&data, "file").replace("kind = \"forest\"\nn_trees = 20", &format!("kind = \"predictions\"\ndir = \"{}\"{extra}", files.display())).replace("[\"labels\", \"kd\", \"crossfit\"]", arms);
        let s = parse(Path::new("export.toml"), &source, &LoadOptions::default()).unwrap();
        runner::run(&s, &RunOptions { jobs: 2, ..RunOptions::new(dir.path().join(out)) }).unwrap();
        std::fs::read_to_string(dir.path().join(out).join("export/results.csv")).unwrap()
    };
    let results = run(&shared, "\nshared = true", "shared-out");
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let at = |line: &str, name: &str| line.split(',').nth(header.iter().position(|h| *h == name).unwrap()).unwrap().to_string();
    let of = |arm: &str| results.lines().filter(|l| at(l, "arm") == arm).collect::<Vec<_>>();
    assert_eq!(at(of("teacher")[0], "log_loss"), at(of("teacher")[1], "log_loss"), "one teacher for both seeds");
    assert_ne!(at(of("kd")[0], "log_loss"), at(of("kd")[1], "log_loss"), "students of two seeds differ");
    assert_eq!(student_rows(&results).len(), 2 * 10);
    assert!(student_rows(&results).iter().all(|r| r.contains(",ok,")), "every arm computes: {results}");
    // The shared set as Parquet (columns as in the CSVs) gives the same students.
    let parquet = dir.path().join("parquet");
    copy_dir(&shared, &parquet);
    for name in ["train", "test", "out_of_fold"] {
        let csv = parquet.join(format!("{name}.csv"));
        let (header, rows) = read_csv(&csv);
        let columns: Vec<polars::prelude::Column> = header
            .iter()
            .enumerate()
            .map(|(j, h)| match h.as_str() {
                "row" | "fold" => polars::prelude::Column::new(h.into(), rows.iter().map(|r| r[j] as i64).collect::<Vec<_>>()),
                _ => polars::prelude::Column::new(h.into(), rows.iter().map(|r| r[j]).collect::<Vec<_>>()),
            })
            .collect();
        let mut frame = polars::prelude::DataFrame::new(columns).unwrap();
        polars::prelude::ParquetWriter::new(std::fs::File::create(csv.with_extension("parquet")).unwrap()).finish(&mut frame).unwrap();
        std::fs::remove_file(&csv).unwrap();
    }
    assert_eq!(student_rows(&run(&parquet, "\nshared = true", "parquet-out")), student_rows(&results));
}
