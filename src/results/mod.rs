//! The results table: one row per (cell, seed, arm), plus one `teacher` row per (cell, seed).
//!
//! Rows are kept as plain structs while a study runs (each finished (cell, seed) unit is a JSON
//! shard, so an interrupted study resumes), and become a polars `DataFrame` for
//! `results.parquet` and `results.csv`. Timings are stored apart (`timings.csv`) so the results
//! files of two runs are byte-identical.

pub mod probabilities;
pub mod table;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::diagnostics::calibration::ReliabilityBin;
use crate::fsio;
use crate::metric::MetricInfo;
use crate::execution::{Execution, StageTimes};


/// What a row of the results table describes: the teacher, the cross-fit teachers, the oracle
/// student, or a student trained by one of the study's arms. The first three are stored under
/// a pseudo-arm name in the `arm` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The teacher's own metrics.
    Teacher,
    /// The cross-fit teachers' own metrics (averaged over the fold teachers).
    CrossfitTeacher,
    /// The oracle student f0 (the student class fit to p0).
    Oracle,
    /// A student of one of the study's arms (the `arm` column names it).
    Arm,
}

impl RowKind {
    /// The pseudo-arms, which no study arm may be named.
    pub const PSEUDO_ARMS: [RowKind; 3] = [RowKind::Teacher, RowKind::CrossfitTeacher, RowKind::Oracle];

    /// The `arm` column's value of a pseudo-arm (`None` for [`RowKind::Arm`]).
    pub fn pseudo_arm(self) -> Option<&'static str> {
        match self {
            RowKind::Teacher => Some("teacher"),
            RowKind::CrossfitTeacher => Some("crossfit-teacher"),
            RowKind::Oracle => Some("oracle"),
            RowKind::Arm => None,
        }
    }

    /// The kind of a row whose `arm` column reads `arm`.
    pub fn of(arm: &str) -> RowKind {
        RowKind::PSEUDO_ARMS.into_iter().find(|k| k.pseudo_arm() == Some(arm)).unwrap_or(RowKind::Arm)
    }

    /// The `arm` column's value of a pseudo-arm; panics for [`RowKind::Arm`], whose name is the
    /// study's.
    pub fn arm(self) -> &'static str {
        self.pseudo_arm().expect("only pseudo-arms have a fixed name")
    }
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub cell_index: usize,
    pub cell_id: String,
    /// The cell's grid level per axis, in axis order, as written in the study.
    pub levels: Vec<String>,
    pub seed: usize,
    pub arm: String,
    /// `None` when the row computed; the reason when it failed (e.g. diverged).
    pub failure: Option<String>,
    /// Metric values by name; absent when the metric does not apply.
    pub metrics: BTreeMap<String, f64>,
    /// Occupied equal-width reliability-diagram bins of the test predictions, when the study
    /// asks for calibration diagnostics (stored apart, in `reliability.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reliability: Vec<ReliabilityBin>,
}

impl Row {
    pub fn kind(&self) -> RowKind {
        RowKind::of(&self.arm)
    }

    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

/// What one (cell, seed) unit produced: stored as a shard so an interrupted study resumes, and
/// so the array tasks of a cluster run can each store their own units for a merge.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shard {
    pub cell_id: String,
    pub seed: usize,
    /// The [`crate::fingerprint`] of the code that computed it (empty in shards stored before
    /// fingerprints existed, which therefore never match).
    #[serde(default)]
    pub code: String,
    pub rows: Vec<Row>,
    pub times: StageTimes,
    /// Where the unit ran (host; Slurm job ids under Slurm).
    #[serde(default)]
    pub execution: Execution,
    /// This unit's teacher was fitted (`fitted`) or loaded from the teacher cache (`loaded`)
    /// for it; both false when another unit of the same run provided it.
    #[serde(default)]
    pub teacher_fitted: bool,
    #[serde(default)]
    pub teacher_loaded: bool,
    /// Loss-surface slices of a fidelity study (first seed only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surfaces: Vec<crate::loss_surface::LossSurface>,
}

/// Builds the results DataFrame; `axes` name the level columns.
pub fn to_frame(study: &str, axes: &[String], rows: &[Row], metrics: &[&'static MetricInfo]) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let mut columns: Vec<Column> = vec![
        Column::new("study".into(), vec![study; n]),
        Column::new("cell".into(), rows.iter().map(|r| r.cell_index as u32).collect::<Vec<_>>()),
        Column::new("cell_id".into(), rows.iter().map(|r| r.cell_id.as_str()).collect::<Vec<_>>()),
    ];
    for (a, axis) in axes.iter().enumerate() {
        columns.push(Column::new(axis.as_str().into(), rows.iter().map(|r| r.levels[a].as_str()).collect::<Vec<_>>()));
    }
    columns.push(Column::new("seed".into(), rows.iter().map(|r| r.seed as u32).collect::<Vec<_>>()));
    columns.push(Column::new("arm".into(), rows.iter().map(|r| r.arm.as_str()).collect::<Vec<_>>()));
    columns.push(Column::new("status".into(), rows.iter().map(|r| if r.failure.is_some() { "failed" } else { "ok" }).collect::<Vec<_>>()));
    columns.push(Column::new("failure".into(), rows.iter().map(|r| r.failure.as_deref()).collect::<Vec<_>>()));
    // A metric no row carries (e.g. diagnostics the study did not ask for) gets no column.
    for m in metrics.iter().filter(|m| rows.iter().any(|r| r.metrics.contains_key(m.name))) {
        columns.push(Column::new(m.name.into(), rows.iter().map(|r| r.get(m.name)).collect::<Vec<Option<f64>>>()));
    }
    DataFrame::new(columns)
}

/// Writes `reliability.csv`: one line per occupied reliability bin of each row that has them
/// (nothing when no row does).
pub fn write_reliability(dir: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let bins: Vec<(&Row, &ReliabilityBin)> = rows.iter().flat_map(|r| r.reliability.iter().map(move |b| (r, b))).collect();
    if bins.is_empty() {
        return Ok(());
    }
    let mut frame = DataFrame::new(vec![
        Column::new("cell".into(), bins.iter().map(|(r, _)| r.cell_index as u32).collect::<Vec<_>>()),
        Column::new("seed".into(), bins.iter().map(|(r, _)| r.seed as u32).collect::<Vec<_>>()),
        Column::new("arm".into(), bins.iter().map(|(r, _)| r.arm.as_str()).collect::<Vec<_>>()),
        Column::new("lower".into(), bins.iter().map(|(_, b)| b.lower).collect::<Vec<_>>()),
        Column::new("upper".into(), bins.iter().map(|(_, b)| b.upper).collect::<Vec<_>>()),
        Column::new("count".into(), bins.iter().map(|(_, b)| b.count as u64).collect::<Vec<_>>()),
        Column::new("mean_confidence".into(), bins.iter().map(|(_, b)| b.mean_confidence).collect::<Vec<_>>()),
        Column::new("accuracy".into(), bins.iter().map(|(_, b)| b.accuracy).collect::<Vec<_>>()),
    ])?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).include_header(true).finish(&mut frame)?;
    fsio::write_atomic(&dir.join("reliability.csv"), &csv)?;
    Ok(())
}

/// Attaches the bins of `reliability.csv` (if present) to their rows.
fn read_reliability(dir: &Path, rows: &mut [Row]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = dir.join("reliability.csv");
    if !path.exists() {
        return Ok(());
    }
    let frame = CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(path))?.finish()?;
    let int = |name: &str| -> PolarsResult<Vec<u64>> { Ok(frame.column(name)?.cast(&DataType::UInt64)?.u64()?.into_no_null_iter().collect()) };
    let float = |name: &str| -> PolarsResult<Vec<f64>> { Ok(frame.column(name)?.cast(&DataType::Float64)?.f64()?.into_no_null_iter().collect()) };
    let (cell, seed, count) = (int("cell")?, int("seed")?, int("count")?);
    let (lower, upper, conf, acc) = (float("lower")?, float("upper")?, float("mean_confidence")?, float("accuracy")?);
    let arm: Vec<String> = frame.column("arm")?.str()?.into_no_null_iter().map(str::to_string).collect();
    let mut index: BTreeMap<(usize, usize, &str), usize> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        index.insert((r.cell_index, r.seed, r.arm.as_str()), i);
    }
    let mut found = Vec::new();
    for i in 0..frame.height() {
        if let Some(&at) = index.get(&(cell[i] as usize, seed[i] as usize, arm[i].as_str())) {
            found.push((at, ReliabilityBin { lower: lower[i], upper: upper[i], count: count[i] as usize, mean_confidence: conf[i], accuracy: acc[i] }));
        }
    }
    for (at, bin) in found {
        rows[at].reliability.push(bin);
    }
    Ok(())
}

/// Writes `results.parquet` and `results.csv` into `dir`, each atomically.
pub fn write(dir: &Path, frame: &mut DataFrame) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).include_header(true).finish(frame)?;
    fsio::write_atomic(&dir.join("results.csv"), &csv)?;
    let mut parquet = Vec::new();
    ParquetWriter::new(&mut parquet).finish(frame)?;
    fsio::write_atomic(&dir.join("results.parquet"), &parquet)?;
    Ok(())
}

/// Reads rows back from `results.parquet` (for re-rendering a report without recomputing).
pub fn read(dir: &Path, axes: &[String], metrics: &[&'static MetricInfo]) -> Result<Vec<Row>, Box<dyn std::error::Error + Send + Sync>> {
    let file = File::open(dir.join("results.parquet"))?;
    let frame = ParquetReader::new(file).finish()?;
    let n = frame.height();
    let cell = frame.column("cell")?.u32()?.clone();
    let cell_id = frame.column("cell_id")?.str()?.clone();
    let seed = frame.column("seed")?.u32()?.clone();
    let arm = frame.column("arm")?.str()?.clone();
    let failure = frame.column("failure")?.str()?.clone();
    let level_columns: Vec<StringChunked> =
        axes.iter().map(|a| Ok(frame.column(a)?.str()?.clone())).collect::<PolarsResult<_>>()?;
    let metric_columns: Vec<(&str, Float64Chunked)> = metrics
        .iter()
        .filter(|m| frame.column(m.name).is_ok())
        .map(|m| Ok((m.name, frame.column(m.name)?.f64()?.clone())))
        .collect::<PolarsResult<_>>()?;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let mut metrics = BTreeMap::new();
        for (name, col) in &metric_columns {
            if let Some(v) = col.get(i) {
                metrics.insert(name.to_string(), v);
            }
        }
        rows.push(Row {
            cell_index: cell.get(i).unwrap_or(0) as usize,
            cell_id: cell_id.get(i).unwrap_or("").to_string(),
            levels: level_columns.iter().map(|c| c.get(i).unwrap_or("").to_string()).collect(),
            seed: seed.get(i).unwrap_or(0) as usize,
            arm: arm.get(i).unwrap_or("").to_string(),
            failure: failure.get(i).map(str::to_string),
            metrics,
            reliability: Vec::new(),
        });
    }
    read_reliability(dir, &mut rows)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_through_parquet() {
        let rows = vec![
            Row {
                cell_index: 0,
                cell_id: "abc".into(),
                levels: vec!["100".into()],
                seed: 0,
                arm: "kd".into(),
                failure: None,
                metrics: [("accuracy".to_string(), 0.8125)].into_iter().collect(),
                reliability: Vec::new(),
            },
            Row {
                cell_index: 0,
                cell_id: "abc".into(),
                levels: vec!["100".into()],
                seed: 1,
                arm: "kd".into(),
                failure: Some("training diverged".into()),
                metrics: BTreeMap::new(),
                reliability: Vec::new(),
            },
            Row {
                cell_index: 0,
                cell_id: "abc".into(),
                levels: vec!["100".into()],
                seed: 1,
                arm: "teacher".into(),
                failure: None,
                metrics: [("accuracy".to_string(), 0.75)].into_iter().collect(),
                reliability: vec![ReliabilityBin { lower: 0.5, upper: 0.6, count: 3, mean_confidence: 0.55, accuracy: 2.0 / 3.0 }],
            },
        ];
        let axes = vec!["data.n_train".to_string()];
        let mut frame = to_frame("s", &axes, &rows, crate::registry::Registry::builtin().metrics()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &mut frame).unwrap();
        write_reliability(dir.path(), &rows).unwrap();
        assert_eq!(read(dir.path(), &axes, crate::registry::Registry::builtin().metrics()).unwrap(), rows);
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert!(csv.starts_with("study,cell,cell_id,data.n_train,seed,arm,status,failure,accuracy"));
    }
}
