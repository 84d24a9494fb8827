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
//! fold only), then `p0` … `p{k-1}` (or logits `z0` … `z{k-1}`, stated as `values = "logits"`).
//! A `.npy` file is a 2-D array of those columns in that order. Numbers are written in Rust's shortest form that reads back
//! to the same f64, so the files carry the teacher's outputs exactly. `kdlab study
//! --export-teacher DIR` writes them, with `teacher.json` saying what produced them;
//! `[teacher] kind = "predictions"` reads them (CSV or Parquet), and the files' rows are the
//! replicate's split.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::datasets::{Cells, RawTable};
use crate::fsio;

/// How far a row's probabilities may sum from 1.
const SUM_TOLERANCE: f64 = 1e-4;

/// What the files' value columns hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Values {
    /// `p0` … `p{k-1}`, each row summing to 1.
    #[default]
    Probabilities,
    /// `z0` … `z{k-1}`, any finite numbers; kdlab applies the softmax.
    Logits,
}

impl Values {
    fn prefix(self) -> &'static str {
        match self {
            Values::Probabilities => "p",
            Values::Logits => "z",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Values::Probabilities => "probabilities",
            Values::Logits => "logits",
        }
    }

    fn one(self) -> &'static str {
        match self {
            Values::Probabilities => "probability",
            Values::Logits => "logit",
        }
    }
}

/// `[teacher] kind = "predictions"`: the teacher's probabilities (or logits, stated) read from
/// files in `dir`, one set per seed (`dir/seed-<s>/`) or, with `shared`, one set for every seed
/// (`dir/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PredictionsTeacherSpec {
    pub dir: String,
    #[serde(default)]
    pub shared: bool,
    #[serde(default, skip_serializing_if = "is_probabilities")]
    pub values: Values,
    /// SHA-256 over the files, set when the study is read: a cell's id, and so every stored
    /// result of it, changes with the files' contents.
    #[serde(skip_deserializing, default)]
    pub files_sha256: String,
}

impl PredictionsTeacherSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.dir.is_empty() {
            return Err(("dir", "must name the directory of the teacher's prediction files".into()));
        }
        Ok(())
    }

    /// The directory of replicate `seed`'s files.
    pub fn set_dir(&self, seed: usize) -> PathBuf {
        match self.shared {
            true => PathBuf::from(&self.dir),
            false => seed_dir(Path::new(&self.dir), seed),
        }
    }

    /// SHA-256 over the names (relative to `dir`) and bytes of every file under `dir` (sorted),
    /// or why it cannot be read.
    pub fn hash_files(&self) -> Result<String, String> {
        let mut files = Vec::new();
        collect_files(Path::new(&self.dir), &mut files).map_err(|e| format!("{}: {e}", self.dir))?;
        if files.is_empty() {
            return Err(format!("{}: no prediction files", self.dir));
        }
        files.sort();
        let mut all = Vec::new();
        for f in &files {
            // Names relative to `dir`, so the same files elsewhere hash the same.
            all.extend_from_slice(f.strip_prefix(&self.dir).unwrap_or(f).to_string_lossy().as_bytes());
            all.extend_from_slice(&std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?);
        }
        Ok(fsio::sha256_hex(&all))
    }
}

fn is_probabilities(v: &Values) -> bool {
    *v == Values::Probabilities
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// One replicate's files as read: table positions (from 0) of the rows, and probabilities.
pub struct ReadSet {
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    pub train: Array2<f64>,
    pub test: Array2<f64>,
    pub out_of_fold: Option<Array2<f64>>,
}

/// Reads `dir`'s `train`, `test` and (when `out_of_fold`, which names the arms that need it)
/// `out_of_fold` files for `k` classes of `values`, checking them: every error names the file, and where
/// it lies in one, the row (from 1 after the header) and the column.
pub fn read_set(dir: &Path, k: usize, values: Values, out_of_fold: Option<&str>) -> Result<ReadSet, String> {
    let (train_rows, train, _) = read_one(&find(dir, "train")?, k, values, false)?;
    let (test_rows, test, _) = read_one(&find(dir, "test")?, k, values, false)?;
    if let Some(&r) = train_rows.iter().find(|r| test_rows.contains(r)) {
        return Err(format!("{}: row {} of the data file is both a training row and a test row", dir.display(), r + 1));
    }
    let out_of_fold = match out_of_fold {
        None => None,
        Some(arms) => {
            let path = find(dir, "out_of_fold").map_err(|e| format!("{e} (arms {arms} need the teacher's out-of-fold predictions)"))?;
            let (rows, p, _) = read_one(&path, k, values, true)?;
            if let Some(i) = (0..rows.len().max(train_rows.len())).find(|&i| rows.get(i) != train_rows.get(i)) {
                return Err(format!("{}: row {}, column \"row\": the out-of-fold rows must be the training rows in the same order (train.csv's row {} is data row {})", path.display(), i + 1, i + 1, train_rows.get(i).map_or("–".into(), |r| (r + 1).to_string())));
            }
            Some(p)
        }
    };
    Ok(ReadSet { train_rows, test_rows, train, test, out_of_fold })
}

/// `dir/<name>.csv`, `.parquet` or `.npy`.
fn find(dir: &Path, name: &str) -> Result<PathBuf, String> {
    ["csv", "parquet", "npy"].iter().map(|ext| dir.join(format!("{name}.{ext}"))).find(|p| p.exists()).ok_or_else(|| format!("{}: not found (nor {name}.parquet or {name}.npy)", dir.join(format!("{name}.csv")).display()))
}

/// A file's cells: a table (CSV or Parquet, with its header) or a NumPy array (no header; its
/// columns are the table's in the same order).
enum Source {
    Table(RawTable),
    Array(Array2<f64>),
}

impl Source {
    fn read(path: &Path, expected: &[String]) -> Result<Source, String> {
        if path.extension().is_some_and(|e| e == "npy") {
            let t = candle_core::Tensor::read_npy(path).map_err(|e| format!("{}: not a NumPy array file ({e})", path.display()))?;
            let t = t.to_dtype(candle_core::DType::F64).map_err(|e| format!("{}: {e}", path.display()))?;
            let (n, m) = t.dims2().map_err(|_| format!("{}: a {}-dimensional array; expected (rows, {}): {}", path.display(), t.rank(), expected.len(), expected.join(", ")))?;
            if m != expected.len() {
                return Err(format!("{}: a ({n}, {m}) array; expected {} columns: {}", path.display(), expected.len(), expected.join(", ")));
            }
            let data = t.flatten_all().and_then(|f| f.to_vec1::<f64>()).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(Source::Array(Array2::from_shape_vec((n, m), data).expect("the shape was read with the data")));
        }
        let raw = RawTable::read(path).map_err(|e| e.to_string())?;
        if raw.names != expected {
            return Err(format!("{}: columns {} expected, found {}", path.display(), expected.join(", "), raw.names.join(", ")));
        }
        Ok(Source::Table(raw))
    }

    fn rows(&self) -> usize {
        match self {
            Source::Table(t) => t.height(),
            Source::Array(a) => a.nrows(),
        }
    }

    /// Every column's cells (tables) or nothing (arrays, read directly).
    fn cells<'a>(&'a self, path: &Path) -> Result<Vec<Cells<'a>>, String> {
        match self {
            Source::Table(t) => (0..t.names.len()).map(|c| t.cells(path, c)).collect::<Result<_, _>>().map_err(|e| e.to_string()),
            Source::Array(_) => Ok(Vec::new()),
        }
    }
}

/// One file as read: its rows (positions from 0), probabilities, and folds (out of fold only).
type FileRows = (Vec<usize>, Array2<f64>, Vec<usize>);

/// One file: its rows, probabilities (logits through a softmax), and folds when `folds`.
fn read_one(path: &Path, k: usize, values: Values, folds: bool) -> Result<FileRows, String> {
    let value_names: Vec<String> = (0..k).map(|j| format!("{}{j}", values.prefix())).collect();
    let expected: Vec<String> = std::iter::once("row".to_string()).chain(folds.then(|| "fold".to_string())).chain(value_names.iter().cloned()).collect();
    let source = Source::read(path, &expected).map_err(|e| format!("{e} ({k} classes, {})", values.word()))?;
    let n = source.rows();
    if n == 0 {
        return Err(format!("{}: no rows", path.display()));
    }
    let cells = source.cells(path)?;
    let at = |row: usize, column: &str, message: String| format!("{}: row {row}, column \"{column}\": {message}", path.display());
    // Cell (i, c) as a finite number, `None` when missing.
    let number = |i: usize, c: usize| -> Result<Option<f64>, String> {
        match &source {
            Source::Table(_) => cells[c].number(path, &expected[c], i).map_err(|e| e.to_string()),
            Source::Array(a) if a[[i, c]].is_finite() => Ok(Some(a[[i, c]])),
            Source::Array(a) => Err(at(i + 1, &expected[c], format!("{} is not a finite number", a[[i, c]]))),
        }
    };
    let whole = |i: usize, c: usize| -> Result<usize, String> {
        let v = number(i, c)?.ok_or_else(|| at(i + 1, &expected[c], "missing".into()))?;
        if v < 0.0 || v.fract() != 0.0 || v > 1e12 {
            return Err(at(i + 1, &expected[c], format!("{v} is not a whole number >= 0")));
        }
        Ok(v as usize)
    };
    let (mut rows, mut fold_ids, mut p) = (Vec::with_capacity(n), Vec::new(), Array2::zeros((n, k)));
    let mut seen = std::collections::BTreeMap::new();
    let first = if folds { 2 } else { 1 };
    for i in 0..n {
        let row = whole(i, 0)?;
        if row == 0 {
            return Err(at(i + 1, "row", "data rows are numbered from 1".into()));
        }
        if let Some(earlier) = seen.insert(row, i + 1) {
            return Err(at(i + 1, "row", format!("data row {row} appears twice (rows {earlier} and {})", i + 1)));
        }
        rows.push(row - 1);
        if folds {
            fold_ids.push(whole(i, 1)?);
        }
        for j in 0..k {
            let v = number(i, first + j)?.ok_or_else(|| at(i + 1, &value_names[j], format!("missing {}", values.one())))?;
            if values == Values::Probabilities && !(0.0..=1.0).contains(&v) {
                return Err(at(i + 1, &value_names[j], format!("{v} is not a probability (between 0 and 1)")));
            }
            p[[i, j]] = v;
        }
        match values {
            Values::Probabilities => {
                let sum = p.row(i).sum();
                if (sum - 1.0).abs() > SUM_TOLERANCE {
                    return Err(at(i + 1, &format!("p0 … p{}", k - 1), format!("the probabilities sum to {sum}, not 1")));
                }
            }
            Values::Logits => softmax_in_place(p.row_mut(i)),
        }
    }
    Ok((rows, p, fold_ids))
}

/// exp(z − max z) / Σ exp(z − max z), in place.
fn softmax_in_place(mut z: ndarray::ArrayViewMut1<f64>) {
    let max = z.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    z.mapv_inplace(|v| (v - max).exp());
    let sum = z.sum();
    z.mapv_inplace(|v| v / sum);
}

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
    fn the_files_hash_follows_their_contents_not_their_place() {
        let root = tempfile::tempdir().unwrap();
        let spec = |dir: &Path| PredictionsTeacherSpec { dir: dir.to_string_lossy().into(), shared: false, values: Values::Probabilities, files_sha256: String::new() };
        for d in ["a", "b"] {
            std::fs::create_dir_all(root.path().join(d).join("seed-0")).unwrap();
            std::fs::write(root.path().join(d).join("seed-0/train.csv"), "row,p0,p1\n1,0.5,0.5\n").unwrap();
        }
        let (a, b) = (spec(&root.path().join("a")).hash_files().unwrap(), spec(&root.path().join("b")).hash_files().unwrap());
        assert_eq!(a, b);
        std::fs::write(root.path().join("b/seed-0/train.csv"), "row,p0,p1\n1,0.25,0.75\n").unwrap();
        assert_ne!(a, spec(&root.path().join("b")).hash_files().unwrap());
    }

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
