//! Teacher prediction files: a teacher's class probabilities on the rows of a `file` data set,
//! one directory per replicate seed (`seed-<s>/`):
//!
//! - `train.csv`: the training rows, in the order the replicate uses them, with the teacher's
//!   in-sample probabilities (it saw these rows);
//! - `test.csv`: the test rows with its probabilities;
//! - `out_of_fold.csv` (when cross-fitting): each training row scored by the fold teacher that
//!   did not see it, with that fold's id.
//!
//! Columns: `row` (the row's number in the data file: its position among the rows the data
//! loader kept, from 1, which is its data-row number when no row was dropped), `fold` (out of
//! fold only), then `p0` … `p{k-1}`. Numbers are written in Rust's shortest form that reads back
//! to the same f64, so the files carry the teacher's outputs exactly. `kdlab study
//! --export-teacher DIR` writes them, with `teacher.json` saying what produced them.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use serde::Serialize;

use crate::fsio;

/// What one replicate's files hold.
pub struct TeacherSet<'a> {
    /// Table positions (from 0) of the training and test rows, in the replicate's order.
    pub train_rows: &'a [usize],
    pub test_rows: &'a [usize],
    pub train: ArrayView2<'a, f64>,
    pub test: ArrayView2<'a, f64>,
    /// Out-of-fold probabilities of the training rows and each row's fold.
    pub out_of_fold: Option<(ArrayView2<'a, f64>, &'a [usize])>,
}

/// `teacher.json`: where the files came from.
#[derive(Serialize)]
pub struct Manifest {
    pub study: String,
    pub study_sha256: String,
    pub kdlab_version: String,
    pub git_commit: String,
    /// The `[data]` and `[teacher]` settings, as kdlab read them.
    pub data: serde_json::Value,
    pub teacher: serde_json::Value,
    pub classes: usize,
    pub values: &'static str,
    /// Seeds with files, and seeds whose teacher failed (with the reason; no files).
    pub seeds: Vec<usize>,
    pub failed: Vec<(usize, String)>,
}

/// The directory of replicate `seed`.
pub fn seed_dir(dir: &Path, seed: usize) -> PathBuf {
    dir.join(format!("seed-{seed}"))
}

/// Writes one replicate's files under `dir/seed-<seed>/`, each atomically.
pub fn write_set(dir: &Path, seed: usize, set: &TeacherSet) -> io::Result<()> {
    let dir = seed_dir(dir, seed);
    std::fs::create_dir_all(&dir)?;
    fsio::write_atomic(&dir.join("train.csv"), table(set.train_rows, None, set.train).as_bytes())?;
    fsio::write_atomic(&dir.join("test.csv"), table(set.test_rows, None, set.test).as_bytes())?;
    if let Some((p, folds)) = set.out_of_fold {
        fsio::write_atomic(&dir.join("out_of_fold.csv"), table(set.train_rows, Some(folds), p).as_bytes())?;
    }
    Ok(())
}

/// Writes `teacher.json`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    fsio::write_atomic(&dir.join("teacher.json"), serde_json::to_string_pretty(manifest).map_err(io::Error::other)?.as_bytes())
}

/// One CSV: `row`, `fold` when given, `p0` … `p{k-1}`.
fn table(rows: &[usize], folds: Option<&[usize]>, p: ArrayView2<f64>) -> String {
    let mut out = String::from("row");
    if folds.is_some() {
        out.push_str(",fold");
    }
    for j in 0..p.ncols() {
        let _ = write!(out, ",p{j}");
    }
    out.push('\n');
    for (i, &row) in rows.iter().enumerate() {
        let _ = write!(out, "{}", row + 1);
        if let Some(f) = folds {
            let _ = write!(out, ",{}", f[i]);
        }
        for v in p.row(i) {
            let _ = write!(out, ",{v:?}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn numbers_read_back_exactly() {
        let p = array![[0.1 + 0.2, 1.0 - (0.1 + 0.2)], [1.0 / 3.0, 2.0 / 3.0]];
        let text = table(&[4, 0], Some(&[1, 0]), p.view());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "row,fold,p0,p1");
        assert!(lines[1].starts_with("5,1,"));
        let back: Vec<f64> = lines[1].split(',').skip(2).map(|v| v.parse().unwrap()).collect();
        assert_eq!(back, vec![p[[0, 0]], p[[0, 1]]]);
    }
}
