//! A results table computed anywhere, read into kdlab's result rows: one row per seed × arm,
//! a `seed` and an `arm` column, the grid columns the analyze file names as axes, and metric
//! columns. Every error names the file, the row (counted from 1 after the header) and the
//! column; a missing (seed, arm) pair names the cell, the arm and the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::datasets::{Cells, RawTable};
use crate::datasets::DataError;
use super::{Row, RowKind};

/// Columns kdlab's own `results.csv` carries besides axes, seeds, arms and metrics.
pub const BOOKKEEPING: &[&str] = &["study", "cell", "cell_id", "status", "failure"];

/// The rows of a results table with the design they imply.
#[derive(Debug, Clone)]
pub struct ResultsTable {
    pub rows: Vec<Row>,
    /// Each axis's levels in order of first appearance.
    pub levels: Vec<Vec<String>>,
    /// Each cell's levels (one per axis), in order of first appearance.
    pub cells: Vec<Vec<String>>,
    /// The table's seed values, ascending; row seed `i` is `seeds[i]`.
    pub seeds: Vec<u64>,
    /// The arms compared, in order of first appearance (pseudo-arms such as `teacher` apart).
    pub arms: Vec<String>,
    /// Columns read as metrics.
    pub metrics: Vec<String>,
}

/// What the analyze file says about the table's columns.
pub struct Columns<'a> {
    pub axes: &'a [String],
    pub ignore: &'a [String],
    /// Whether a column names a metric (one kdlab knows, or one the analyze file declares).
    pub is_metric: &'a dyn Fn(&str) -> bool,
    /// Cells may have run different numbers of seeds (a sequential design stopped between
    /// looks); otherwise every cell has every seed.
    pub per_cell_seeds: bool,
}

pub(super) fn value_error(path: &Path, row: usize, column: &str, message: impl Into<String>) -> DataError {
    DataError::Value { path: path.to_path_buf(), row, column: column.to_string(), message: message.into() }
}

pub(super) fn table_error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Format { path: path.to_path_buf(), message: message.into() }
}

/// Reads `path` (CSV or Parquet) as a results table.
pub fn read(path: &Path, columns: &Columns) -> Result<ResultsTable, DataError> {
    let raw = RawTable::read(path)?;
    let find = |name: &str| raw.names.iter().position(|n| n == name);
    let (Some(seed_col), Some(arm_col)) = (find("seed"), find("arm")) else {
        let missing: Vec<&str> = ["seed", "arm"].into_iter().filter(|c| find(c).is_none()).collect();
        return Err(table_error(path, format!("no column {}; a results table has one row per seed × arm, with columns `seed`, `arm`, the axes and the metrics", missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" or "))));
    };
    let axis_cols: Vec<usize> = columns.axes.iter().map(|a| find(a).ok_or_else(|| table_error(path, format!("no column `{a}`, which the analyze file names as an axis; columns: {}", raw.names.join(", "))))).collect::<Result<_, _>>()?;
    let metric_cols = metric_columns(path, &raw.names, columns)?;
    let cells_of = |i: usize| raw.cells(path, i);
    let (seed_cells, arm_cells) = (cells_of(seed_col)?, cells_of(arm_col)?);
    let axis_cells: Vec<Cells> = axis_cols.iter().map(|&c| cells_of(c)).collect::<Result<_, _>>()?;
    let metric_cells: Vec<(String, Cells)> = metric_cols.iter().map(|&c| Ok((raw.names[c].clone(), cells_of(c)?))).collect::<Result<_, DataError>>()?;
    let status = find("status").map(cells_of).transpose()?;
    let failure = find("failure").map(cells_of).transpose()?;

    let mut rows = Vec::with_capacity(raw.height());
    let mut seen: BTreeMap<(Vec<String>, u64, String), usize> = BTreeMap::new();
    for i in 0..raw.height() {
        let row = i + 1;
        let blank = seed_cells.missing(i) && arm_cells.missing(i) && axis_cells.iter().all(|c| c.missing(i)) && metric_cells.iter().all(|(_, c)| c.missing(i));
        if blank {
            continue; // a blank line
        }
        let seed = seed_value(path, &seed_cells, i)?;
        let arm = arm_cells.label(i).ok_or_else(|| value_error(path, row, "arm", "no arm name"))?;
        let levels: Vec<String> = axis_cells.iter().zip(columns.axes).map(|(c, a)| c.label(i).ok_or_else(|| value_error(path, row, a, "no level"))).collect::<Result<_, _>>()?;
        if let Some(first) = seen.insert((levels.clone(), seed, arm.clone()), row) {
            return Err(value_error(path, row, "arm", format!("arm `{arm}`, seed {seed}{} appears twice (rows {first} and {row})", cell_label(columns.axes, &levels))));
        }
        let failed = match status.as_ref().and_then(|s| s.label(i)).as_deref() {
            None | Some("ok") => false,
            Some("failed") => true,
            Some(other) => return Err(value_error(path, row, "status", format!("`{other}` is not `ok` or `failed`"))),
        };
        let reason = failure.as_ref().and_then(|f| f.label(i));
        let mut metrics = BTreeMap::new();
        for (name, cells) in &metric_cells {
            if let Some(v) = cells.number(path, name, i)? {
                metrics.insert(name.clone(), v);
            }
        }
        let failure = match (failed, reason) {
            (_, Some(r)) => Some(r),
            (true, None) => Some("failed (no reason given)".into()),
            _ => None,
        };
        rows.push(Row { cell_index: 0, cell_id: String::new(), levels, seed: seed as usize, arm, failure, metrics, reliability: Vec::new() });
    }
    design(path, columns, rows, metric_cols.iter().map(|&c| raw.names[c].clone()).collect())
}

/// The metric columns: every column that is not the seed, the arm, an axis, bookkeeping or
/// ignored must be a metric kdlab knows or one the analyze file declares.
fn metric_columns(path: &Path, names: &[String], columns: &Columns) -> Result<Vec<usize>, DataError> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let other = ["seed", "arm"].contains(&name.as_str()) || BOOKKEEPING.contains(&name.as_str()) || columns.axes.contains(name) || columns.ignore.contains(name);
        if other {
            continue;
        }
        if !(columns.is_metric)(name) {
            return Err(table_error(path, format!("column `{name}` is not `seed`, `arm`, an axis or a metric kdlab knows; declare its direction under [metrics] in the analyze file (e.g. `{name} = \"higher\"`), name it as an axis, or list it in `ignore`")));
        }
        out.push(i);
    }
    Ok(out)
}

pub(super) fn seed_value(path: &Path, cells: &Cells, i: usize) -> Result<u64, DataError> {
    let v = cells.number(path, "seed", i)?.ok_or_else(|| value_error(path, i + 1, "seed", "no seed"))?;
    if v < 0.0 || v.fract() != 0.0 {
        return Err(value_error(path, i + 1, "seed", format!("{v} is not a whole number >= 0")));
    }
    if v > 1e15 {
        return Err(value_error(path, i + 1, "seed", format!("{v} is too large for a seed (at most 10^15)")));
    }
    Ok(v as u64)
}

pub(super) fn cell_label(axes: &[String], levels: &[String]) -> String {
    if axes.is_empty() {
        return String::new();
    }
    format!(" in cell ({})", axes.iter().zip(levels).map(|(a, l)| format!("{a} = {l}")).collect::<Vec<_>>().join(", "))
}

/// Cells, seeds and arms from the rows; every arm of a cell must have every seed, and every
/// axis at least two levels.
pub(super) fn design(path: &Path, columns: &Columns, mut rows: Vec<Row>, metrics: Vec<String>) -> Result<ResultsTable, DataError> {
    if rows.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf(), detail: "the results table has no rows".into() });
    }
    let mut levels: Vec<Vec<String>> = vec![Vec::new(); columns.axes.len()];
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut arms: Vec<String> = Vec::new();
    for r in &rows {
        for (axis, l) in levels.iter_mut().zip(&r.levels) {
            if !axis.contains(l) {
                axis.push(l.clone());
            }
        }
        if !cells.contains(&r.levels) {
            cells.push(r.levels.clone());
        }
        if RowKind::of(&r.arm) == RowKind::Arm && !arms.contains(&r.arm) {
            arms.push(r.arm.clone());
        }
    }
    for (axis, l) in columns.axes.iter().zip(&levels) {
        if l.len() < 2 {
            return Err(table_error(path, format!("column `{axis}` is named as an axis but has one level ({}); an axis needs at least two", l[0])));
        }
    }
    let seeds: Vec<u64> = rows.iter().map(|r| r.seed as u64).collect::<BTreeSet<_>>().into_iter().collect();
    let mut by_cell: BTreeMap<(usize, &str), BTreeSet<u64>> = BTreeMap::new();
    for r in &rows {
        let c = cells.iter().position(|l| *l == r.levels).expect("every row's cell was collected");
        by_cell.entry((c, r.arm.as_str())).or_default().insert(r.seed as u64);
    }
    let none = BTreeSet::new();
    for (c, levels) in cells.iter().enumerate() {
        // The cell's seeds: every seed of the table, or those of its own rows when cells may
        // have run different numbers of seeds.
        let cell_seeds: BTreeSet<u64> = match columns.per_cell_seeds {
            true => by_cell.iter().filter(|((cell, _), _)| *cell == c).flat_map(|(_, s)| s.iter().copied()).collect(),
            false => seeds.iter().copied().collect(),
        };
        let present: Vec<&str> = by_cell.keys().filter(|(cell, _)| *cell == c).map(|(_, a)| *a).collect();
        let arms_here = arms.iter().map(String::as_str).chain(present.into_iter().filter(|a| RowKind::of(a) != RowKind::Arm));
        for arm in arms_here {
            let have = by_cell.get(&(c, arm)).unwrap_or(&none);
            if let Some(missing) = cell_seeds.iter().find(|s| !have.contains(s)) {
                return Err(table_error(path, format!("column `seed`: arm `{arm}` has no row for seed {missing}{}; every arm needs a row for every seed of every cell (a failed run is a row with `status` = failed)", cell_label(columns.axes, levels))));
            }
        }
    }
    for r in &mut rows {
        let c = cells.iter().position(|l| *l == r.levels).expect("every row's cell was collected");
        r.cell_index = c;
        r.cell_id = cell_id(&cells[c]);
        r.seed = seeds.binary_search(&(r.seed as u64)).expect("every row's seed was collected");
    }
    Ok(ResultsTable { rows, levels, cells, seeds, arms, metrics })
}

/// A short stable id of a cell's levels.
fn cell_id(levels: &[String]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(levels.join("\u{1f}").as_bytes()))[..12].to_string()
}
