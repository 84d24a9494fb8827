//! An up-front estimate of a study's peak memory, so a study that cannot fit refuses before any
//! work instead of being killed hours in.
//!
//! The estimate is deliberately coarse and errs high: per (cell, seed) unit it counts the data
//! matrices (with the copies standardisation and selection make), the teacher's probability
//! matrices, and the models held at once (a forest: about two nodes per training row per tree
//! at full depth, 48 bytes each; the B cross-fit forests are alive together); `jobs` units run
//! at once, and the shared teachers' outputs of the whole study stay in memory. Measured peaks
//! of the shipped studies are in RELIABILITY.md.

use crate::data::DataSpec;
use crate::models::TeacherSpec;
use crate::study::Study;

/// Bytes of the process before any study work (binary, allocator, thread stacks).
const BASE_BYTES: f64 = 150e6;
/// Bytes per forest node (split, children, value offset) plus the leaf values.
const NODE_BYTES: f64 = 48.0;

/// Rows and features of one replicate's data, as far as the study file tells.
struct DataSize {
    rows: f64,
    train: f64,
    features: f64,
    classes: f64,
    /// A real data set's whole table, loaded once per process.
    table: f64,
}

fn data_size(spec: &DataSpec) -> DataSize {
    let s = spec.kind().size();
    DataSize {
        rows: (s.train + s.test + s.population) as f64,
        train: s.train as f64,
        features: s.features as f64,
        classes: s.classes as f64,
        table: (s.table * s.features) as f64 * 8.0,
    }
}

/// The estimated peak in bytes, with the parts it is made of (for the error message).
#[derive(Debug, Clone)]
pub struct MemoryEstimate {
    pub bytes: f64,
    pub breakdown: String,
}

/// Estimates the peak memory of running `study` with `jobs` units at once.
pub fn estimate(study: &Study, jobs: usize) -> MemoryEstimate {
    let mut worst_unit: f64 = 0.0;
    let mut held = 0.0;
    let mut tables = 0.0f64;
    let mut worst = String::new();
    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold);
    for cell in &study.cells {
        let cfg = &cell.config;
        let d = data_size(&cfg.data);
        // Data: drawn matrices, a standardised copy and the student's fit/validation selection.
        let data = d.rows * d.features * 8.0 * 3.0;
        let folds = if crossfit { cfg.distill.crossfit_folds as f64 } else { 0.0 };
        let probabilities = d.rows * d.classes * 8.0 * (2.0 + folds.min(1.0));
        let teacher = match &cfg.teacher {
            TeacherSpec::Forest(f) => {
                let nodes_per_tree = match f.max_depth {
                    Some(depth) if depth < 40 => (2f64.powi(depth as i32 + 1)).min(2.0 * d.train),
                    _ => 2.0 * d.train,
                };
                f.n_trees as f64 * nodes_per_tree * (NODE_BYTES + 8.0 * d.classes) * (1.0 + folds)
            }
            // Linear models and k-NN keep at most a copy of the training data.
            _ => d.train * d.features * 8.0 * (1.0 + folds),
        };
        let unit = data + probabilities + teacher;
        if unit > worst_unit {
            worst_unit = unit;
            worst = format!("cell {}: data {}, teacher models {}, probabilities {}", cell.index, gib(data), gib(teacher), gib(probabilities));
        }
        // Every teacher's outputs (train and test probabilities, out-of-fold targets) are kept
        // for the whole run; cells share them per seed, so this over-counts shared teachers.
        held += study.seeds as f64 * d.rows * d.classes * 8.0 * (1.0 + folds.min(1.0));
        tables = tables.max(d.table * 2.0);
    }
    let bytes = BASE_BYTES + tables + held + jobs.max(1) as f64 * worst_unit;
    MemoryEstimate {
        bytes,
        breakdown: format!(
            "{} = base {} + real-data tables {} + teacher outputs kept for the run {} + {jobs} unit(s) at once × largest unit {} ({worst})",
            gib(bytes),
            gib(BASE_BYTES),
            gib(tables),
            gib(held),
            gib(worst_unit)
        ),
    }
}

/// Memory the system can give now: `MemAvailable` of /proc/meminfo, when readable.
pub fn available_bytes() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::{parse, LoadOptions};

    fn study(teacher: &str, n_train: usize) -> Study {
        let source = format!(
            "name = \"m\"\nclaim = \"c\"\nseeds = 2\narms = [\"kd\", \"crossfit\"]\n[data]\nkind = \"gaussian-mixture\"\nn_train = {n_train}\n[teacher]\n{teacher}\n[student]\nkind = \"mlp\"\n"
        );
        parse(std::path::Path::new("m.toml"), &source, &LoadOptions::default()).unwrap()
    }

    #[test]
    fn estimate_grows_with_rows_trees_and_jobs() {
        let small = estimate(&study("kind = \"forest\"\nn_trees = 10", 1000), 1).bytes;
        let more_rows = estimate(&study("kind = \"forest\"\nn_trees = 10", 100_000), 1).bytes;
        let more_trees = estimate(&study("kind = \"forest\"\nn_trees = 1000", 1000), 1).bytes;
        let more_jobs = estimate(&study("kind = \"forest\"\nn_trees = 10", 1000), 8).bytes;
        assert!(small < more_rows && small < more_trees && small < more_jobs);
        // A full-depth 1000-tree forest on 1000 rows, and its 10 cross-fit copies: about
        // 11 × 1000 trees × 2000 nodes × 64 bytes ≈ 1.4 GB.
        assert!(more_trees > 1.3e9 && more_trees < 2.0e9, "{more_trees}");
    }

    #[test]
    fn the_breakdown_names_its_parts() {
        let e = estimate(&study("kind = \"forest\"", 1000), 2);
        assert!(e.breakdown.contains("2 unit(s) at once") && e.breakdown.contains("teacher models"), "{}", e.breakdown);
    }
}
