//! Calibration: top-label and classwise expected calibration error (ECE) with equal-width or
//! equal-mass bins, reliability-diagram data, and seeded bootstrap intervals.
//!
//! Inputs: `p` is `n x k` with probability vectors in its rows (not logits), `y` holds `n`
//! labels in `0..k`. Top-label confidence is `max_j p_ij` and the prediction its argmax, ties
//! toward the lowest class index (as in kdlab's `metrics`, whose equal-width L1 ECE this
//! reproduces).
//!
//! Binned ECE is a plug-in estimate: it is biased **upwards** for a calibrated model (each
//! bin's accuracy is noisy, and `|noise|` has a positive mean, about `√(2/(π n_b))·√(p(1−p))`
//! per bin), and the bias grows with the number of bins. The bootstrap shares that bias, so its
//! percentile interval describes sampling spread around a biased quantity; compare models with
//! the same n and bins.

use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use crate::diagnostics::{item_seeds, quantile_sorted, DiagnosticsError, Result};
use crate::metrics::argmax;

/// Entry-wise tolerance for probabilities outside `[0, 1]`.
const PROB_ENTRY_TOL: f64 = 1e-9;
/// Tolerance for a row sum differing from 1.
const PROB_SUM_TOL: f64 = 1e-6;

/// How confidences are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinScheme {
    /// Bin b covers `[b/B, (b+1)/B)`, the last one closed at 1; a confidence exactly on an
    /// interior edge goes to the bin above it.
    EqualWidth,
    /// Sorted by confidence (ties by row index), bin b takes sorted positions
    /// `[⌊b n/B⌋, ⌊(b+1) n/B⌋)`, so counts differ by at most one; tied confidences may
    /// straddle two bins. Edges are the smallest and largest confidence in the bin.
    EqualMass,
}

/// How the per-bin gaps `|acc_b − conf_b|` are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CalibrationNorm {
    /// `Σ_b (n_b/n) |acc_b − conf_b|`: the usual ECE.
    L1,
    /// `√(Σ_b (n_b/n) (acc_b − conf_b)²)`.
    L2,
    /// `max_b |acc_b − conf_b|` over non-empty bins (MCE).
    Max,
}

/// Settings shared by the calibration functions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EceParams {
    /// Number of bins B (default 15, as netcal and torchmetrics).
    pub n_bins: usize,
    pub scheme: BinScheme,
    pub norm: CalibrationNorm,
}

impl Default for EceParams {
    fn default() -> Self {
        Self {
            n_bins: 15,
            scheme: BinScheme::EqualWidth,
            norm: CalibrationNorm::L1,
        }
    }
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge (equal width: `b/B`; equal mass: smallest confidence in the bin).
    pub lower: f64,
    /// Upper edge (equal width: `(b+1)/B`; equal mass: largest confidence in the bin).
    pub upper: f64,
    /// Rows in the bin.
    pub count: usize,
    /// Mean confidence of those rows; NaN when `count == 0`.
    pub mean_confidence: f64,
    /// Fraction of those rows that are hits; NaN when `count == 0`.
    pub accuracy: f64,
}

/// A binned calibration error with its reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ece {
    pub value: f64,
    pub n: usize,
    pub params: EceParams,
    pub bins: Vec<ReliabilityBin>,
}

/// Classwise ECE (Kull et al. 2019): for every class j, the binned calibration error of
/// `p_ij` against `1{y_i = j}` over all rows; `value` is their mean over classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClasswiseEce {
    pub value: f64,
    pub per_class: Vec<f64>,
    pub params: EceParams,
}

/// Which calibration statistic a bootstrap resamples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EceKind {
    TopLabel,
    Classwise,
}

/// A percentile bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapCi {
    /// The statistic on the full sample.
    pub estimate: f64,
    /// Mean of the bootstrap replicates (its distance to `estimate` shows the bootstrap bias).
    pub bootstrap_mean: f64,
    /// 2.5th percentile of the replicates.
    pub low: f64,
    /// 97.5th percentile of the replicates.
    pub high: f64,
    /// Number of replicates B.
    pub replicates: usize,
}

/// Top-label calibration error with its reliability diagram.
///
/// Each row contributes its top-label confidence `c_i = max_j p_ij` and the hit
/// `1{argmax_j p_ij = y_i}`; bins follow `params.scheme`, the gaps are combined by
/// `params.norm` with weights `n_b / n`.
///
/// Errors: empty input, label count ≠ rows, no columns, non-probability rows, labels out of
/// range, `n_bins = 0`.
pub fn ece(p: ArrayView2<f64>, y: &[usize], params: &EceParams) -> Result<Ece> {
    check(p, y, params)?;
    let (conf, hit) = top_label(p, y);
    let bins = binned(&conf, &hit, params);
    Ok(Ece {
        value: combine(&bins, y.len(), params.norm),
        n: y.len(),
        params: *params,
        bins,
    })
}

/// Reliability-diagram data: the bins of [`ece`].
pub fn reliability_diagram(
    p: ArrayView2<f64>,
    y: &[usize],
    params: &EceParams,
) -> Result<Vec<ReliabilityBin>> {
    Ok(ece(p, y, params)?.bins)
}

/// Classwise ECE; see [`ClasswiseEce`]. Errors as [`ece`].
pub fn classwise_ece(p: ArrayView2<f64>, y: &[usize], params: &EceParams) -> Result<ClasswiseEce> {
    check(p, y, params)?;
    let per_class = classwise_values(p, y, params);
    Ok(ClasswiseEce {
        value: per_class.iter().sum::<f64>() / per_class.len() as f64,
        per_class,
        params: *params,
    })
}

/// Percentile bootstrap 95 % interval of a calibration statistic: B resamples of the rows with
/// replacement (one seed per replicate, drawn from `seed`), the statistic recomputed on each
/// (equal-mass bins are re-formed per resample).
///
/// Errors as [`ece`], plus `replicates = 0`.
pub fn bootstrap_ci(
    p: ArrayView2<f64>,
    y: &[usize],
    params: &EceParams,
    kind: EceKind,
    replicates: usize,
    seed: u64,
) -> Result<BootstrapCi> {
    check(p, y, params)?;
    if replicates == 0 {
        return Err(DiagnosticsError::InvalidParameter {
            name: "replicates",
            value: 0.0,
            allowed: "at least 1",
        });
    }
    let n = y.len();
    let statistic = |rows: Option<&[usize]>| -> f64 {
        let (pp, yy) = match rows {
            None => (p.to_owned(), y.to_vec()),
            Some(r) => (
                p.select(ndarray::Axis(0), r),
                r.iter().map(|&i| y[i]).collect(),
            ),
        };
        match kind {
            EceKind::TopLabel => {
                let (conf, hit) = top_label(pp.view(), &yy);
                combine(&binned(&conf, &hit, params), n, params.norm)
            }
            EceKind::Classwise => {
                let v = classwise_values(pp.view(), &yy, params);
                v.iter().sum::<f64>() / v.len() as f64
            }
        }
    };
    let estimate = statistic(None);
    let mut values: Vec<f64> = item_seeds(seed, replicates)
        .into_par_iter()
        .map(|s| {
            let mut rng = StdRng::seed_from_u64(s);
            let rows: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
            statistic(Some(&rows))
        })
        .collect();
    let bootstrap_mean = values.iter().sum::<f64>() / replicates as f64;
    values.sort_by(f64::total_cmp);
    Ok(BootstrapCi {
        estimate,
        bootstrap_mean,
        low: quantile_sorted(&values, 0.025),
        high: quantile_sorted(&values, 0.975),
        replicates,
    })
}

fn check(p: ArrayView2<f64>, y: &[usize], params: &EceParams) -> Result<()> {
    let (n, k) = p.dim();
    if params.n_bins == 0 {
        return Err(DiagnosticsError::InvalidParameter {
            name: "n_bins",
            value: 0.0,
            allowed: "at least 1",
        });
    }
    if n == 0 {
        return Err(DiagnosticsError::TooFewSamples {
            what: "calibration",
            needed: 1,
            got: 0,
        });
    }
    if y.len() != n {
        return Err(DiagnosticsError::ShapeMismatch {
            what: "labels vs rows of p",
            expected: n,
            got: y.len(),
        });
    }
    if k == 0 {
        return Err(DiagnosticsError::NoColumns { what: "p" });
    }
    for (row, r) in p.rows().into_iter().enumerate() {
        let mut sum = 0.0;
        for &v in r.iter() {
            if !v.is_finite() || !(-PROB_ENTRY_TOL..=1.0 + PROB_ENTRY_TOL).contains(&v) {
                return Err(DiagnosticsError::NotProbabilities {
                    row,
                    reason: "entry outside [0, 1]",
                    value: v,
                });
            }
            sum += v;
        }
        if (sum - 1.0).abs() > PROB_SUM_TOL {
            return Err(DiagnosticsError::NotProbabilities {
                row,
                reason: "row does not sum to 1",
                value: sum,
            });
        }
    }
    if let Some((row, &label)) = y.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(DiagnosticsError::LabelOutOfRange {
            row,
            label,
            n_classes: k,
        });
    }
    Ok(())
}


/// Top-label confidences (clamped into [0, 1]) and hits.
fn top_label(p: ArrayView2<f64>, y: &[usize]) -> (Vec<f64>, Vec<f64>) {
    p.rows()
        .into_iter()
        .zip(y)
        .map(|(row, &label)| {
            let top = argmax(row);
            (row[top].clamp(0.0, 1.0), f64::from(u8::from(top == label)))
        })
        .unzip()
}

fn classwise_values(p: ArrayView2<f64>, y: &[usize], params: &EceParams) -> Vec<f64> {
    (0..p.ncols())
        .map(|j| {
            let conf: Vec<f64> = p.column(j).iter().map(|v| v.clamp(0.0, 1.0)).collect();
            let hit: Vec<f64> = y.iter().map(|&l| f64::from(u8::from(l == j))).collect();
            combine(&binned(&conf, &hit, params), y.len(), params.norm)
        })
        .collect()
}

/// Equal-width bin of a confidence in [0, 1], with the stored edges `b / B` as the truth
/// (`c · B` can round across an edge).
fn width_bin(c: f64, n_bins: usize) -> usize {
    let nb = n_bins as f64;
    let mut b = ((c * nb).floor() as usize).min(n_bins - 1);
    while b > 0 && c < b as f64 / nb {
        b -= 1;
    }
    while b + 1 < n_bins && c >= (b + 1) as f64 / nb {
        b += 1;
    }
    b
}

fn binned(conf: &[f64], hit: &[f64], params: &EceParams) -> Vec<ReliabilityBin> {
    let nb = params.n_bins;
    let n = conf.len();
    let mut count = vec![0usize; nb];
    let mut conf_sum = vec![0.0; nb];
    let mut hit_sum = vec![0.0; nb];
    let mut lower: Vec<f64>;
    let mut upper: Vec<f64>;
    match params.scheme {
        BinScheme::EqualWidth => {
            for (&c, &h) in conf.iter().zip(hit) {
                let b = width_bin(c, nb);
                count[b] += 1;
                conf_sum[b] += c;
                hit_sum[b] += h;
            }
            lower = (0..nb).map(|b| b as f64 / nb as f64).collect();
            upper = (0..nb).map(|b| (b + 1) as f64 / nb as f64).collect();
        }
        BinScheme::EqualMass => {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]).then(a.cmp(&b)));
            lower = vec![f64::NAN; nb];
            upper = vec![f64::NAN; nb];
            for b in 0..nb {
                let (s, e) = (b * n / nb, (b + 1) * n / nb);
                for &i in &order[s..e] {
                    count[b] += 1;
                    conf_sum[b] += conf[i];
                    hit_sum[b] += hit[i];
                }
                if e > s {
                    lower[b] = conf[order[s]];
                    upper[b] = conf[order[e - 1]];
                }
            }
        }
    }
    (0..nb)
        .map(|b| {
            let c = count[b];
            let (mean_confidence, accuracy) = if c == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (conf_sum[b] / c as f64, hit_sum[b] / c as f64)
            };
            ReliabilityBin {
                lower: lower[b],
                upper: upper[b],
                count: c,
                mean_confidence,
                accuracy,
            }
        })
        .collect()
}

fn combine(bins: &[ReliabilityBin], n: usize, norm: CalibrationNorm) -> f64 {
    let gaps = bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.count as f64 / n as f64, (b.accuracy - b.mean_confidence).abs()));
    match norm {
        CalibrationNorm::L1 => gaps.map(|(w, g)| w * g).sum(),
        CalibrationNorm::L2 => gaps.map(|(w, g)| w * g * g).sum::<f64>().sqrt(),
        CalibrationNorm::Max => gaps.map(|(_, g)| g).fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// A calibrated binary sample: confidence drawn uniformly in [0.5, 1], label drawn with
    /// exactly that probability of matching the prediction.
    fn calibrated(n: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut p = Array2::zeros((n, 2));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c: f64 = 0.5 + 0.5 * rng.gen::<f64>();
            let predicted = rng.gen_range(0..2);
            p[[i, predicted]] = c;
            p[[i, 1 - predicted]] = 1.0 - c;
            y.push(if rng.gen::<f64>() < c { predicted } else { 1 - predicted });
        }
        (p, y)
    }

    #[test]
    fn calibrated_sample_has_near_zero_ece() {
        let (p, y) = calibrated(100_000, 1);
        let r = ece(p.view(), &y, &EceParams::default()).unwrap();
        // Each bin's expected gap is 0 (calibrated within the bin), so ECE is pure noise: ~8
        // occupied bins of ~13,000 rows, accuracy sd ≤ √(0.25/13,000) = 0.0044, E|gap| ≈ 0.8 sd,
        // so ECE has mean ≈ 0.0035 and sd ≈ 0.001; 0.01 is > 6 sd above (chance < 1e-6).
        assert!(r.value < 0.01, "ECE {}", r.value);
        let em = ece(p.view(), &y, &EceParams { scheme: BinScheme::EqualMass, ..Default::default() }).unwrap();
        assert!(em.value < 0.01, "equal-mass ECE {}", em.value);
        let cw = classwise_ece(p.view(), &y, &EceParams::default()).unwrap();
        // Classwise bins spread over all 15 bins with ≥ 6,000 rows: same argument, 0.015.
        assert!(cw.value < 0.015, "classwise ECE {}", cw.value);
    }

    #[test]
    fn known_ece_by_hand() {
        // Two rows at confidence 0.9 (one hit) and two at 0.6 (both hits), 10 bins:
        // ECE = ½|0.5 − 0.9| + ½|1 − 0.6| = 0.4; MCE = 0.4; L2 = √(½·0.16 + ½·0.16) = 0.4.
        let p = array![[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]];
        let y = [0, 0, 0, 1];
        for norm in [CalibrationNorm::L1, CalibrationNorm::L2, CalibrationNorm::Max] {
            let r = ece(p.view(), &y, &EceParams { n_bins: 10, norm, ..Default::default() }).unwrap();
            assert!((r.value - 0.4).abs() < 1e-12, "{norm:?}: {}", r.value);
        }
        let y = [0, 1, 0, 1];
        let r = ece(p.view(), &y, &EceParams { n_bins: 10, ..Default::default() }).unwrap();
        // Rows at 0.9: both hits (gap 0.1); rows at 0.6: both hits (gap 0.4) → 0.25.
        assert!((r.value - 0.25).abs() < 1e-12);
    }

    #[test]
    fn bin_edges_are_lower_inclusive_and_the_last_bin_is_closed() {
        let params = EceParams { n_bins: 10, ..Default::default() };
        for b in 0..10 {
            let edge = b as f64 / 10.0;
            assert_eq!(width_bin(edge, 10), b, "edge {edge}");
            if b > 0 {
                assert_eq!(width_bin(f64::from_bits(edge.to_bits() - 1), 10), b - 1);
            }
        }
        assert_eq!(width_bin(1.0, 10), 9);
        assert_eq!(width_bin(0.0, 10), 0);
        // A three-class row at confidence exactly 0.7 lands in [0.7, 0.8).
        let p = array![[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]];
        let bins = reliability_diagram(p.view(), &[0, 0], &params).unwrap();
        assert_eq!(bins[7].count, 1);
        assert_eq!(bins[9].count, 1);
        assert_eq!((bins[7].lower, bins[7].upper), (0.7, 0.8));
        assert!(bins[0].mean_confidence.is_nan() && bins[0].count == 0);
    }

    #[test]
    fn equal_mass_bins_have_equal_counts() {
        for n in [1usize, 7, 100, 1003] {
            let (p, y) = calibrated(n, n as u64);
            for nb in [1usize, 3, 10, 15] {
                let bins = reliability_diagram(p.view(), &y, &EceParams {
                    n_bins: nb,
                    scheme: BinScheme::EqualMass,
                    ..Default::default()
                })
                .unwrap();
                let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 1, "n {n} bins {nb}: {counts:?}");
                assert_eq!(counts.iter().sum::<usize>(), n);
                // Bins are ordered: each bin's edges do not go below the previous bin's.
                let filled: Vec<&ReliabilityBin> = bins.iter().filter(|b| b.count > 0).collect();
                for w in filled.windows(2) {
                    assert!(w[0].upper <= w[1].lower && w[0].lower <= w[0].upper);
                }
            }
        }
    }

    #[test]
    fn bootstrap_interval_contains_the_estimate() {
        // A miscalibrated model: claims 0.9, is right 70 % of the time (true ECE 0.2).
        let mut rng = StdRng::seed_from_u64(3);
        let n = 2000;
        let mut p = Array2::zeros((n, 3));
        let mut y = Vec::new();
        for i in 0..n {
            p[[i, 0]] = 0.9;
            p[[i, 1]] = 0.05;
            p[[i, 2]] = 0.05;
            y.push(if rng.gen::<f64>() < 0.7 { 0 } else { 1 + rng.gen_range(0..2) });
        }
        let ci = bootstrap_ci(p.view(), &y, &EceParams::default(), EceKind::TopLabel, 500, 4).unwrap();
        // The estimate is a sample proportion gap: sd ≈ √(0.21/2000) ≈ 0.010, and the
        // percentile interval (±1.96 sd) contains it unless the bootstrap distribution is off
        // by > 2 sd, which happens with probability far below 1/1000 for B = 500.
        assert!(ci.low <= ci.estimate && ci.estimate <= ci.high, "{ci:?}");
        assert!((ci.estimate - 0.2).abs() < 0.05);
        assert!(ci.high - ci.low < 0.06 && ci.high - ci.low > 0.02);
        let cw = bootstrap_ci(p.view(), &y, &EceParams::default(), EceKind::Classwise, 200, 4).unwrap();
        assert!(cw.low <= cw.estimate && cw.estimate <= cw.high, "{cw:?}");
        // Same seed, same answer, whatever the thread count.
        let again = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
            bootstrap_ci(p.view(), &y, &EceParams::default(), EceKind::TopLabel, 500, 4).unwrap()
        });
        assert_eq!(ci, again);
    }

    #[test]
    fn input_errors() {
        let p = array![[0.5, 0.6]];
        assert!(matches!(ece(p.view(), &[0], &EceParams::default()), Err(DiagnosticsError::NotProbabilities { row: 0, .. })));
        let p = array![[0.5, 0.5]];
        assert!(matches!(ece(p.view(), &[2], &EceParams::default()), Err(DiagnosticsError::LabelOutOfRange { label: 2, .. })));
        assert!(matches!(ece(p.view(), &[0, 1], &EceParams::default()), Err(DiagnosticsError::ShapeMismatch { .. })));
        let params = EceParams { n_bins: 0, ..Default::default() };
        assert!(matches!(ece(p.view(), &[0], &params), Err(DiagnosticsError::InvalidParameter { .. })));
        assert!(matches!(
            bootstrap_ci(p.view(), &[0], &EceParams::default(), EceKind::TopLabel, 0, 1),
            Err(DiagnosticsError::InvalidParameter { name: "replicates", .. })
        ));
    }

    #[test]
    fn equal_width_l1_ece_matches_the_metrics_module() {
        // Two implementations of the same estimator (the report's `ece` column and this
        // module) must agree exactly, bin edges included.
        let n = 997;
        let mut p = ndarray::Array2::<f64>::zeros((n, 3));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let a = ((i * 37) % 101) as f64 / 100.0;
            let b = (1.0 - a) * (((i * 13) % 7) as f64 / 7.0);
            p[[i, 0]] = a;
            p[[i, 1]] = b;
            p[[i, 2]] = 1.0 - a - b;
            y.push((i * 7) % 3);
        }
        for n_bins in [1, 10, 15] {
            let params = EceParams { n_bins, scheme: BinScheme::EqualWidth, norm: CalibrationNorm::L1 };
            let here = ece(p.view(), &y, &params).unwrap().value;
            let there = crate::metrics::ece(p.view(), &y, n_bins).unwrap();
            assert!((here - there).abs() < 1e-12, "{n_bins} bins: {here} vs {there}");
        }
    }
}
