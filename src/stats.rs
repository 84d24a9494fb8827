//! Honest summaries and paired tests.
//!
//! This module owns the statistics the workbench attaches to its numbers:
//! means with Student-t confidence intervals, paired t and Wilcoxon
//! signed-rank tests over matched runs (same seeds / splits), Holm–Bonferroni
//! correction across a family of claims, the verdict a corrected test supports,
//! Pearson and Spearman correlations with Fisher-z intervals, and ordinary
//! least-squares line fits with a t interval on the slope (rate slopes in
//! log–log plots).
//!
//! Conventions: every interval is two-sided at 95%; every p-value is
//! two-sided; inputs must be finite, and functions that can fail on user data
//! return [`StatsError`]. Where a quantity is undefined (too few points for an
//! interval) it is NaN and the doc says so; degenerate-but-defined cases (zero
//! spread) get explicit values instead of NaN.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;

/// Confidence level of every interval in this module.
pub const CONFIDENCE: f64 = 0.95;
/// Largest number of non-zero differences for which [`wilcoxon_signed_rank`]
/// enumerates the exact null distribution (2^25 sign patterns fit in a `u64`).
pub const WILCOXON_EXACT_MAX_N: usize = 25;

/// Errors raised on malformed input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// Two inputs that must have the same length do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Fewer observations than the procedure needs.
    #[error("{what} needs at least {needed} observations, got {got}")]
    TooFew {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what}[{index}] is not finite ({value})")]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
    /// A variable is constant, so a correlation or slope is undefined.
    #[error("{what} has zero variance")]
    ZeroVariance { what: &'static str },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Mean, spread and 95% interval of a sample; see [`summarize`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean (NaN when `n == 0`).
    pub mean: f64,
    /// Sample standard deviation with divisor `n − 1` (NaN when `n < 2`).
    pub sd: f64,
    /// Lower end of the two-sided 95% Student-t interval for the mean (NaN when `n < 2`).
    pub ci_low: f64,
    /// Upper end of that interval (NaN when `n < 2`).
    pub ci_high: f64,
}

/// Which paired test produced a [`PairedComparison`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedTest {
    /// Student's paired t test.
    PairedT,
    /// Wilcoxon signed-rank test.
    WilcoxonSignedRank,
    /// Pitman–Morgan test of equal variances of paired samples.
    PitmanMorgan,
    /// Pearson correlation (`mean_diff` holds r), t test of ρ = 0.
    Pearson,
}

impl PairedTest {
    /// Human-readable name: `"paired t"` or `"Wilcoxon signed-rank"`.
    pub fn name(self) -> &'static str {
        match self {
            PairedTest::PairedT => "paired t",
            PairedTest::WilcoxonSignedRank => "Wilcoxon signed-rank",
            PairedTest::PitmanMorgan => "Pitman–Morgan",
            PairedTest::Pearson => "Pearson correlation",
        }
    }
}

impl std::fmt::Display for PairedTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of a paired comparison of `a` against `b` (differences `a − b`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairedComparison {
    /// The test that produced `statistic` and `p_value`.
    pub test: PairedTest,
    /// Number of pairs (including zero differences).
    pub n: usize,
    /// Mean of `a − b` over all pairs.
    pub mean_diff: f64,
    /// Lower end of the 95% Student-t interval for the mean difference.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Test statistic: t for the paired t test, W⁺ for Wilcoxon.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Holm–Bonferroni decision for one hypothesis; see [`holm`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct HolmDecision {
    /// Holm-adjusted p-value, monotone in the raw p-values and at most 1.
    pub adjusted_p: f64,
    /// Whether the hypothesis is rejected at the family-wise level `alpha`.
    pub reject: bool,
}

/// What a corrected test says about a directional claim; see [`verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// Significant, in the predicted direction.
    Supported,
    /// Significant, in the opposite direction.
    Contradicted,
    /// Not significant (or no direction to judge).
    Inconclusive,
    /// Not judged: a condition the claim holds under was not shown, or a health check failed
    /// on the rows it compares.
    NotApplicable,
}

/// A correlation coefficient with its 95% interval and two-sided p-value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Correlation {
    /// Number of pairs.
    pub n: usize,
    /// Correlation coefficient in `[−1, 1]`.
    pub r: f64,
    /// Lower end of the 95% Fisher-z interval (NaN when `n <= 3`).
    pub ci_low: f64,
    /// Upper end of that interval (NaN when `n <= 3`).
    pub ci_high: f64,
    /// Two-sided p-value for `r = 0` from the t statistic with `n − 2` df.
    pub p_value: f64,
}

/// Ordinary least-squares line `y ≈ intercept + slope · x`; see [`linear_fit`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LineFit {
    /// Fitted slope.
    pub slope: f64,
    /// Fitted intercept.
    pub intercept: f64,
    /// Lower end of the 95% t interval on the slope (NaN when `n == 2`).
    pub slope_ci_low: f64,
    /// Upper end of that interval (NaN when `n == 2`).
    pub slope_ci_high: f64,
    /// Number of points.
    pub n: usize,
}

/// Quantile of Student's t distribution with `df` degrees of freedom:
/// the `t` with `P(T <= t) = prob`.
///
/// * `prob` in `(0, 1)`, `df > 0` (need not be an integer).
/// * Returns NaN for `df <= 0`, non-finite `df` or `prob` outside `(0, 1)`.
///   Example: `t_quantile(0.975, 9.0) ≈ 2.262`.
pub fn t_quantile(prob: f64, df: f64) -> f64 {
    // Written as a positive range check so that NaN fails it too.
    if !(prob > 0.0 && prob < 1.0 && df.is_finite()) {
        return f64::NAN;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(prob),
        Err(_) => f64::NAN,
    }
}

/// Two-sided p-value `P(|T| >= |t|)` for Student's t with `df` degrees of freedom.
///
/// Uses `I_{df/(df+t²)}(df/2, 1/2)` directly rather than `2 · (1 − cdf)`, so
/// small p-values keep their relative precision. Infinite `|t|` gives 0.
fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    beta_reg(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Standard-normal quantile for the two-sided 95% level (≈ 1.959964).
fn z_975() -> f64 {
    Normal::new(0.0, 1.0)
        .expect("standard normal parameters are valid")
        .inverse_cdf(0.5 + CONFIDENCE / 2.0)
}

/// Mean and sample standard deviation (two-pass, divisor `n − 1`).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

fn check_finite(what: &'static str, v: &[f64]) -> Result<()> {
    match v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        Some((index, &value)) => Err(StatsError::NonFinite { what, index, value }),
        None => Ok(()),
    }
}

fn check_same_len(what: &'static str, a: &[f64], b: &[f64]) -> Result<()> {
    if a.len() != b.len() {
        return Err(StatsError::ShapeMismatch {
            what,
            expected: a.len(),
            got: b.len(),
        });
    }
    Ok(())
}

fn check_at_least(what: &'static str, needed: usize, got: usize) -> Result<()> {
    if got < needed {
        return Err(StatsError::TooFew { what, needed, got });
    }
    Ok(())
}

/// Summarizes a sample: mean, sample standard deviation (divisor `n − 1`) and
/// the two-sided 95% Student-t interval `mean ± t_{0.975, n−1} · sd / √n`.
///
/// * Edge cases, chosen so that no interval is ever invented:
///   `n == 0` gives `n = 0` and NaN for every other field;
///   `n == 1` gives the value as the mean and NaN `sd`, `ci_low`, `ci_high`;
///   `n >= 2` with all values equal gives `sd = 0` and a zero-width interval.
/// * Never fails; a NaN or infinite input propagates into the mean and the
///   interval (callers wanting an error should check inputs first).
pub fn summarize(values: &[f64]) -> Summary {
    let n = values.len();
    if n == 0 {
        return Summary {
            n,
            mean: f64::NAN,
            sd: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        };
    }
    if n == 1 {
        return Summary {
            n,
            mean: values[0],
            sd: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        };
    }
    let (mean, sd) = mean_sd(values);
    let half = t_quantile(0.5 + CONFIDENCE / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt();
    Summary {
        n,
        mean,
        sd,
        ci_low: mean - half,
        ci_high: mean + half,
    }
}

/// Differences `a − b` after validating lengths and finiteness.
fn differences(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    check_same_len("paired samples", a, b)?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    Ok(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

/// Mean of `d` with its 95% t interval; `(mean, mean)` when all `d` are equal,
/// NaN bounds when `d.len() < 2`. Also returns whether all `d` were equal.
fn mean_diff_interval(d: &[f64]) -> (f64, f64, f64, bool) {
    let constant = d.iter().all(|&x| x == d[0]);
    if constant {
        // Exact: averaging identical floats could round away from d[0].
        let (lo, hi) = if d.len() >= 2 {
            (d[0], d[0])
        } else {
            (f64::NAN, f64::NAN)
        };
        return (d[0], lo, hi, true);
    }
    let s = summarize(d);
    (s.mean, s.ci_low, s.ci_high, false)
}

/// Student's paired t test of `mean(a − b) = 0`, two-sided.
///
/// * `a`, `b`: matched, finite observations of equal length `n >= 2`
///   (e.g. a metric for two methods on the same seeds).
/// * Returns `t = mean(d) / (sd(d)/√n)` with `n − 1` df, its two-sided
///   p-value, and the 95% t interval of the mean difference.
/// * When all differences are identical (`sd = 0`) no NaN is produced: the
///   interval is `(d, d)`; if `d = 0` then `t = 0` and `p = 1`, otherwise
///   `t = ±∞` and `p = 0`.
/// * Errors: length mismatch, non-finite value, fewer than 2 pairs.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<PairedComparison> {
    let d = differences(a, b)?;
    check_at_least("paired t test", 2, d.len())?;
    let n = d.len();
    let (mean, ci_low, ci_high, constant) = mean_diff_interval(&d);
    let (statistic, p_value) = if constant {
        if mean == 0.0 {
            (0.0, 1.0)
        } else {
            (f64::INFINITY.copysign(mean), 0.0)
        }
    } else {
        let (_, sd) = mean_sd(&d);
        let t = mean / (sd / (n as f64).sqrt());
        (t, t_two_sided_p(t, (n - 1) as f64))
    };
    Ok(PairedComparison {
        test: PairedTest::PairedT,
        n,
        mean_diff: mean,
        ci_low,
        ci_high,
        statistic,
        p_value,
    })
}

/// Average ranks (1-based) of `v`: tied values (exact float equality) share
/// the mean of the ranks they span. NaNs sort last under `total_cmp`; callers
/// here reject them beforehand.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let doubled = doubled_average_ranks(v);
    doubled.into_iter().map(|r| r as f64 / 2.0).collect()
}

/// Twice the average ranks, which are always integers: a tie group spanning
/// ranks `s+1 ..= e` has average `(s + 1 + e) / 2`.
fn doubled_average_ranks(v: &[f64]) -> Vec<u64> {
    let n = v.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0u64; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && v[order[end]] == v[order[start]] {
            end += 1;
        }
        let r2 = (start + 1 + end) as u64;
        for &i in &order[start..end] {
            ranks[i] = r2;
        }
        start = end;
    }
    ranks
}

/// Exact two-sided p-value of the signed-rank statistic on doubled ranks.
///
/// Under H0 each rank carries a + sign independently with probability 1/2,
/// so the number of sign patterns giving each doubled sum is counted by a
/// subset-sum dynamic programme. The null distribution is symmetric about
/// half the total, so `2 · min(lower tail, upper tail)` (capped at 1) equals
/// `P(|T − E T| >= |t − E T|)`.
fn wilcoxon_exact_p(doubled_ranks: &[u64], t_plus_doubled: u64) -> f64 {
    let total: u64 = doubled_ranks.iter().sum();
    let mut counts = vec![0u64; total as usize + 1];
    counts[0] = 1;
    let mut reach = 0usize;
    for &r in doubled_ranks {
        let r = r as usize;
        for s in (0..=reach).rev() {
            if counts[s] > 0 {
                counts[s + r] += counts[s];
            }
        }
        reach += r;
    }
    let patterns = (1u64 << doubled_ranks.len()) as f64;
    let t = t_plus_doubled as usize;
    let lower: u64 = counts[..=t].iter().sum();
    let upper: u64 = counts[t..].iter().sum();
    (2.0 * lower.min(upper) as f64 / patterns).min(1.0)
}

/// Wilcoxon signed-rank test of "the differences `a − b` are symmetric about
/// 0", two-sided.
///
/// * `a`, `b`: matched, finite observations of equal length `n >= 1`.
/// * Zero differences are dropped before ranking (Wilcoxon's original
///   method, `zero_method = "wilcox"`); the remaining `m` absolute differences
///   get average ranks for ties (exact float equality).
/// * `statistic` is W⁺, the sum of the (average) ranks of positive differences.
/// * `m <= 25`: exact p from the null distribution of W⁺ given the observed
///   tie pattern (ranks doubled to integers and enumerated by dynamic
///   programming). `m > 25`: normal approximation with mean `m(m+1)/4`,
///   variance `m(m+1)(2m+1)/24 − Σ(t³ − t)/48` over tie groups of size `t`,
///   and a continuity correction of 1/2 (as R's `wilcox.test` default).
/// * If every difference is zero, W⁺ = 0 and `p = 1`.
/// * `mean_diff`, `ci_low`, `ci_high` are NOT rank-based: they are the mean of
///   all `n` differences (zeros included) and its 95% Student-t interval, the
///   same as [`paired_t_test`] reports (NaN bounds when `n == 1`, `(d, d)` when
///   all differences equal `d`).
/// * Errors: length mismatch, non-finite value, no pairs.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> Result<PairedComparison> {
    let d = differences(a, b)?;
    check_at_least("Wilcoxon signed-rank test", 1, d.len())?;
    let n = d.len();
    let (mean_diff, ci_low, ci_high, _) = mean_diff_interval(&d);

    let nonzero: Vec<f64> = d.iter().copied().filter(|&x| x != 0.0).collect();
    let m = nonzero.len();
    let (statistic, p_value) = if m == 0 {
        (0.0, 1.0)
    } else {
        let abs: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
        let r2 = doubled_average_ranks(&abs);
        let w2: u64 = r2
            .iter()
            .zip(&nonzero)
            .filter(|(_, &x)| x > 0.0)
            .map(|(&r, _)| r)
            .sum();
        let w_plus = w2 as f64 / 2.0;
        let p = if m <= WILCOXON_EXACT_MAX_N {
            wilcoxon_exact_p(&r2, w2)
        } else {
            let mf = m as f64;
            let mean = mf * (mf + 1.0) / 4.0;
            let tie_term: f64 = tie_group_sizes(&abs)
                .into_iter()
                .map(|t| {
                    let t = t as f64;
                    t * t * t - t
                })
                .sum();
            let var = mf * (mf + 1.0) * (2.0 * mf + 1.0) / 24.0 - tie_term / 48.0;
            let z = ((w_plus - mean).abs() - 0.5).max(0.0) / var.sqrt();
            erfc(z / std::f64::consts::SQRT_2).min(1.0)
        };
        (w_plus, p)
    };
    Ok(PairedComparison {
        test: PairedTest::WilcoxonSignedRank,
        n,
        mean_diff,
        ci_low,
        ci_high,
        statistic,
        p_value,
    })
}

/// Hodges–Lehmann estimate of a centre; see [`hodges_lehmann`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct HodgesLehmann {
    /// Median of the Walsh averages (d_i + d_j) / 2, i <= j.
    pub estimate: f64,
    /// Lower end of the 95% interval from the signed-rank distribution (NaN when `n` is too
    /// small for any interval to reach 95%: `n < 6`).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
}

/// Hodges–Lehmann estimate of the centre of `d` (the effect the signed-rank test estimates)
/// with the interval `[A_(k), A_(N+1−k)]` of the sorted Walsh averages, where `k` is the
/// largest count with `P(W⁺ < k) <= 0.025` under the null: exact for `n <= 25` (untied
/// ranks), the normal approximation above. Empty input gives NaN.
pub fn hodges_lehmann(d: &[f64]) -> HodgesLehmann {
    let n = d.len();
    let nan = HodgesLehmann { estimate: f64::NAN, ci_low: f64::NAN, ci_high: f64::NAN };
    if n == 0 || d.iter().any(|x| !x.is_finite()) {
        return nan;
    }
    let mut walsh: Vec<f64> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).map(|(i, j)| (d[i] + d[j]) / 2.0).collect();
    walsh.sort_by(f64::total_cmp);
    let total = walsh.len();
    let estimate = if total % 2 == 1 { walsh[total / 2] } else { (walsh[total / 2 - 1] + walsh[total / 2]) / 2.0 };
    let k = signed_rank_lower_count(n, (1.0 - CONFIDENCE) / 2.0);
    if k == 0 {
        return HodgesLehmann { estimate, ..nan };
    }
    HodgesLehmann { estimate, ci_low: walsh[k - 1], ci_high: walsh[total - k] }
}

/// The largest `k` with `P(W⁺ <= k − 1) <= tail` for the signed-rank statistic of `n` untied
/// values (0 when even `P(W⁺ = 0)` exceeds `tail`).
fn signed_rank_lower_count(n: usize, tail: f64) -> usize {
    if n > WILCOXON_EXACT_MAX_N {
        let nf = n as f64;
        let sd = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0).sqrt();
        let z = Normal::new(0.0, 1.0).expect("standard normal parameters are valid").inverse_cdf(1.0 - tail);
        return (nf * (nf + 1.0) / 4.0 - z * sd).floor().max(0.0) as usize;
    }
    let max = n * (n + 1) / 2;
    let mut counts = vec![0u64; max + 1];
    counts[0] = 1;
    for r in 1..=n {
        for s in (0..=max - r).rev() {
            counts[s + r] += counts[s];
        }
    }
    let patterns = (1u64 << n) as f64;
    let mut cumulative = 0u64;
    let mut k = 0;
    for (w, &c) in counts.iter().enumerate() {
        cumulative += c;
        if cumulative as f64 / patterns > tail {
            break;
        }
        k = w + 1;
    }
    k
}

/// Sizes of groups of exactly equal values (singletons included).
fn tie_group_sizes(v: &[f64]) -> Vec<usize> {
    let mut s = v.to_vec();
    s.sort_by(|x, y| x.total_cmp(y));
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = start + 1;
        while end < s.len() && s[end] == s[start] {
            end += 1;
        }
        sizes.push(end - start);
        start = end;
    }
    sizes
}

/// Holm–Bonferroni step-down correction of `m` p-values at family-wise level
/// `alpha`.
///
/// * With the p-values sorted ascending, `p_(1) <= … <= p_(m)`, the adjusted
///   value is `max_{j <= i} min(1, (m − j + 1) · p_(j))`: monotone in the raw
///   p-values and capped at 1. Equal p-values keep their input order.
/// * `reject` is `adjusted_p <= alpha`, which is exactly the step-down rule
///   (reject while `p_(i) <= alpha / (m − i + 1)`, stop at the first failure).
/// * Results are returned in the input order. An empty input gives an empty
///   vector.
/// * Never fails, and stays conservative on bad input: a NaN p-value is
///   ranked as 1 (it still counts toward `m`), reports a NaN adjusted p and is
///   never rejected; values outside `[0, 1]` are clamped into it; a NaN
///   `alpha` rejects nothing.
pub fn holm(p_values: &[f64], alpha: f64) -> Vec<HolmDecision> {
    let m = p_values.len();
    // NaN becomes 1 so it can never lift an adjusted value below it into rejection.
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..m).collect();
    // Stable sort: ties keep input order, so results are reproducible.
    order.sort_by(|&i, &j| clean[i].total_cmp(&clean[j]));
    let mut out = vec![
        HolmDecision {
            adjusted_p: f64::NAN,
            reject: false,
        };
        m
    ];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adj = ((m - rank) as f64 * clean[i]).min(1.0);
        running_max = running_max.max(adj);
        out[i] = if p_values[i].is_nan() {
            HolmDecision {
                adjusted_p: f64::NAN,
                reject: false,
            }
        } else {
            HolmDecision {
                adjusted_p: running_max,
                reject: running_max <= alpha,
            }
        };
    }
    out
}

/// Verdict on a directional claim after a (corrected) test.
///
/// * `mean_diff`: observed effect (e.g. mean of `a − b`).
/// * `expected_sign`: the predicted direction, `+1` for "higher" and `−1`
///   for "lower" (only the sign of a non-zero value is used).
/// * `reject`: whether the null hypothesis was rejected.
/// * Returns `Supported` when rejected and `mean_diff` has the predicted sign,
///   `Contradicted` when rejected with the opposite sign, and `Inconclusive`
///   when not rejected, or when `mean_diff` or `expected_sign` is zero or NaN
///   (no direction to judge).
pub fn verdict(mean_diff: f64, expected_sign: f64, reject: bool) -> Verdict {
    // `f64::signum` maps 0.0 to 1.0, so compare against 0 explicitly.
    let dir = |x: f64| {
        if x > 0.0 {
            1
        } else if x < 0.0 {
            -1
        } else {
            0
        }
    };
    let (observed, expected) = (dir(mean_diff), dir(expected_sign));
    if !reject || observed == 0 || expected == 0 {
        Verdict::Inconclusive
    } else if observed == expected {
        Verdict::Supported
    } else {
        Verdict::Contradicted
    }
}

/// Validated paired inputs for correlations and fits.
fn check_xy(what: &'static str, x: &[f64], y: &[f64], needed: usize) -> Result<()> {
    check_same_len("x vs. y", x, y)?;
    check_finite("x", x)?;
    check_finite("y", y)?;
    check_at_least(what, needed, x.len())
}

/// Centered sums of squares and cross-products `(Sxx, Syy, Sxy)` and means.
fn centered_sums(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    (sxx, syy, sxy, mx, my)
}

/// Correlation with its p-value and a Fisher-z interval whose standard error
/// is `se_scale / √(n − 3)`.
fn correlation_from(x: &[f64], y: &[f64], se_scale: f64) -> Result<Correlation> {
    let n = x.len();
    let (sxx, syy, sxy, _, _) = centered_sums(x, y);
    if sxx == 0.0 {
        return Err(StatsError::ZeroVariance { what: "x" });
    }
    if syy == 0.0 {
        return Err(StatsError::ZeroVariance { what: "y" });
    }
    // Rounding can push |r| a hair above 1.
    let r = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let df = (n - 2) as f64;
    // t = r √(df / (1 − r²)) gives df/(df + t²) = 1 − r², so p = I_{1−r²}(df/2, 1/2).
    let p_value = beta_reg(df / 2.0, 0.5, 1.0 - r * r).clamp(0.0, 1.0);
    let (ci_low, ci_high) = if n > 3 {
        let z = r.atanh();
        let half = z_975() * se_scale / ((n - 3) as f64).sqrt();
        ((z - half).tanh(), (z + half).tanh())
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(Correlation {
        n,
        r,
        ci_low,
        ci_high,
        p_value,
    })
}

/// Pitman–Morgan test of Var(a) = Var(b) for paired samples: with s = a + b and d = a − b,
/// Cov(s, d) = Var(a) − Var(b), so the test is Pearson's test of corr(s, d) = 0 with
/// `n − 2 − groups_removed` degrees of freedom (`groups_removed` counts group means already
/// subtracted from `a` and `b` beyond the first, e.g. one per extra cell).
///
/// Returns a [`PairedComparison`] whose `mean_diff` is the variance difference
/// Var(a) − Var(b) (sample variances, n − 1), `statistic` the t of corr(s, d), a NaN interval,
/// and the two-sided p-value.
pub fn pitman_morgan(a: &[f64], b: &[f64], groups_removed: usize) -> Result<PairedComparison> {
    check_xy("Pitman–Morgan test", a, b, 3 + groups_removed)?;
    let s: Vec<f64> = a.iter().zip(b).map(|(x, y)| x + y).collect();
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (sss, sdd, ssd, _, _) = centered_sums(&s, &d);
    let n = a.len();
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    let var_diff = var(a) - var(b);
    if sss == 0.0 || sdd == 0.0 {
        return Err(StatsError::ZeroVariance { what: "a + b or a − b" });
    }
    let r = (ssd / (sss * sdd).sqrt()).clamp(-1.0, 1.0);
    let df = (n - 2 - groups_removed) as f64;
    let t = if r.abs() < 1.0 { r * (df / (1.0 - r * r)).sqrt() } else { r.signum() * f64::INFINITY };
    Ok(PairedComparison {
        test: PairedTest::PitmanMorgan,
        n,
        mean_diff: var_diff,
        ci_low: f64::NAN,
        ci_high: f64::NAN,
        statistic: t,
        p_value: t_two_sided_p(t, df),
    })
}

/// Pearson product-moment correlation of paired samples `x`, `y`.
///
/// * `x`, `y`: finite, equal length `n >= 3`, neither constant.
/// * `p_value`: two-sided test of `ρ = 0` with `t = r√((n−2)/(1−r²))`, `n − 2` df
///   (exact under bivariate normality); `|r| = 1` gives `p = 0`.
/// * Interval: Fisher z, `tanh(atanh r ± 1.96/√(n − 3))`; NaN bounds when
///   `n <= 3`; `(±1, ±1)` when `|r| = 1`.
/// * Errors: length mismatch, non-finite value, `n < 3`, zero variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_xy("Pearson correlation", x, y, 3)?;
    correlation_from(x, y, 1.0)
}

/// Spearman rank correlation: Pearson's r on the average ranks of `x` and `y`
/// (ties share the mean of their ranks).
///
/// * `x`, `y`: finite, equal length `n >= 3`, neither constant.
/// * `p_value`: the same t approximation with `n − 2` df as [`pearson`],
///   applied to the rank correlation (not an exact permutation p).
/// * Interval: Fisher z with the Fieller–Hartley–Pearson standard error
///   `1.06/√(n − 3)`, i.e. `tanh(atanh r_s ± 1.96 · 1.06/√(n − 3))`; NaN
///   bounds when `n <= 3`.
/// * Invariant under strictly increasing transforms of either variable.
/// * Errors: length mismatch, non-finite value, `n < 3`, zero variance.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_xy("Spearman correlation", x, y, 3)?;
    correlation_from(&average_ranks(x), &average_ranks(y), 1.06)
}

/// Ordinary least-squares fit of `y ≈ intercept + slope · x` with a two-sided
/// 95% t interval on the slope (`n − 2` df, homoscedastic normal errors).
///
/// * `x`, `y`: finite, equal length `n >= 2`, `x` not constant. For rate
///   slopes in log–log plots pass `ln` (or `log10`) of both axes; the slope is
///   then the exponent, whatever the base.
/// * `slope_se = √(SSR / (n − 2) / Sxx)`; interval `slope ± t_{0.975, n−2} · slope_se`.
///   With `n == 2` the line is exact but the interval is undefined (NaN);
///   points exactly on a line give a (near) zero-width interval.
/// * Errors: length mismatch, non-finite value, `n < 2`, zero variance in `x`.
pub fn linear_fit(x: &[f64], y: &[f64]) -> Result<LineFit> {
    check_xy("linear fit", x, y, 2)?;
    let n = x.len();
    let (sxx, _, sxy, mx, my) = centered_sums(x, y);
    if sxx == 0.0 {
        return Err(StatsError::ZeroVariance { what: "x" });
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let (slope_ci_low, slope_ci_high) = if n > 2 {
        let ssr: f64 = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| {
                let e = b - (intercept + slope * a);
                e * e
            })
            .sum();
        let df = (n - 2) as f64;
        let se = (ssr / df / sxx).sqrt();
        let half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se;
        (slope - half, slope + half)
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(LineFit {
        slope,
        intercept,
        slope_ci_low,
        slope_ci_high,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_and_p_values() {
        // Table values: t_{0.975, 9} = 2.262157, t_{0.975, 1} = 12.706205, t_{0.975, 30} = 2.042272.
        assert!(close(t_quantile(0.975, 9.0), 2.262_157_163, 1e-6));
        assert!(close(t_quantile(0.975, 1.0), 12.706_204_736, 1e-6));
        assert!(close(t_quantile(0.975, 30.0), 2.042_272_456, 1e-6));
        assert!(close(t_quantile(0.025, 9.0), -2.262_157_163, 1e-6));
        assert!(t_quantile(0.975, 0.0).is_nan());
        assert!(t_quantile(1.0, 5.0).is_nan());
        // Two-sided p for t = 2.5, df = 9: 0.0338618 (scipy.stats.t.sf · 2).
        assert!(close(t_two_sided_p(2.5, 9.0), 0.033_861_83, 1e-8));
        assert!(close(t_two_sided_p(-2.5, 9.0), 0.033_861_83, 1e-8));
        // p at the critical value is 0.05.
        assert!(close(t_two_sided_p(2.262_157_163, 9.0), 0.05, 1e-8));
        assert_eq!(t_two_sided_p(0.0, 9.0), 1.0);
        assert_eq!(t_two_sided_p(f64::INFINITY, 9.0), 0.0);
    }

    #[test]
    fn summarize_cases() {
        // 1..=10: mean 5.5, sd √(82.5/9) = 3.0276504, half-width 2.262157 · sd / √10 = 2.1658506.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&v);
        assert_eq!(s.n, 10);
        assert!(close(s.mean, 5.5, 1e-12));
        assert!(close(s.sd, (82.5f64 / 9.0).sqrt(), 1e-12));
        assert!(close(s.ci_low, 5.5 - 2.165_850_6, 1e-6));
        assert!(close(s.ci_high, 5.5 + 2.165_850_6, 1e-6));

        let one = summarize(&[3.0]);
        assert_eq!(one.n, 1);
        assert_eq!(one.mean, 3.0);
        assert!(one.sd.is_nan() && one.ci_low.is_nan() && one.ci_high.is_nan());

        let none = summarize(&[]);
        assert_eq!(none.n, 0);
        assert!(none.mean.is_nan() && none.ci_high.is_nan());

        let flat = summarize(&[2.0, 2.0, 2.0]);
        assert_eq!((flat.sd, flat.ci_low, flat.ci_high), (0.0, 2.0, 2.0));
    }

    #[test]
    fn paired_t_hand_example() {
        // d = a − b = [1, 2, 3, 4]: mean 2.5, sd √(5/3) = 1.2909944,
        // t = 2.5 / (1.2909944 / 2) = 3.8729833 with 3 df;
        // scipy.stats.ttest_rel gives p = 0.030466.
        // Interval: 2.5 ± 3.1824463 · 0.6454972 = [0.445739, 4.554261].
        let a = [11.0, 12.0, 13.0, 14.0];
        let b = [10.0, 10.0, 10.0, 10.0];
        let r = paired_t_test(&a, &b).unwrap();
        assert_eq!(r.test, PairedTest::PairedT);
        assert_eq!(r.test.to_string(), "paired t");
        assert_eq!(r.n, 4);
        assert!(close(r.mean_diff, 2.5, 1e-12));
        assert!(close(r.statistic, 15f64.sqrt(), 1e-12));
        assert!(close(r.p_value, 0.030_466_3, 1e-6));
        assert!(close(r.ci_low, 0.445_739, 1e-5));
        assert!(close(r.ci_high, 4.554_261, 1e-5));

        // Ten pairs built so that t = 2.5 exactly with 9 df:
        // d = m + s·z with z = ±1 alternating gives mean m and sd s·√(10/9);
        // choose s = 1, m = 2.5 · √(10/9) / √10 = 2.5/3.
        let d: Vec<f64> = (0..10)
            .map(|i| 2.5 / 3.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let zeros = [0.0; 10];
        let r = paired_t_test(&d, &zeros).unwrap();
        assert!(close(r.statistic, 2.5, 1e-12));
        assert!(close(r.p_value, 0.033_861_83, 1e-8));
    }

    #[test]
    fn paired_t_degenerate_and_errors() {
        let same = paired_t_test(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        assert_eq!((same.ci_low, same.ci_high), (0.0, 0.0));
        let shifted = paired_t_test(&[1.5, 2.5, 3.5], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(shifted.p_value, 0.0);
        assert_eq!(shifted.statistic, f64::INFINITY);
        assert_eq!(shifted.mean_diff, 0.5);
        let down = paired_t_test(&[0.0, 1.0], &[1.0, 2.0]).unwrap();
        assert_eq!(down.statistic, f64::NEG_INFINITY);

        assert_eq!(
            paired_t_test(&[1.0], &[2.0]),
            Err(StatsError::TooFew {
                what: "paired t test",
                needed: 2,
                got: 1
            })
        );
        assert!(matches!(
            paired_t_test(&[1.0, 2.0], &[1.0]),
            Err(StatsError::ShapeMismatch {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            paired_t_test(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(StatsError::NonFinite {
                what: "a",
                index: 1,
                ..
            })
        ));
    }

    /// Brute-force two-sided exact p by enumerating all 2^m sign patterns.
    fn brute_force_p(doubled: &[u64], w2: u64) -> f64 {
        let m = doubled.len();
        let total: u64 = doubled.iter().sum();
        let centre = total as f64 / 2.0;
        let obs = (w2 as f64 - centre).abs();
        let mut hits = 0u64;
        for mask in 0u64..(1 << m) {
            let s: u64 = (0..m)
                .filter(|&i| mask >> i & 1 == 1)
                .map(|i| doubled[i])
                .sum();
            if (s as f64 - centre).abs() >= obs - 1e-9 {
                hits += 1;
            }
        }
        hits as f64 / (1u64 << m) as f64
    }

    #[test]
    fn wilcoxon_exact_small_examples() {
        // n = 5, all differences positive: W⁺ = 15, p = 2/32.
        let r = wilcoxon_signed_rank(&[2.0, 3.0, 4.0, 5.0, 6.0], &[1.0; 5]).unwrap();
        assert_eq!(r.test, PairedTest::WilcoxonSignedRank);
        assert_eq!(r.statistic, 15.0);
        assert_eq!(r.p_value, 0.0625);

        // d = [1, −2, 3, 4, 5, 6]: W⁺ = 21 − 2 = 19; P(W⁺ >= 19) = 3/64 (sign
        // patterns whose negative ranks sum to <= 2: {}, {1}, {2}), so
        // p = 6/64 = 0.09375 (scipy.stats.wilcoxon, method="exact", agrees).
        let a = [1.0, -2.0, 3.0, 4.0, 5.0, 6.0];
        let r = wilcoxon_signed_rank(&a, &[0.0; 6]).unwrap();
        assert_eq!(r.statistic, 19.0);
        assert!(close(r.p_value, 0.093_75, 1e-15));

        // Zeros are dropped: same answer with two zero differences added, while
        // n and the mean difference still count them.
        let a0 = [1.0, -2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0];
        let r0 = wilcoxon_signed_rank(&a0, &[0.0; 8]).unwrap();
        assert_eq!(r0.statistic, 19.0);
        assert!(close(r0.p_value, 0.093_75, 1e-15));
        assert_eq!(r0.n, 8);
        assert!(close(r0.mean_diff, 17.0 / 8.0, 1e-15));

        // All differences zero: p = 1.
        let z = wilcoxon_signed_rank(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!((z.statistic, z.p_value), (0.0, 1.0));
        // A single non-zero pair: p = 1, interval undefined.
        let one = wilcoxon_signed_rank(&[1.0], &[0.0]).unwrap();
        assert_eq!(one.p_value, 1.0);
        assert!(one.ci_low.is_nan());
    }

    #[test]
    fn wilcoxon_exact_with_ties_matches_brute_force() {
        // |d| = [1, 1, 2, 3, 3, 3, 4]: average ranks 1.5, 1.5, 3, 5, 5, 5, 7.
        let d = [1.0, -1.0, 2.0, 3.0, -3.0, 3.0, 4.0];
        let r = wilcoxon_signed_rank(&d, &[0.0; 7]).unwrap();
        // W⁺ = 1.5 + 3 + 5 + 5 + 7 = 21.5
        assert_eq!(r.statistic, 21.5);
        let doubled = doubled_average_ranks(&d.map(f64::abs));
        assert_eq!(doubled, vec![3, 3, 6, 10, 10, 10, 14]);
        let expected = brute_force_p(&doubled, 43);
        assert!(close(r.p_value, expected, 1e-15));
        // Many patterns across sizes and tie structures.
        for m in 1..=12u64 {
            let d: Vec<f64> = (0..m)
                .map(|i| {
                    let mag = ((i * 7) % 5 + 1) as f64;
                    if (i * 3) % 4 == 0 {
                        -mag
                    } else {
                        mag
                    }
                })
                .collect();
            let abs: Vec<f64> = d.iter().map(|x| x.abs()).collect();
            let doubled = doubled_average_ranks(&abs);
            let w2: u64 = doubled
                .iter()
                .zip(&d)
                .filter(|(_, &x)| x > 0.0)
                .map(|(&r, _)| r)
                .sum();
            let r = wilcoxon_signed_rank(&d, &vec![0.0; d.len()]).unwrap();
            assert!(
                close(r.p_value, brute_force_p(&doubled, w2), 1e-12),
                "m = {m}"
            );
        }
    }

    #[test]
    fn wilcoxon_normal_approximation() {
        // 30 differences 1..=30, one negative (−3): W⁺ = 465 − 3 = 462.
        // μ = 232.5, σ² = 30·31·61/24 = 2363.75, z = (229.5 − 0.5)/48.6184 = 4.7101;
        // scipy.stats.wilcoxon(d, correction=True, method="approx"): p = 2.47535e-06.
        let d: Vec<f64> = (1..=30)
            .map(|i| if i == 3 { -3.0 } else { i as f64 })
            .collect();
        let r = wilcoxon_signed_rank(&d, &[0.0; 30]).unwrap();
        assert_eq!(r.statistic, 462.0);
        assert!(close(r.p_value, P_APPROX_30, 1e-9 + 1e-6 * P_APPROX_30));

        // Ties in the approximation: 26 differences with |d| in {1, 2},
        // 13 each, 18 positive. The tie term is 2 · (13³ − 13)/48 = 91.
        let d: Vec<f64> = (0..26)
            .map(|i| {
                let mag = if i % 2 == 0 { 1.0 } else { 2.0 };
                if i < 18 {
                    mag
                } else {
                    -mag
                }
            })
            .collect();
        let r = wilcoxon_signed_rank(&d, &[0.0; 26]).unwrap();
        assert!(close(r.p_value, P_APPROX_TIES, 1e-9));

        // Just past the switch the approximation is close to the exact value.
        let d: Vec<f64> = (1..=26)
            .map(|i| if i % 3 == 0 { -(i as f64) } else { i as f64 })
            .collect();
        let abs: Vec<f64> = d.iter().map(|x| x.abs()).collect();
        let doubled = doubled_average_ranks(&abs);
        let w2: u64 = doubled
            .iter()
            .zip(&d)
            .filter(|(_, &x)| x > 0.0)
            .map(|(&r, _)| r)
            .sum();
        let exact = wilcoxon_exact_p(&doubled, w2);
        let approx = wilcoxon_signed_rank(&d, &[0.0; 26]).unwrap().p_value;
        assert!(
            close(exact, approx, 0.005),
            "exact {exact} vs approx {approx}"
        );
    }

    // Reference values from scipy.stats.wilcoxon (zero_method="wilcox",
    // correction=True, method="approx").
    const P_APPROX_30: f64 = 2.475_348_933_388_892_5e-6;
    const P_APPROX_TIES: f64 = 0.079_444_097_506_851_89;
    // scipy.stats.pearsonr: r, p, Fisher-z 95% interval.
    const PEARSON_REF: [f64; 4] = [
        0.884_889_259_215_023_9,
        0.003_491_557_488_627_220_4,
        0.478_735_353_940_097_86,
        0.979_061_217_195_166_3,
    ];
    // scipy.stats.spearmanr: p of the untied example; r and p of the tied one.
    const SPEARMAN_REF: [f64; 3] = [
        0.003_850_320_463_732_400_5,
        0.900_777_510_540_147_7,
        0.002_264_009_064_674_261_6,
    ];
    // scipy.stats.linregress: slope, intercept, slope ± t_{0.975, 3} · stderr.
    const LINFIT_REF: [f64; 4] = [
        1.04,
        -0.04,
        0.845_549_318_812_059_7,
        1.234_450_681_187_939_9,
    ];

    #[test]
    fn holm_example() {
        let d = holm(&[0.01, 0.04, 0.03], 0.05);
        let adj: Vec<f64> = d.iter().map(|x| x.adjusted_p).collect();
        // Sorted: 3 · 0.01 = 0.03, 2 · 0.03 = 0.06, max(0.06, 1 · 0.04) = 0.06.
        assert!(close(adj[0], 0.03, 1e-15));
        assert!(close(adj[1], 0.06, 1e-15));
        assert!(close(adj[2], 0.06, 1e-15));
        assert_eq!(
            d.iter().map(|x| x.reject).collect::<Vec<_>>(),
            [true, false, false]
        );

        // Capped at 1 and monotone.
        let d = holm(&[0.5, 0.9, 0.001, 0.6], 0.05);
        let adj: Vec<f64> = d.iter().map(|x| x.adjusted_p).collect();
        assert!(close(adj[2], 0.004, 1e-15));
        assert_eq!(adj[0], 1.0); // 3 · 0.5 capped
        assert_eq!(adj[3], 1.0);
        assert_eq!(adj[1], 1.0);
        assert!(holm(&[], 0.05).is_empty());
        // Ties keep input order and share the adjusted value.
        let d = holm(&[0.02, 0.02], 0.05);
        assert!(close(d[0].adjusted_p, 0.04, 1e-15) && close(d[1].adjusted_p, 0.04, 1e-15));
        assert!(d[0].reject && d[1].reject);
        // A NaN counts toward m, is never rejected, and does not help others.
        let d = holm(&[0.01, f64::NAN], 0.05);
        assert!(close(d[0].adjusted_p, 0.02, 1e-15) && d[0].reject);
        assert!(d[1].adjusted_p.is_nan() && !d[1].reject);
        let d = holm(&[0.001], f64::NAN);
        assert!(!d[0].reject);
    }

    #[test]
    fn hodges_lehmann_known_answer() {
        // Walsh averages of these 7 values (28 of them, computed by hand in Python): median 1.55.
        // n = 7: P(W⁺ <= 2) = 3/128 <= 0.025 < P(W⁺ <= 3) = 5/128, so k = 3 and the interval is
        // the 3rd smallest and 3rd largest average, 0.2 and 3.0.
        let hl = hodges_lehmann(&[1.0, 2.0, -0.5, 3.0, 4.0, 0.2, 1.5]);
        assert!((hl.estimate - 1.55).abs() < 1e-12, "{hl:?}");
        assert!((hl.ci_low - 0.2).abs() < 1e-12 && (hl.ci_high - 3.0).abs() < 1e-12, "{hl:?}");
        // Below 6 values no interval reaches 95%.
        assert!(hodges_lehmann(&[1.0, 2.0, 3.0, 4.0, 5.0]).ci_low.is_nan());
        assert!(hodges_lehmann(&[]).estimate.is_nan());
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(-0.3, -1.0, true), Verdict::Supported);
        assert_eq!(verdict(0.3, 1.0, true), Verdict::Supported);
        assert_eq!(verdict(0.3, -1.0, true), Verdict::Contradicted);
        assert_eq!(verdict(-0.3, 1.0, true), Verdict::Contradicted);
        assert_eq!(verdict(0.3, 1.0, false), Verdict::Inconclusive);
        assert_eq!(verdict(0.0, 1.0, true), Verdict::Inconclusive);
        assert_eq!(verdict(f64::NAN, 1.0, true), Verdict::Inconclusive);
        assert_eq!(verdict(0.3, 0.0, true), Verdict::Inconclusive);
    }

    #[test]
    fn pearson_cases() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v - 2.0).collect();
        let c = pearson(&x, &y).unwrap();
        assert!(close(c.r, 1.0, 1e-12));
        assert_eq!(c.p_value, 0.0);
        assert!(close(c.ci_low, 1.0, 1e-12) && close(c.ci_high, 1.0, 1e-12));
        let neg: Vec<f64> = y.iter().map(|v| -v).collect();
        assert!(close(pearson(&x, &neg).unwrap().r, -1.0, 1e-12));

        // Reference (scipy.stats.pearsonr, Fisher-z interval).
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = [2.0, 1.0, 4.0, 3.0, 7.0, 5.0, 6.0, 9.0];
        let c = pearson(&x, &y).unwrap();
        assert!(close(c.r, PEARSON_REF[0], 1e-12));
        assert!(close(c.p_value, PEARSON_REF[1], 1e-9));
        assert!(close(c.ci_low, PEARSON_REF[2], 1e-6));
        assert!(close(c.ci_high, PEARSON_REF[3], 1e-6));

        // n = 3: defined r and p, no interval.
        let c = pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
        assert!(close(c.r, 0.5, 1e-12));
        assert!(c.ci_low.is_nan());
        // p for r = 0.5, n = 3: t = 0.5·√(1/0.75), df 1: p = 1 − (2/π)·atan(1/√3) = 2/3.
        assert!(close(c.p_value, 2.0 / 3.0, 1e-12));

        assert_eq!(
            pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
            Err(StatsError::ZeroVariance { what: "x" })
        );
        assert!(matches!(
            pearson(&[1.0, 2.0], &[1.0, 2.0]),
            Err(StatsError::TooFew {
                needed: 3,
                got: 2,
                ..
            })
        ));
    }

    #[test]
    fn spearman_cases() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = [2.0, 1.0, 4.0, 3.0, 7.0, 5.0, 6.0, 9.0];
        let c = spearman(&x, &y).unwrap();
        // Ranks of y: [2, 1, 4, 3, 7, 5, 6, 8]; Σd² = 1+1+1+1+4+1+1+0 = 10,
        // r_s = 1 − 6·10/(8·63) = 0.880952...
        assert!(close(c.r, 1.0 - 60.0 / 504.0, 1e-12));
        assert!(close(c.p_value, SPEARMAN_REF[0], 1e-9));
        let z = c.r.atanh();
        let half = 1.959_963_985 * 1.06 / 5f64.sqrt();
        assert!(close(c.ci_low, (z - half).tanh(), 1e-8));
        assert!(close(c.ci_high, (z + half).tanh(), 1e-8));

        // Invariance to strictly increasing transforms.
        let tx: Vec<f64> = x.iter().map(|v| v.exp()).collect();
        let ty: Vec<f64> = y.iter().map(|v| v * v * v + 10.0).collect();
        let t = spearman(&tx, &ty).unwrap();
        assert_eq!(t, c);

        // Ties use average ranks: scipy.stats.spearmanr reference.
        let xt = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0];
        let yt = [1.0, 3.0, 2.0, 2.0, 5.0, 4.0, 6.0, 6.0];
        let c = spearman(&xt, &yt).unwrap();
        assert!(close(c.r, SPEARMAN_REF[1], 1e-12));
        assert!(close(c.p_value, SPEARMAN_REF[2], 1e-9));
        assert_eq!(
            average_ranks(&xt),
            vec![1.0, 2.5, 2.5, 4.0, 6.0, 6.0, 6.0, 8.0]
        );
    }

    #[test]
    fn linear_fit_cases() {
        // Exact line: slope and intercept recovered, zero-width interval.
        let x: Vec<f64> = (1..=6).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| -0.5 * v + 2.0).collect();
        let f = linear_fit(&x, &y).unwrap();
        assert!(close(f.slope, -0.5, 1e-12));
        assert!(close(f.intercept, 2.0, 1e-12));
        assert!(close(f.slope_ci_low, -0.5, 1e-9) && close(f.slope_ci_high, -0.5, 1e-9));
        assert_eq!(f.n, 6);

        // Log–log rate: error = 3 · n^(−1/2) gives slope −1/2 in log space.
        let sizes = [100.0f64, 1000.0, 10_000.0, 100_000.0];
        let lx: Vec<f64> = sizes.iter().map(|s| s.ln()).collect();
        let ly: Vec<f64> = sizes.iter().map(|s| (3.0 * s.powf(-0.5)).ln()).collect();
        let f = linear_fit(&lx, &ly).unwrap();
        assert!(close(f.slope, -0.5, 1e-12));
        assert!(close(f.intercept, 3f64.ln(), 1e-10));

        // Noisy data against scipy.stats.linregress: slope ± t_{0.975, 3} · stderr.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.1, 1.9, 3.2, 3.9, 5.3];
        let f = linear_fit(&x, &y).unwrap();
        assert!(close(f.slope, LINFIT_REF[0], 1e-12));
        assert!(close(f.intercept, LINFIT_REF[1], 1e-12));
        assert!(close(f.slope_ci_low, LINFIT_REF[2], 1e-8));
        assert!(close(f.slope_ci_high, LINFIT_REF[3], 1e-8));

        // Two points: exact line, no interval.
        let f = linear_fit(&[0.0, 2.0], &[1.0, 5.0]).unwrap();
        assert_eq!((f.slope, f.intercept), (2.0, 1.0));
        assert!(f.slope_ci_low.is_nan());

        assert_eq!(
            linear_fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
            Err(StatsError::ZeroVariance { what: "x" })
        );
        assert!(matches!(
            linear_fit(&[1.0, 2.0, f64::INFINITY], &[1.0, 2.0, 3.0]),
            Err(StatsError::NonFinite {
                what: "x",
                index: 2,
                ..
            })
        ));
    }

    #[test]
    fn serde_shapes() {
        // Every reported type implements serde's traits, so reports can embed them.
        fn assert_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        assert_serde::<Summary>();
        assert_serde::<PairedComparison>();
        assert_serde::<Correlation>();
        assert_serde::<LineFit>();
        assert_serde::<HolmDecision>();
        assert_serde::<Verdict>();
        assert_eq!(
            PairedTest::WilcoxonSignedRank.to_string(),
            "Wilcoxon signed-rank"
        );
    }

    #[test]
    fn pitman_morgan_detects_unequal_paired_variances() {
        // b = a/2 + small noise: Var(a) ≈ 4·Var(b), with a and b strongly correlated.
        let a: Vec<f64> = (0..30).map(|i| ((i * 7919) % 31) as f64 - 15.0).collect();
        let b: Vec<f64> = a.iter().enumerate().map(|(i, x)| x / 2.0 + if i % 2 == 0 { 0.3 } else { -0.3 }).collect();
        let r = pitman_morgan(&a, &b, 0).unwrap();
        assert!(r.mean_diff > 0.0 && r.statistic > 0.0 && r.p_value < 1e-6, "{r:?}");
        let swapped = pitman_morgan(&b, &a, 0).unwrap();
        assert!((swapped.statistic + r.statistic).abs() < 1e-9);
        // Equal variances (c is a reordered copy of a): Cov(s, d) = Var(a) − Var(c) = 0.
        let c: Vec<f64> = a.iter().rev().copied().collect();
        assert!(pitman_morgan(&a, &c, 0).unwrap().p_value > 0.99);
    }
}
