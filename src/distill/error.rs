//! The error type of the KD-method losses ([`super::knowledge`], [`super::feature`],
//! [`super::lipschitz_kd`], [`super::relational`], [`super::route`], [`super::meta`]) and the
//! input checks they share.
//!
//! Every function of those modules validates its inputs and returns a [`MethodError`] for
//! input a user could pass (wrong shapes, a label out of range, a parameter outside its range),
//! never a panic. Candle's own errors pass through as [`MethodError::Candle`].

use candle_core::Tensor;
use ndarray::ArrayView2;

/// Why a KD-method loss or target could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    // === Shape errors ===
    /// An input does not have the shape the operation needs.
    #[error("shape mismatch in {op}: {what} has shape {got:?}, expected {expected}")]
    Shape { op: &'static str, what: &'static str, expected: String, got: Vec<usize> },
    /// Too few rows, classes, checkpoints, … for the operation.
    #[error("{op} needs at least {needed} {what}, got {got}")]
    TooFew { op: &'static str, what: &'static str, needed: usize, got: usize },

    // === Value errors ===
    /// A label is not a valid class index.
    #[error("{op}: label {label} at row {row} is outside 0..{n_classes}")]
    LabelOutOfRange { op: &'static str, row: usize, label: usize, n_classes: usize },
    /// A row of a probability matrix is not a probability vector.
    #[error("{op}: row {row} is not a probability vector: {reason}")]
    NotProbabilities { op: &'static str, row: usize, reason: String },
    /// An input holds NaN or an infinity.
    #[error("{op}: {what} has a non-finite value")]
    NonFinite { op: &'static str, what: &'static str },

    // === Parameter errors ===
    /// A setting is outside its allowed range.
    #[error("{op}: {name} = {value} is invalid: must be {allowed}")]
    InvalidParameter { op: &'static str, name: &'static str, value: f64, allowed: &'static str },

    // === Wrapped ===
    /// An error raised by candle while computing a tensor.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with a [`MethodError`].
pub type Result<T> = std::result::Result<T, MethodError>;

/// The (rows, columns) of a rank-2 tensor, or a shape error naming `op` and `what`.
pub(crate) fn dims2(t: &Tensor, op: &'static str, what: &'static str) -> Result<(usize, usize)> {
    match t.dims() {
        &[r, c] => Ok((r, c)),
        other => Err(MethodError::Shape { op, what, expected: "a matrix (rank 2)".into(), got: other.to_vec() }),
    }
}

/// A shape error for a tensor whose shape does not match `expected` (written in words).
pub(crate) fn shape_error(op: &'static str, what: &'static str, expected: String, got: &[usize]) -> MethodError {
    MethodError::Shape { op, what, expected, got: got.to_vec() }
}

/// `Ok(())` when `ok`, else an [`MethodError::InvalidParameter`] error.
pub(crate) fn ensure_parameter(ok: bool, op: &'static str, name: &'static str, value: f64, allowed: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(MethodError::InvalidParameter { op, name, value, allowed })
    }
}

/// Checks that every label is below `n_classes`.
pub(crate) fn check_labels(op: &'static str, y: &[usize], n_classes: usize) -> Result<()> {
    match y.iter().enumerate().find(|(_, &c)| c >= n_classes) {
        Some((row, &label)) => Err(MethodError::LabelOutOfRange { op, row, label, n_classes }),
        None => Ok(()),
    }
}

/// Largest |row sum − 1| accepted for a probability row. Teacher probabilities often come from
/// f32 networks, whose softmax rows sum to 1 only to about 1e-7 per class.
pub(crate) const ROW_SUM_TOLERANCE: f64 = 1e-5;

/// Checks that every row of `p` is finite, non-negative and sums to 1 (within
/// [`ROW_SUM_TOLERANCE`]).
pub(crate) fn check_probabilities(op: &'static str, p: ArrayView2<f64>) -> Result<()> {
    for (row, r) in p.rows().into_iter().enumerate() {
        if let Some(v) = r.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(MethodError::NotProbabilities { op, row, reason: format!("entry {v} is negative or not finite") });
        }
        let sum = r.sum();
        if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(MethodError::NotProbabilities { op, row, reason: format!("entries sum to {sum}, not 1") });
        }
    }
    Ok(())
}
