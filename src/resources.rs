//! An up-front estimate of a study's peak memory, so a study that cannot fit refuses before any
//! work instead of being killed hours in.
//!
//! The estimate is deliberately coarse and errs high: per (cell, seed) unit it counts the data
//! matrices (with the copies standardisation and selection make), the teacher's probability
//! matrices, and the models held at once (a forest: about two nodes per training row per tree
//! at full depth, 48 bytes each; the B cross-fit forests are alive together); `jobs` units run
//! at once, and the shared teachers' outputs of the whole study stay in memory. Measured peaks
//! of the shipped studies are in RELIABILITY.md.
//!
//! [`unit_work`] is a coarser, relative estimate of a unit's compute, by which the runner
//! starts the longest units first.

use crate::data::DataSpec;
use crate::method::GammaRule;
use crate::models::student::{NeuralSpec, StudentKind, StudentSpec};
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

/// A unit's relative compute, for scheduling the longest units first: training rows × epochs
/// × a per-row cost (features × hidden widths for networks, trees × depth for forests), times
/// the student fits of its arms (a variance-aware γ's c grid adds cross-validation fits), plus
/// the teacher's fits. Only the order matters, so constants are left out.
pub fn unit_work(study: &Study, cell: &crate::study::Cell) -> f64 {
    let cfg = &cell.config;
    let d = data_size(&cfg.data);
    let extra = cfg.fidelity.as_ref().filter(|f| f.extra != crate::fidelity::Extra::None).map_or(0.0, |f| f.n_extra as f64);
    let rows = d.train + extra;
    let c_grid = (cfg.distill.c_grid.len() * cfg.distill.cv_folds) as f64;
    let student_fits: f64 = study.arms.iter().map(|a| 1.0 + if a.gamma_rule() == GammaRule::VarianceAware { c_grid } else { 0.0 }).sum();
    let student = rows * student_row_cost(&cfg.student, d.features);
    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold);
    let teacher_fits = 1.0 + if crossfit { cfg.distill.crossfit_folds as f64 } else { 0.0 };
    let teacher = d.train * match &cfg.teacher {
        TeacherSpec::Forest(f) => f.n_trees as f64 * d.train.max(2.0).log2(),
        TeacherSpec::Cnn(n) | TeacherSpec::Mlp(n) => n.members as f64 * neural_row_cost(&n.network, d.features),
        _ => d.features,
    };
    student_fits * student + teacher_fits * teacher
}

fn student_row_cost(student: &StudentSpec, features: f64) -> f64 {
    match student {
        StudentSpec::Neural(n) => neural_row_cost(n, features),
        StudentSpec::ForestRegressor(f) => f.n_trees as f64 * 16.0,
    }
}

/// Epochs × features × the sum of the hidden widths (conv channels, 9 taps each).
fn neural_row_cost(n: &NeuralSpec, features: f64) -> f64 {
    let widths: f64 = match n.written_widths() {
        Some(w) if n.kind == StudentKind::Cnn => 9.0 * w.iter().sum::<usize>() as f64,
        Some(w) => w.iter().sum::<usize>().max(1) as f64,
        None => 9.0 * (n.width.unwrap_or(16) * n.depth.unwrap_or(3) * 2) as f64,
    };
    n.epochs as f64 * features * widths
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

    fn source(teacher: &str, n_train: usize) -> String {
        format!(
            "name = \"m\"\nclaim = \"c\"\nseeds = 2\narms = [\"kd\", \"crossfit\"]\n[data]\nkind = \"gaussian-mixture\"\nn_train = {n_train}\n[teacher]\n{teacher}\n[student]\nkind = \"mlp\"\n"
        )
    }

    fn study(teacher: &str, n_train: usize) -> Study {
        from_source(&source(teacher, n_train))
    }

    fn from_source(source: &str) -> Study {
        parse(std::path::Path::new("m.toml"), source, &LoadOptions::default()).unwrap()
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
    fn unit_work_grows_with_rows_epochs_and_corrected_arms() {
        let cell = |s: &Study| unit_work(s, &s.cells[0]);
        let forest = "kind = \"forest\"\nn_trees = 10";
        let base = study(forest, 1000);
        assert!(cell(&study(forest, 10_000)) > cell(&base));
        let longer = from_source(&source(forest, 1000).replace("kind = \"mlp\"\n", "kind = \"mlp\"\nepochs = 400\n"));
        assert!(cell(&longer) > cell(&base));
        let corrected = from_source(&source(forest, 1000).replace("[\"kd\", \"crossfit\"]", "[\"kd\", \"crossfit\", \"gamma-corrected\"]"));
        assert!(cell(&corrected) > cell(&base), "the c grid's cross-validation fits count");
    }

    #[test]
    fn the_breakdown_names_its_parts() {
        let e = estimate(&study("kind = \"forest\"", 1000), 2);
        assert!(e.breakdown.contains("2 unit(s) at once") && e.breakdown.contains("teacher models"), "{}", e.breakdown);
    }
}
