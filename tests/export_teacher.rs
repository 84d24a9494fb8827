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
