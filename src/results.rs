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

use crate::diagnostics::calibration::ReliabilityBin;
use crate::fsio;
use crate::provenance::Execution;

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
    MetricInfo { name: "critical_radius_proxy", better: Better::Neither, description: "√(d log n / n), the critical radius of a d-dimensional student class up to constants (a proxy): d the student's parameter count (networks) or mean leaves per tree (forests), n its training points (student rows)" },
    MetricInfo { name: "critical_radius_empirical", better: Better::Neither, description: "empirical critical radius δ̂_n = E_σ‖Pσ‖/√n (b = 1): the local Rademacher complexity of the network student's tangent class at its fitted weights (the span of the parameter Jacobian of the logits on its n training points, one sign per point and logit; Monte-Carlo over `theory.rademacher_draws` sign vectors); ≈ √(rank/n); absent for forests and when the Jacobian exceeds 5M entries (student rows)" },
    MetricInfo { name: "mi_teacher_student", better: Better::Neither, description: "mutual information of the teacher's and the student's predicted test labels, bits, plug-in with the Miller–Madow correction (student rows; [diagnostics])" },
    MetricInfo { name: "mi_null_high", better: Better::Neither, description: "97.5% point of the permutation null of mi_teacher_student (bits): MI below it is indistinguishable from independence ([diagnostics])" },
    MetricInfo { name: "mi_p_value", better: Better::Neither, description: "permutation p-value of mi_teacher_student, (1 + #{null ≥ observed}) / (1 + B) ([diagnostics])" },
    MetricInfo { name: "ece_equal_mass", better: Better::Lower, description: "test top-label ECE with equal-mass bins (as many as `diagnostics.bins`), L1, weighted by bin size ([diagnostics])" },
    MetricInfo { name: "ece_classwise", better: Better::Lower, description: "test classwise ECE: mean over classes of the equal-width binned |p_j − 1{y = j}| gap ([diagnostics])" },
    MetricInfo { name: "ece_ci_low", better: Better::Neither, description: "lower end of the 95% percentile bootstrap interval of this row's `ece` (test points resampled) ([diagnostics])" },
    MetricInfo { name: "ece_ci_high", better: Better::Neither, description: "upper end of that bootstrap interval ([diagnostics])" },
    MetricInfo { name: "lipschitz_lower", better: Better::Neither, description: "certified LOWER bound on the global ℓ2 Lipschitz constant of the logit map: largest Jacobian spectral norm over test points and a seeded search from them (network models; [diagnostics])" },
    MetricInfo { name: "lipschitz_upper", better: Better::Neither, description: "certified UPPER bound on that constant, SeqLip-style per-layer maximisation (network models; [diagnostics])" },
    MetricInfo { name: "lipschitz_upper_product", better: Better::Neither, description: "UPPER bound: product of the layers' spectral norms (power iteration), the loosest bound (network models; [diagnostics])" },
    MetricInfo { name: "lipschitz_local_fd", better: Better::Neither, description: "HEURISTIC, local: largest finite-difference quotient ‖p(x+δ) − p(x)‖/‖δ‖ of the probability map, ‖δ‖ = `diagnostics.lipschitz_radius`, 10 directions around each of `diagnostics.lipschitz_points` test points; defined for every model, not a bound ([diagnostics])" },
    MetricInfo { name: "train_agreement", better: Better::Higher, description: "TRAIN fidelity: top-1 agreement of the student with the teacher it was distilled from, on one seeded pass of the student's augmentation over the distillation stream (training rows plus extra rows), final weights ([fidelity])" },
    MetricInfo { name: "train_kl", better: Better::Lower, description: "TRAIN fidelity: mean KL(teacher ‖ student) at τ = 1, nats, on that pass ([fidelity])" },
    MetricInfo { name: "final_train_kl", better: Better::Lower, description: "the distillation objective reached: mean KL(teacher ‖ student) at the training temperature, nats, on the clean distillation stream ([fidelity])" },
    MetricInfo { name: "train_accuracy", better: Better::Higher, description: "accuracy on the student's clean labelled training rows ([fidelity])" },
    MetricInfo { name: "train_accuracy_augmented", better: Better::Higher, description: "accuracy on those rows under the student's augmentation, against their original labels ([fidelity])" },
    MetricInfo { name: "generalisation_gap", better: Better::Lower, description: "train_accuracy_augmented − test accuracy: Guo et al.'s \"overfitting\", which stronger augmentation lowers mechanically ([fidelity])" },
    MetricInfo { name: "generalisation_gap_clean", better: Better::Lower, description: "train_accuracy − test accuracy, both on clean images: the confound-free gap ([fidelity])" },
    MetricInfo { name: "agreement_augmented", better: Better::Higher, description: "top-1 agreement with this cell's teacher on the test images under the student's augmentation (Guo et al.'s val_aug), the teacher labelling the same augmented images ([fidelity])" },
    MetricInfo { name: "kl_augmented", better: Better::Lower, description: "mean KL(teacher ‖ student) at τ = 1, nats, on those augmented test images ([fidelity])" },
    MetricInfo { name: "mi_augmented", better: Better::Neither, description: "MI of the teacher's and the student's predicted labels on the augmented test images, bits, Miller–Madow ([fidelity])" },
    MetricInfo { name: "mi_clean", better: Better::Neither, description: "MI of the teacher's and the student's predicted labels on the clean test images, bits, Miller–Madow ([fidelity])" },
    MetricInfo { name: "mi_augmented_null_high", better: Better::Neither, description: "97.5% point of the permutation null of mi_augmented (bits, 200 permutations): MI below it is indistinguishable from independence ([fidelity])" },
    MetricInfo { name: "mi_clean_null_high", better: Better::Neither, description: "97.5% point of the permutation null of mi_clean (bits, 200 permutations) ([fidelity])" },
    MetricInfo { name: "congruence_kl", better: Better::Lower, description: "RCO's congruence loss: mean KL(teacher ‖ student) at τ = 1 on the student's fit rows, nats, final teacher ([method] studies)" },
    MetricInfo { name: "geometry_agreement", better: Better::Higher, description: "Pearson correlation of the pairwise distances of student and teacher penultimate features over the first 256 test rows ([method] studies)" },
    MetricInfo { name: "sigma_gap", better: Better::Lower, description: "LONDON's mismatch: mean over stage pairs of |σ_max(TM_s) − σ_max(TM_t)|, transmitting matrices of the first 256 test rows, `method.power_iterations` power steps; a spectral norm of feature products, not a Lipschitz constant ([method] studies, equal depths)" },
    MetricInfo { name: "ece_unweighted", better: Better::Lower, description: "Guo et al.'s released ECE: the unweighted mean over 10 equal-width bins of |accuracy − confidence|, empty bins 0 ([fidelity])" },
    MetricInfo { name: "teacher_iou_sumcam", better: Better::Neither, description: "attention IoU of the teacher's members on the clean test images: sum-over-classes CAM, bilinear to input size, min–max, > cam_threshold, batch-pooled over 128 images (teacher rows; [fidelity] attention)" },
    MetricInfo { name: "teacher_iou_classcam", better: Better::Neither, description: "the same IoU with each member's predicted-class CAM, the robustness variant (teacher rows)" },
    MetricInfo { name: "teacher_iou_sumcam_augmented", better: Better::Neither, description: "the sum-CAM IoU on the test images under the student's augmentation (teacher rows)" },
    MetricInfo { name: "sumcam_direction_drift", better: Better::Neither, description: "‖Σ_c w_c − Σ_c w_c(init)‖ / ‖Σ_c w_c(init)‖ of the members' heads, averaged: 0 means the sum-CAM projects on its random initial direction (teacher rows)" },
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
    /// Occupied equal-width reliability-diagram bins of the test predictions, when the study
    /// asks for calibration diagnostics (stored apart, in `reliability.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reliability: Vec<ReliabilityBin>,
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
    pub surfaces: Vec<crate::fidelity::LossSurface>,
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
    // A metric no row carries (e.g. diagnostics the study did not ask for) gets no column.
    for m in METRICS.iter().filter(|m| rows.iter().any(|r| r.metrics.contains_key(m.name))) {
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
        let mut frame = to_frame("s", &axes, &rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &mut frame).unwrap();
        write_reliability(dir.path(), &rows).unwrap();
        assert_eq!(read(dir.path(), &axes).unwrap(), rows);
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert!(csv.starts_with("study,cell,cell_id,data.n_train,seed,arm,status,failure,accuracy"));
    }
}
