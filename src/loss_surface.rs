//! A loss-surface slice: what the fidelity protocol draws of a student's distillation loss
//! (Stanton et al.'s picture of why students do not match their teachers), carried by its
//! protocol's result, stored in shards and drawn in the report.

use serde::{Deserialize, Serialize};

/// A 2-D slice of the distillation loss (`LossSurface::loss[i][j]` at `alpha[i]`, `beta[j]`).
/// The plane passes through the initial student θ₀ (origin), the final student (on the first
/// axis) and the teacher; coordinates are Euclidean in weight space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LossSurface {
    pub cell_index: usize,
    pub seed: usize,
    pub arm: String,
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    /// KL(teacher ‖ student) at the training temperature, nats, on up to `SURFACE_ROWS`
    /// stream rows.
    pub loss: Vec<Vec<f64>>,
    pub initial: (f64, f64),
    pub fin: (f64, f64),
    pub teacher: (f64, f64),
}
