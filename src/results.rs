//! The results table: one row per (cell, seed, arm), plus one `teacher` row per (cell, seed).
//!
//! Rows are kept as plain structs while a study runs (each finished (cell, seed) unit is a JSON
//! shard, so an interrupted study resumes), and become a polars `DataFrame` for
//! `results.parquet` and `results.csv`. Timings are stored apart (`timings.csv`) so the results
//! files of two runs are byte-identical.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fsio;

/// Whether a metric is better when lower or when higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Lower,
    Higher,
    /// A setting rather than a score (e.g. a chosen hyperparameter).
    Neither,
}

/// A metric a row may carry and a prediction may name.
pub struct MetricInfo {
    pub name: &'static str,
    pub better: Better,
    pub description: &'static str,
}

/// Every metric column, in table order.
pub const METRICS: &[MetricInfo] = &[
    MetricInfo { name: "accuracy", better: Better::Higher, description: "test accuracy (argmax, ties to the lowest class)" },
    MetricInfo { name: "log_loss", better: Better::Lower, description: "test log loss, nats, probabilities clipped at 1e-15" },
    MetricInfo { name: "brier", better: Better::Lower, description: "test multi-class Brier score Σ_j (p_j − y_j)², range [0, 2]" },
    MetricInfo { name: "ece", better: Better::Lower, description: "test top-label ECE, 10 equal-width bins, weighted by bin size" },
    MetricInfo { name: "auc", better: Better::Higher, description: "test ROC AUC of the class-1 probability (two classes only)" },
    MetricInfo { name: "agreement", better: Better::Higher, description: "test top-1 agreement of student and teacher" },
    MetricInfo { name: "kl_teacher_student", better: Better::Lower, description: "test mean KL(teacher ‖ student) at T = 1, nats" },
    MetricInfo { name: "excess_risk", better: Better::Lower, description: "population excess log-loss risk E_x KL(p0(x) ‖ f(x)), nats, on a fresh Monte-Carlo sample" },
    MetricInfo { name: "bayes_sq_error", better: Better::Lower, description: "population E_x ‖f(x) − p0(x)‖², on a fresh Monte-Carlo sample" },
    MetricInfo { name: "student_error", better: Better::Lower, description: "population E_x ‖f̂(x) − f0(x)‖², f0 the oracle student (the student class fit to p0 on a large fresh sample)" },
    MetricInfo { name: "teacher_error_in_sample", better: Better::Lower, description: "teacher ‖p̂ − p0‖² averaged over its own training points (teacher rows)" },
    MetricInfo { name: "teacher_error_population", better: Better::Lower, description: "teacher ‖p̂ − p0‖² on a fresh Monte-Carlo sample (teacher rows)" },
    MetricInfo { name: "teacher_error4_in_sample", better: Better::Lower, description: "teacher E Σ_j (p̂_j − p0_j)⁴ over its own training points, the fourth-power norm of the orthogonal bound (teacher rows)" },
    MetricInfo { name: "teacher_error4_population", better: Better::Lower, description: "teacher E Σ_j (p̂_j − p0_j)⁴ on a fresh Monte-Carlo sample (teacher rows)" },
    MetricInfo { name: "teacher_error_out_of_fold", better: Better::Lower, description: "‖p̂ − p0‖² of the cross-fit (out-of-fold) targets over the training points (crossfit-teacher rows)" },
    MetricInfo { name: "teacher_in_sample_excess", better: Better::Neither, description: "teacher_error_in_sample − teacher_error_population: > 0 when the teacher's probabilities on its own training points are further from p0 than on fresh points (the sample-reuse bias cross-fitting removes), < 0 when closer (teacher rows)" },
    MetricInfo { name: "chosen_log10_c", better: Better::Neither, description: "log10 of the c of the variance-aware γ chosen by cross-validation on labels (gamma-corrected and enhanced rows)" },
    MetricInfo { name: "best_epoch", better: Better::Lower, description: "epoch whose weights the early-stopping rule kept (student rows)" },
];

pub fn metric(name: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.name == name)
}

pub fn metric_names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}

/// The pseudo-arm under which the teacher's own metrics are stored.
pub const TEACHER_ARM: &str = "teacher";
/// The pseudo-arm of the cross-fit teachers' own metrics (averaged over the fold teachers).
pub const CROSSFIT_TEACHER_ARM: &str = "crossfit-teacher";
/// The pseudo-arm of the oracle student f0 (the student class fit to p0).
pub const ORACLE_ARM: &str = "oracle";

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
}

impl Row {
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

/// Wall-clock seconds per stage of one (cell, seed) unit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StageTimes {
    pub data: f64,
    pub teacher: f64,
    pub students: f64,
    pub metrics: f64,
}

/// What one (cell, seed) unit produced: stored as a shard so an interrupted study resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shard {
    pub cell_id: String,
    pub seed: usize,
    pub rows: Vec<Row>,
    pub times: StageTimes,
}

/// Builds the results DataFrame; `axes` name the level columns.
pub fn to_frame(study: &str, axes: &[String], rows: &[Row]) -> PolarsResult<DataFrame> {
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
    for m in METRICS {
        columns.push(Column::new(m.name.into(), rows.iter().map(|r| r.get(m.name)).collect::<Vec<Option<f64>>>()));
    }
    DataFrame::new(columns)
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
pub fn read(dir: &Path, axes: &[String]) -> Result<Vec<Row>, Box<dyn std::error::Error + Send + Sync>> {
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
    let metric_columns: Vec<(&str, Float64Chunked)> = METRICS
        .iter()
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
        });
    }
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
            },
            Row {
                cell_index: 0,
                cell_id: "abc".into(),
                levels: vec!["100".into()],
                seed: 1,
                arm: "kd".into(),
                failure: Some("training diverged".into()),
                metrics: BTreeMap::new(),
            },
        ];
        let axes = vec!["data.n_train".to_string()];
        let mut frame = to_frame("s", &axes, &rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &mut frame).unwrap();
        assert_eq!(read(dir.path(), &axes).unwrap(), rows);
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert!(csv.starts_with("study,cell,cell_id,data.n_train,seed,arm,status,failure,accuracy"));
    }
}
