//! Classification metrics on probability matrices.
//!
//! This module owns every per-example score the workbench reports about a
//! classifier or about how closely a student follows its teacher: accuracy,
//! log loss, Brier score, expected calibration error (with reliability-diagram
//! bins), binary ROC AUC, argmax agreement, row-wise KL divergence and row-wise
//! squared / fourth-power distances.
//!
//! Conventions shared by every function:
//! * `p` is an `n x k` matrix whose rows are probability vectors (already
//!   soft-maxed, never logits); `y` holds `n` labels in `0..k`.
//! * Every input is validated with [`check_probabilities`] and the label
//!   checks before anything is computed; problems come back as
//!   [`MetricsError`], never as a panic or a silent NaN.
//! * Matrices with zero rows are rejected with [`MetricsError::Empty`],
//!   because a mean over no examples has no value.
//! * Logarithms are natural, so information quantities are in nats.

use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

/// Entry-wise tolerance for probabilities lying outside `[0, 1]`.
pub const PROB_ENTRY_TOL: f64 = 1e-9;
/// Tolerance for a row of probabilities summing to 1.
pub const PROB_SUM_TOL: f64 = 1e-6;
/// Floor applied to probabilities inside logarithms (log loss, KL), so that a
/// confidently wrong prediction costs about 34.5 nats instead of infinity.
pub const PROB_FLOOR: f64 = 1e-15;

/// Errors raised by the metrics on malformed input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// No rows (or no scores) were given.
    #[error("empty input: a metric needs at least one example")]
    Empty,
    /// A row of the matrix is not a probability vector; `value` is the
    /// offending entry, or the row sum when `reason` is about the sum.
    #[error("row {row} is not a probability vector: {reason} (value {value})")]
    NotProbabilities {
        row: usize,
        reason: &'static str,
        value: f64,
    },
    /// A label is not a valid class index.
    #[error("label {label} at row {row} is outside 0..{n_classes}")]
    LabelOutOfRange {
        row: usize,
        label: usize,
        n_classes: usize,
    },
    /// `n_bins` was 0.
    #[error("the number of calibration bins must be at least 1, got {n_bins}")]
    InvalidBins { n_bins: usize },
    /// A binary metric received a label other than 0 or 1.
    #[error("binary label must be 0 or 1, got {label} at index {index}")]
    NotBinary { index: usize, label: usize },
    /// A score is NaN or infinite.
    #[error("score at index {index} is not finite ({value})")]
    NonFiniteScore { index: usize, value: f64 },
    /// Only one class occurs among the labels, so AUC is undefined.
    #[error("AUC needs both classes; only class {present} occurs ({count} examples)")]
    SingleClass { present: usize, count: usize },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, MetricsError>;

/// One bin of a reliability diagram, as produced by [`ece_bins`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge `b / B` (inclusive).
    pub lower: f64,
    /// Upper edge `(b + 1) / B` (exclusive, except the last bin, which is closed at 1).
    pub upper: f64,
    /// Number of examples whose top-label confidence falls in the bin.
    pub count: usize,
    /// Mean top-label confidence of those examples; NaN when `count == 0`.
    pub mean_confidence: f64,
    /// Fraction of those examples whose argmax equals the label; NaN when `count == 0`.
    pub accuracy: f64,
}

/// Checks that `p` (`n x k`) holds probability vectors in its rows.
///
/// Every entry must be finite and lie in `[0, 1]` up to [`PROB_ENTRY_TOL`]
/// (1e-9), and every row must sum to 1 up to [`PROB_SUM_TOL`] (1e-6). The
/// error names the first offending row (scanning rows in order, entries before
/// the sum). A matrix with zero rows passes vacuously; a matrix with rows but
/// zero columns fails on row 0 because its sum is 0.
pub fn check_probabilities(p: ArrayView2<f64>) -> Result<()> {
    for (i, row) in p.rows().into_iter().enumerate() {
        let mut sum = 0.0;
        for &v in row.iter() {
            if !v.is_finite() {
                return Err(MetricsError::NotProbabilities {
                    row: i,
                    reason: "non-finite entry",
                    value: v,
                });
            }
            if !(-PROB_ENTRY_TOL..=1.0 + PROB_ENTRY_TOL).contains(&v) {
                return Err(MetricsError::NotProbabilities {
                    row: i,
                    reason: "entry outside [0, 1]",
                    value: v,
                });
            }
            sum += v;
        }
        if (sum - 1.0).abs() > PROB_SUM_TOL {
            return Err(MetricsError::NotProbabilities {
                row: i,
                reason: "row sum differs from 1",
                value: sum,
            });
        }
    }
    Ok(())
}

/// Validates a probability matrix together with its labels.
fn check_labelled(p: ArrayView2<f64>, y: &[usize]) -> Result<()> {
    let (n, k) = p.dim();
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if y.len() != n {
        return Err(MetricsError::ShapeMismatch {
            what: "labels vs. rows of p",
            expected: n,
            got: y.len(),
        });
    }
    check_probabilities(p)?;
    if let Some((row, &label)) = y.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(MetricsError::LabelOutOfRange {
            row,
            label,
            n_classes: k,
        });
    }
    Ok(())
}

/// Validates two probability matrices that are compared row by row.
fn check_pair(p: ArrayView2<f64>, q: ArrayView2<f64>) -> Result<()> {
    let (n, k) = p.dim();
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if q.nrows() != n {
        return Err(MetricsError::ShapeMismatch {
            what: "rows of second matrix",
            expected: n,
            got: q.nrows(),
        });
    }
    if q.ncols() != k {
        return Err(MetricsError::ShapeMismatch {
            what: "columns of second matrix",
            expected: k,
            got: q.ncols(),
        });
    }
    check_probabilities(p)?;
    check_probabilities(q)
}

/// Index of the largest entry; exact ties go to the lowest index, so results
/// do not depend on iteration details. Rows are non-empty and finite here.
pub(crate) fn argmax(row: ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        // Strict `>` keeps the earliest of equal maxima.
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Classification accuracy: the fraction of rows whose argmax equals the label.
///
/// * `p`: `n x k` probabilities; `y`: `n` labels in `0..k`.
/// * Ties in a row (exactly equal maxima) are broken toward the lowest class
///   index, so a uniform row predicts class 0.
/// * Returns a value in `[0, 1]`; errors on empty input, shape mismatch,
///   invalid probabilities or out-of-range labels.
pub fn accuracy(p: ArrayView2<f64>, y: &[usize]) -> Result<f64> {
    check_labelled(p, y)?;
    let correct = p
        .rows()
        .into_iter()
        .zip(y)
        .filter(|(row, &label)| argmax(row.view()) == label)
        .count();
    Ok(correct as f64 / y.len() as f64)
}

/// Log loss (cross-entropy of the labels under `p`): the mean over rows of
/// `-ln p[i, y_i]`, in nats.
///
/// * `p`: `n x k` probabilities; `y`: `n` labels in `0..k`.
/// * `p[i, y_i]` is clipped below at [`PROB_FLOOR`] = 1e-15, so each row costs
///   at most `-ln 1e-15 ≈ 34.54` nats and the result is always finite.
/// * Returns a value `>= 0`; errors as for [`accuracy`].
pub fn log_loss(p: ArrayView2<f64>, y: &[usize]) -> Result<f64> {
    check_labelled(p, y)?;
    let total: f64 = y
        .iter()
        .enumerate()
        .map(|(i, &label)| -p[[i, label]].max(PROB_FLOOR).ln())
        .sum();
    // Tolerated entries slightly above 1 would give a tiny negative loss.
    Ok((total / y.len() as f64).max(0.0))
}

/// Multi-class Brier score: the mean over rows of `Σ_j (p_ij − onehot_ij)²`,
/// where `onehot_i` is the indicator vector of `y_i`.
///
/// * `p`: `n x k` probabilities; `y`: `n` labels in `0..k`.
/// * Unitless, in `[0, 2]`: 0 for a confident correct prediction, 2 for a
///   confident wrong one. (This is the original Brier definition, not the
///   binary variant that halves it.)
/// * Errors as for [`accuracy`].
pub fn brier(p: ArrayView2<f64>, y: &[usize]) -> Result<f64> {
    check_labelled(p, y)?;
    let total: f64 = p
        .rows()
        .into_iter()
        .zip(y)
        .map(|(row, &label)| {
            row.iter()
                .enumerate()
                .map(|(j, &v)| {
                    let t = if j == label { 1.0 } else { 0.0 };
                    (v - t) * (v - t)
                })
                .sum::<f64>()
        })
        .sum();
    Ok(total / y.len() as f64)
}

/// Bin index of a confidence `c` among `n_bins` equal-width bins, consistent
/// with the edges `b / n_bins` that [`ece_bins`] reports.
fn bin_index(c: f64, n_bins: usize) -> usize {
    let nb = n_bins as f64;
    let c = c.clamp(0.0, 1.0);
    let mut b = ((c * nb).floor() as usize).min(n_bins - 1);
    // `c * nb` can round across an edge (e.g. 0.7 * 10 vs 7 / 10), so nudge
    // the index until `lower(b) <= c < lower(b + 1)` holds for the stored edges.
    while b > 0 && c < b as f64 / nb {
        b -= 1;
    }
    while b + 1 < n_bins && c >= (b + 1) as f64 / nb {
        b += 1;
    }
    b
}

/// Reliability-diagram bins for top-label calibration.
///
/// * `p`: `n x k` probabilities; `y`: `n` labels in `0..k`; `n_bins = B >= 1`.
/// * Each row contributes its top-label confidence `max_j p_ij` and whether
///   its argmax (ties toward the lowest index) equals the label.
/// * Bin `b` covers `[b/B, (b+1)/B)`; the last bin is closed at 1, so a
///   confidence of exactly 1.0 lands in bin `B − 1` and exactly 0 in bin 0.
///   A confidence exactly on an interior edge goes to the bin above it.
///   Confidences within tolerance outside `[0, 1]` are clamped first.
/// * Returns all `B` bins in order, including empty ones (count 0, NaN mean
///   confidence and accuracy).
pub fn ece_bins(p: ArrayView2<f64>, y: &[usize], n_bins: usize) -> Result<Vec<CalibrationBin>> {
    if n_bins == 0 {
        return Err(MetricsError::InvalidBins { n_bins });
    }
    check_labelled(p, y)?;
    let mut count = vec![0usize; n_bins];
    let mut conf_sum = vec![0.0f64; n_bins];
    let mut correct = vec![0usize; n_bins];
    for (row, &label) in p.rows().into_iter().zip(y) {
        let top = argmax(row.view());
        let conf = row[top];
        let b = bin_index(conf, n_bins);
        count[b] += 1;
        conf_sum[b] += conf.clamp(0.0, 1.0);
        if top == label {
            correct[b] += 1;
        }
    }
    let nb = n_bins as f64;
    Ok((0..n_bins)
        .map(|b| {
            let c = count[b];
            let (mean_confidence, acc) = if c == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (conf_sum[b] / c as f64, correct[b] as f64 / c as f64)
            };
            CalibrationBin {
                lower: b as f64 / nb,
                upper: (b + 1) as f64 / nb,
                count: c,
                mean_confidence,
                accuracy: acc,
            }
        })
        .collect())
}

/// Top-label expected calibration error with `n_bins` equal-width bins:
/// `Σ_b (n_b / n) · |acc_b − conf_b|`, where `acc_b` and `conf_b` are the
/// accuracy and mean top-label confidence of the `n_b` rows in bin `b`.
///
/// * Inputs and binning rules as in [`ece_bins`]; empty bins contribute 0.
/// * Unitless, in `[0, 1]`. Note that ECE is biased upward on small samples
///   (sampling noise in `acc_b` does not cancel inside the absolute value).
pub fn ece(p: ArrayView2<f64>, y: &[usize], n_bins: usize) -> Result<f64> {
    let bins = ece_bins(p, y, n_bins)?;
    let n = y.len() as f64;
    Ok(bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| b.count as f64 / n * (b.accuracy - b.mean_confidence).abs())
        .sum())
}

/// ECE as Guo et al.'s released code computes it: the *unweighted* mean over all `n_bins`
/// equal-width bins of |accuracy − mean confidence|, empty bins counting 0 (not the standard
/// count-weighted [`ece`]; reported beside it only to compare with that paper).
pub fn ece_unweighted(p: ArrayView2<f64>, y: &[usize], n_bins: usize) -> Result<f64> {
    let bins = ece_bins(p, y, n_bins)?;
    Ok(bins.iter().filter(|b| b.count > 0).map(|b| (b.accuracy - b.mean_confidence).abs()).sum::<f64>() / n_bins as f64)
}

/// Binary ROC AUC: the probability that a random positive (label 1) scores
/// higher than a random negative (label 0), with score ties counting 1/2.
///
/// * `score_class1`: any finite scores, larger meaning "more likely class 1"
///   (typically `p[:, 1]`); `y`: labels in `{0, 1}`, same length.
/// * Computed from the Mann–Whitney statistic with average ranks for tied
///   scores: `AUC = (R_1 − n_1(n_1 + 1)/2) / (n_1 n_0)`, where `R_1` is the rank
///   sum of the positives. Ties are exact float equality.
/// * Returns a value in `[0, 1]` (0.5 when all scores tie); errors on empty or
///   mismatched input, non-finite scores, labels other than 0/1, or when only
///   one class occurs.
pub fn auc_binary(score_class1: &[f64], y: &[usize]) -> Result<f64> {
    let n = score_class1.len();
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if y.len() != n {
        return Err(MetricsError::ShapeMismatch {
            what: "labels vs. scores",
            expected: n,
            got: y.len(),
        });
    }
    if let Some((index, &value)) = score_class1
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return Err(MetricsError::NonFiniteScore { index, value });
    }
    if let Some((index, &label)) = y.iter().enumerate().find(|(_, &l)| l > 1) {
        return Err(MetricsError::NotBinary { index, label });
    }
    let n1 = y.iter().filter(|&&l| l == 1).count();
    let n0 = n - n1;
    if n1 == 0 || n0 == 0 {
        return Err(MetricsError::SingleClass {
            present: if n1 == 0 { 0 } else { 1 },
            count: n,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| score_class1[a].total_cmp(&score_class1[b]));
    // Sum of 1-based average ranks over positives.
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && score_class1[order[end]] == score_class1[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their average.
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = order[start..end].iter().filter(|&&i| y[i] == 1).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        start = end;
    }
    let (n1f, n0f) = (n1 as f64, n0 as f64);
    let u = rank_sum_pos - n1f * (n1f + 1.0) / 2.0;
    Ok(u / (n1f * n0f))
}

/// Argmax agreement: the fraction of rows where `p_a` and `p_b` have the same
/// argmax (ties toward the lowest class index in both), in `[0, 1]`.
///
/// * `p_a`, `p_b`: `n x k` probabilities of the same shape (e.g. student and
///   teacher predictions on the same examples).
/// * Errors on empty input, shape mismatch or invalid probabilities.
pub fn agreement(p_a: ArrayView2<f64>, p_b: ArrayView2<f64>) -> Result<f64> {
    check_pair(p_a, p_b)?;
    let same = p_a
        .rows()
        .into_iter()
        .zip(p_b.rows())
        .filter(|(a, b)| argmax(a.view()) == argmax(b.view()))
        .count();
    Ok(same as f64 / p_a.nrows() as f64)
}

/// Mean row-wise Kullback–Leibler divergence `(1/n) Σ_i KL(p_i ‖ q_i)` with
/// `KL(p_i ‖ q_i) = Σ_j p_ij (ln p_ij − ln q_ij)`, in nats.
///
/// * `p`, `q`: `n x k` probabilities of the same shape; `p` is the reference
///   (e.g. teacher) and `q` the approximation (e.g. student).
/// * Terms with `p_ij = 0` contribute 0 (the convention `0 · ln 0 = 0`).
/// * `q_ij` is clipped below at [`PROB_FLOOR`] = 1e-15, so a zero in `q` where
///   `p` has mass gives a large finite value rather than infinity.
/// * Each row's value is clamped at 0 so the result is always `>= 0`; only
///   rounding and the tolerated row-sum error can push a row below 0.
/// * Errors on empty input, shape mismatch or invalid probabilities.
pub fn kl_rows(p: ArrayView2<f64>, q: ArrayView2<f64>) -> Result<f64> {
    check_pair(p, q)?;
    let total: f64 = p
        .rows()
        .into_iter()
        .zip(q.rows())
        .map(|(pr, qr)| {
            let kl: f64 = pr
                .iter()
                .zip(qr.iter())
                .filter(|(&pj, _)| pj > 0.0)
                .map(|(&pj, &qj)| pj * (pj.ln() - qj.max(PROB_FLOOR).ln()))
                .sum();
            kl.max(0.0)
        })
        .sum();
    Ok(total / p.nrows() as f64)
}

/// Mean over rows of a power of the element-wise difference.
fn mean_row_power(p: ArrayView2<f64>, q: ArrayView2<f64>, power: i32) -> Result<f64> {
    check_pair(p, q)?;
    let total: f64 = p
        .iter()
        .zip(q.iter())
        .map(|(&a, &b)| (a - b).powi(power))
        .sum();
    Ok(total / p.nrows() as f64)
}

/// Mean squared distance between rows: `(1/n) Σ_i Σ_j (p_ij − q_ij)²`.
///
/// * `p`, `q`: `n x k` probabilities of the same shape.
/// * Unitless, in `[0, 2]`. Errors on empty input, shape mismatch or invalid
///   probabilities.
pub fn squared_error_rows(p: ArrayView2<f64>, q: ArrayView2<f64>) -> Result<f64> {
    mean_row_power(p, q, 2)
}

/// Mean fourth-power distance between rows: `(1/n) Σ_i Σ_j (p_ij − q_ij)⁴`.
///
/// * `p`, `q`: `n x k` probabilities of the same shape.
/// * Unitless, in `[0, 2]`. Errors on empty input, shape mismatch or invalid
///   probabilities.
pub fn fourth_power_error_rows(p: ArrayView2<f64>, q: ArrayView2<f64>) -> Result<f64> {
    mean_row_power(p, q, 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// SplitMix64: a tiny deterministic generator so the synthetic test data
    /// are identical on every platform.
    struct SplitMix(u64);
    impl SplitMix {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in [0, 1) with 53 random bits.
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn check_probabilities_names_first_bad_row() {
        let ok = array![[0.2, 0.8], [1.0, 0.0]];
        assert!(check_probabilities(ok.view()).is_ok());
        let bad_sum = array![[0.5, 0.5], [0.6, 0.6], [2.0, -1.0]];
        match check_probabilities(bad_sum.view()) {
            Err(MetricsError::NotProbabilities { row, value, .. }) => {
                assert_eq!(row, 1);
                assert!(close(value, 1.2, 1e-12));
            }
            other => panic!("unexpected {other:?}"),
        }
        let negative = array![[0.5, 0.5], [1.1, -0.1]];
        assert!(matches!(
            check_probabilities(negative.view()),
            Err(MetricsError::NotProbabilities { row: 1, .. })
        ));
        let nan = array![[f64::NAN, 1.0]];
        assert!(matches!(
            check_probabilities(nan.view()),
            Err(MetricsError::NotProbabilities { row: 0, .. })
        ));
        // Within tolerance passes.
        let near = array![[0.5 + 4e-7, 0.5]];
        assert!(check_probabilities(near.view()).is_ok());
        // Logits are rejected.
        let logits = array![[2.0, -1.0, 0.5]];
        assert!(check_probabilities(logits.view()).is_err());
    }

    #[test]
    fn label_and_shape_errors() {
        let p = array![[0.5, 0.5], [0.1, 0.9]];
        assert_eq!(
            accuracy(p.view(), &[0]),
            Err(MetricsError::ShapeMismatch {
                what: "labels vs. rows of p",
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            log_loss(p.view(), &[0, 2]),
            Err(MetricsError::LabelOutOfRange {
                row: 1,
                label: 2,
                n_classes: 2
            })
        );
        let empty = Array2::<f64>::zeros((0, 3));
        assert_eq!(brier(empty.view(), &[]), Err(MetricsError::Empty));
        let q = array![[0.5, 0.3, 0.2]];
        assert!(matches!(
            kl_rows(p.view(), q.view()),
            Err(MetricsError::ShapeMismatch { .. })
        ));
        assert_eq!(
            ece(p.view(), &[0, 1], 0),
            Err(MetricsError::InvalidBins { n_bins: 0 })
        );
    }

    #[test]
    fn accuracy_with_ties_toward_lowest_index() {
        // Row 0: argmax 1; row 1: tie 0/1 -> 0; row 2: three-way tie -> 0; row 3: argmax 2.
        let p = array![
            [0.2, 0.7, 0.1],
            [0.4, 0.4, 0.2],
            [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
            [0.1, 0.2, 0.7]
        ];
        assert_eq!(accuracy(p.view(), &[1, 0, 0, 2]).unwrap(), 1.0);
        assert_eq!(accuracy(p.view(), &[1, 1, 1, 0]).unwrap(), 0.25);
    }

    #[test]
    fn log_loss_hand_cases() {
        let p = array![[0.8, 0.2], [0.3, 0.7]];
        // (−ln 0.8 − ln 0.3) / 2
        let expected = (-(0.8f64).ln() - (0.3f64).ln()) / 2.0;
        assert!(close(log_loss(p.view(), &[0, 0]).unwrap(), expected, 1e-12));
        // Uniform over 4 classes: ln 4 nats.
        let u = Array2::from_elem((3, 4), 0.25);
        assert!(close(
            log_loss(u.view(), &[0, 1, 3]).unwrap(),
            4f64.ln(),
            1e-12
        ));
        // A zero probability on the label is clipped at 1e-15.
        let hard = array![[1.0, 0.0]];
        assert!(close(
            log_loss(hard.view(), &[1]).unwrap(),
            -(1e-15f64).ln(),
            1e-9
        ));
        assert_eq!(log_loss(hard.view(), &[0]).unwrap(), 0.0);
    }

    #[test]
    fn brier_hand_cases() {
        // Label 0 in both rows: (0.8 − 1)² + 0.2² = 0.08 and (0.3 − 1)² + 0.7² = 0.98.
        let p = array![[0.8, 0.2], [0.3, 0.7]];
        assert!(close(
            brier(p.view(), &[0, 0]).unwrap(),
            (0.08 + 0.98) / 2.0,
            1e-12
        ));
        // Confident and wrong: 2; confident and right: 0.
        let hard = array![[0.0, 1.0, 0.0]];
        assert!(close(brier(hard.view(), &[0]).unwrap(), 2.0, 1e-15));
        assert!(close(brier(hard.view(), &[1]).unwrap(), 0.0, 1e-15));
        // Uniform over k classes: (1 − 1/k)² + (k − 1)/k² = 1 − 1/k.
        let u = Array2::from_elem((2, 4), 0.25);
        assert!(close(brier(u.view(), &[2, 3]).unwrap(), 0.75, 1e-12));
    }

    #[test]
    fn kl_identity_nonnegativity_and_asymmetry() {
        let p = array![[0.5, 0.5, 0.0], [0.1, 0.6, 0.3]];
        assert_eq!(kl_rows(p.view(), p.view()).unwrap(), 0.0);

        // By hand: KL([0.5,0.5] ‖ [0.9,0.1]) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1)
        //        = 0.5 ln(25/9) ≈ 0.510826
        // and KL([0.9,0.1] ‖ [0.5,0.5]) = 0.9 ln 1.8 + 0.1 ln 0.2 ≈ 0.368064.
        let a = array![[0.5, 0.5]];
        let b = array![[0.9, 0.1]];
        let ab = kl_rows(a.view(), b.view()).unwrap();
        let ba = kl_rows(b.view(), a.view()).unwrap();
        assert!(close(ab, 0.5 * (25.0f64 / 9.0).ln(), 1e-12));
        assert!(close(ab, 0.510_825_623_765_990_6, 1e-12));
        assert!(close(ba, 0.9 * 1.8f64.ln() + 0.1 * 0.2f64.ln(), 1e-12));
        assert!(close(ba, 0.368_064_207_168_497_1, 1e-12));
        assert!(ab > ba + 0.1);

        // 0 · ln 0 = 0: p has a zero where q does not.
        let p0 = array![[1.0, 0.0]];
        let q0 = array![[0.5, 0.5]];
        assert!(close(
            kl_rows(p0.view(), q0.view()).unwrap(),
            2f64.ln(),
            1e-12
        ));
        // q has a zero where p has mass: clipped at 1e-15, large but finite.
        let big = kl_rows(q0.view(), p0.view()).unwrap();
        // 0.5 ln(0.5 / 1) + 0.5 ln(0.5 / 1e-15) ≈ 16.58 nats.
        assert!(close(big, 0.5f64.ln() - 0.5 * 1e-15f64.ln(), 1e-9));

        // Non-negativity on many pseudo-random pairs.
        let mut rng = SplitMix(7);
        for _ in 0..200 {
            let mut m = Array2::<f64>::zeros((2, 5));
            for mut row in m.rows_mut() {
                row.mapv_inplace(|_| rng.uniform() + 1e-3);
                let s = row.sum();
                row.mapv_inplace(|v| v / s);
            }
            let kl = kl_rows(
                m.slice(ndarray::s![0..1, ..]),
                m.slice(ndarray::s![1..2, ..]),
            )
            .unwrap();
            assert!(kl >= 0.0);
        }
    }

    #[test]
    fn agreement_self_permuted_and_partial() {
        let p = array![[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]];
        assert_eq!(agreement(p.view(), p.view()).unwrap(), 1.0);
        // Cyclic class permutation moves every (unique) argmax.
        let perm = array![[0.1, 0.7, 0.2], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]];
        assert_eq!(agreement(p.view(), perm.view()).unwrap(), 0.0);
        // One of three rows agrees.
        let mixed = array![[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.5, 0.1, 0.4]];
        let a = agreement(p.view(), mixed.view()).unwrap();
        assert!(close(a, 1.0 / 3.0, 1e-15));
        assert!((0.0..=1.0).contains(&a));
    }

    #[test]
    fn squared_and_fourth_power_errors() {
        let p = array![[1.0, 0.0], [0.5, 0.5]];
        let q = array![[0.0, 1.0], [0.5, 0.5]];
        // Row 0: 1 + 1 = 2 (squared), 1 + 1 = 2 (fourth); row 1: 0.
        assert!(close(
            squared_error_rows(p.view(), q.view()).unwrap(),
            1.0,
            1e-15
        ));
        assert!(close(
            fourth_power_error_rows(p.view(), q.view()).unwrap(),
            1.0,
            1e-15
        ));
        let r = array![[0.75, 0.25]];
        let s = array![[0.25, 0.75]];
        // 2 · 0.5² = 0.5 and 2 · 0.5⁴ = 0.125.
        assert!(close(
            squared_error_rows(r.view(), s.view()).unwrap(),
            0.5,
            1e-15
        ));
        assert!(close(
            fourth_power_error_rows(r.view(), s.view()).unwrap(),
            0.125,
            1e-15
        ));
    }

    #[test]
    fn ece_bin_edges() {
        // Two classes, top-label confidence = max(p0, p1).
        let p = array![[0.1, 0.9], [0.0, 1.0], [0.9, 0.1], [0.5, 0.5], [0.7, 0.3]];
        let y = [1, 1, 1, 0, 0];
        let bins = ece_bins(p.view(), &y, 10).unwrap();
        assert_eq!(bins.len(), 10);
        // 0.9 sits on the interior edge 9/10 and goes to the bin above it;
        // 1.0 goes to the last (closed) bin, which also holds 0.9.
        assert_eq!(bins[9].count, 3);
        assert_eq!(bins[9].lower, 0.9);
        assert_eq!(bins[9].upper, 1.0);
        assert!(close(
            bins[9].mean_confidence,
            (0.9 + 1.0 + 0.9) / 3.0,
            1e-12
        ));
        assert!(close(bins[9].accuracy, 2.0 / 3.0, 1e-12));
        assert_eq!(bins[5].count, 1); // 0.5 on the edge 5/10
        assert_eq!(bins[7].count, 1); // 0.7 on the edge 7/10
        assert!(bins[0].mean_confidence.is_nan());
        // ECE by hand: (3/5)|2/3 − 14/15| + (1/5)|1 − 0.5| + (1/5)|1 − 0.7|
        let expected = 0.6 * (2.0 / 3.0 - 2.8 / 3.0f64).abs() + 0.2 * 0.5 + 0.2 * 0.3;
        assert!(close(ece(p.view(), &y, 10).unwrap(), expected, 1e-12));

        // Exact edge rules with direct confidences.
        assert_eq!(bin_index(0.0, 10), 0);
        assert_eq!(bin_index(0.1, 10), 1);
        assert_eq!(bin_index(0.099_999_999, 10), 0);
        assert_eq!(bin_index(1.0, 10), 9);
        assert_eq!(bin_index(1.0, 1), 0);
        // Every edge b/B goes to bin b, for awkward B where b * (1/B) rounds.
        for nb in [3usize, 7, 10, 15, 49, 100] {
            for b in 0..nb {
                assert_eq!(bin_index(b as f64 / nb as f64, nb), b, "edge {b}/{nb}");
            }
        }
        // Confidence exactly 0.1 needs k >= 10 (top-label confidence >= 1/k):
        // a uniform 10-class row lands in bin [0.1, 0.2).
        let row = Array2::from_elem((1, 10), 0.1);
        let b = ece_bins(row.view(), &[0], 10).unwrap();
        assert_eq!(b[1].count, 1);
        assert_eq!(b[1].accuracy, 1.0); // tie -> class 0 is correct
        assert!(close(ece(row.view(), &[0], 10).unwrap(), 0.9, 1e-12));
    }

    #[test]
    fn ece_near_zero_when_perfectly_calibrated() {
        // Confidence c ~ U(0.5, 1) for a binary problem (top-label confidence
        // cannot be below 1/2 there), label correct with probability c.
        let n = 200_000;
        let mut rng = SplitMix(0x5EED);
        let mut p = Array2::<f64>::zeros((n, 2));
        let mut y = vec![0usize; n];
        for i in 0..n {
            let c = 0.5 + 0.5 * rng.uniform();
            p[[i, 0]] = c;
            p[[i, 1]] = 1.0 - c;
            y[i] = if rng.uniform() < c { 0 } else { 1 };
        }
        let bins = 10;
        let e = ece(p.view(), &y, bins).unwrap();
        // Only bins 5..9 are occupied, each with n_b ≈ n/5 = 40 000 rows.
        // Given the confidences, acc_b − conf_b has mean 0 and sd at most
        // √(0.25 / 40 000) = 0.0025 (Bernoulli variance c(1 − c) <= 1/4).
        // ECE is a weighted average of the |acc_b − conf_b|, so it is at most
        // their maximum; exceeding 0.01 needs some bin 4 sd out, probability
        // below 5 · 6.3e-5. Its expectation is only about 0.0025 · √(2/π) ≈ 0.002.
        assert!(e < 0.01, "ECE = {e}");
        // Sanity: shifting confidence up by 0.1 (capped at 1) is clearly detected;
        // the expected ECE is then about 0.8 · 0.1 + 0.2 · 0.05 = 0.09.
        let mut p_over = p.clone();
        for i in 0..n {
            let c = (p[[i, 0]] + 0.1).min(1.0);
            p_over[[i, 0]] = c;
            p_over[[i, 1]] = 1.0 - c;
        }
        assert!(ece(p_over.view(), &y, bins).unwrap() > 0.07);
    }

    #[test]
    fn auc_hand_examples() {
        // Perfect separation.
        assert_eq!(
            auc_binary(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]).unwrap(),
            1.0
        );
        // Reversed.
        assert_eq!(
            auc_binary(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]).unwrap(),
            0.0
        );
        // All tied.
        assert_eq!(auc_binary(&[0.5; 5], &[0, 1, 0, 1, 1]).unwrap(), 0.5);
        // Pairs (pos, neg): positives {0.4, 0.8}, negatives {0.1, 0.4, 0.9}.
        // 0.4 vs 0.1: 1, vs 0.4: 1/2, vs 0.9: 0; 0.8 vs 0.1: 1, vs 0.4: 1, vs 0.9: 0
        // → 3.5 / 6.
        let auc = auc_binary(&[0.1, 0.4, 0.4, 0.8, 0.9], &[0, 1, 0, 1, 0]).unwrap();
        assert!(close(auc, 3.5 / 6.0, 1e-15));
        // Errors.
        assert_eq!(
            auc_binary(&[0.1, 0.2], &[1, 1]),
            Err(MetricsError::SingleClass {
                present: 1,
                count: 2
            })
        );
        assert_eq!(
            auc_binary(&[0.1, 0.2], &[0, 2]),
            Err(MetricsError::NotBinary { index: 1, label: 2 })
        );
        assert!(matches!(
            auc_binary(&[0.1, f64::NAN], &[0, 1]),
            Err(MetricsError::NonFiniteScore { index: 1, .. })
        ));
        assert_eq!(auc_binary(&[], &[]), Err(MetricsError::Empty));
    }
}
