//! The tests a prediction can name, applied with the seed as the unit.
//!
//! - Means (paired t, Wilcoxon, non-inferiority, an arm against a constant): each seed's value
//!   is the mean over its cells of lhs − rhs; the test runs over those per-seed values.
//! - Variances (Pitman–Morgan) and correlations within a cell: within each cell the seeds are
//!   turned into S − 1 orthonormal Helmert contrasts, which are independent and identically
//!   distributed when seeds are; contrast j of every cell belongs to the same seeds, so each
//!   contrast is one unit (the mean over cells of a² − b², or of a·b), t-tested over S − 1 units.
//!   This is Pitman–Morgan's Cov(a + b, a − b) = Var a − Var b with the seed correlation kept in.
//! - Correlations over at least three cells: Pearson's r across the cells of each seed (the
//!   association between settings), Fisher-z transformed, t-tested over seeds.

use serde::{Deserialize, Serialize};

use super::per_seed::{Pair, Sample, SeedPairs};
use crate::stats::{self, PairedComparison};
use crate::study::TestKind;

/// How a prediction's values were reduced to independent units and tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// One-sample t test of the per-seed mean differences.
    SeedMeanT,
    /// Wilcoxon signed-rank test of the per-seed mean differences.
    SeedMeanWilcoxon,
    /// t test of the variance difference over Helmert contrasts of seeds.
    VarianceContrasts,
    /// t test of the within-cell covariance over Helmert contrasts of seeds.
    CorrelationContrasts,
    /// t test of the Fisher-z of each seed's correlation across cells.
    CorrelationPerSeed,
}

impl Method {
    /// One line for the report: what the unit is and which test runs over it.
    pub fn describe(self) -> &'static str {
        match self {
            Method::SeedMeanT => "one-sample t test (two-sided) of the per-seed mean of lhs − rhs over the prediction's cells (a seed missing a cell averages the cells it has); df = seeds − 1",
            Method::SeedMeanWilcoxon => "Wilcoxon signed-rank test (two-sided, exact below 26 seeds) of the per-seed mean of lhs − rhs; effect: Hodges–Lehmann estimate with its exact interval",
            Method::VarianceContrasts => "Pitman–Morgan by seed contrasts: t test (two-sided) of Var(lhs) − Var(rhs) over the seeds − 1 Helmert contrasts of seeds (each the mean over cells); df = seeds − 2",
            Method::CorrelationContrasts => "within-cell correlation by seed contrasts: t test (two-sided) of the covariance over the seeds − 1 Helmert contrasts of seeds; r is the pooled within-cell correlation; df = seeds − 2",
            Method::CorrelationPerSeed => "Pearson r across the cells of each seed, Fisher-z transformed, one-sample t test (two-sided) over seeds; effect: tanh of the mean z; df = seeds − 1",
        }
    }

    /// A few words for the power table.
    pub fn short(self) -> &'static str {
        match self {
            Method::SeedMeanT => "t test of per-seed means",
            Method::SeedMeanWilcoxon => "signed-rank test of per-seed means",
            Method::VarianceContrasts => "t test of variance differences",
            Method::CorrelationContrasts => "t test of within-cell covariances",
            Method::CorrelationPerSeed => "t test of per-seed Fisher z",
        }
    }

    /// The independent units the test runs over, for the statistics paragraph.
    pub fn unit(self) -> &'static str {
        match self {
            Method::SeedMeanT | Method::SeedMeanWilcoxon | Method::CorrelationPerSeed => "seed",
            Method::VarianceContrasts | Method::CorrelationContrasts => "seed contrast",
        }
    }
}

/// How a unit's value maps onto the reported effect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// The effect is the unit mean.
    Identity,
    /// The effect is tanh of the unit mean (Fisher z to r).
    Tanh,
    /// The effect is the unit mean divided by this (covariance to correlation).
    Divide(f64),
}

impl Scale {
    pub fn to_effect(self, unit: f64) -> f64 {
        match self {
            Scale::Identity => unit,
            Scale::Tanh => unit.tanh(),
            Scale::Divide(s) => (unit / s).clamp(-1.0, 1.0),
        }
    }

    pub fn to_unit(self, effect: f64) -> f64 {
        match self {
            Scale::Identity => effect,
            Scale::Tanh => effect.clamp(-1.0 + 1e-12, 1.0 - 1e-12).atanh(),
            Scale::Divide(s) => effect * s,
        }
    }
}

/// A prediction's test over its independent units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedTest {
    pub method: Method,
    /// Seeds whose values entered the test.
    pub seeds: usize,
    /// Independent values the test ran over (seeds, or seeds − 1 contrasts).
    pub units: usize,
    /// The reported effect (mean difference, variance difference, r, or Hodges–Lehmann).
    pub effect: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub statistic: f64,
    pub p_value: f64,
    /// The direction the verdict reads: the sign of the mean for t tests, of W⁺ − m(m+1)/4
    /// for Wilcoxon.
    pub direction: f64,
    /// Mean and sd of the unit values (the scale on which power is computed).
    pub unit_mean: f64,
    pub unit_sd: f64,
    pub scale: Scale,
}

/// Runs `kind` on `sample`; `shift` is subtracted from every lhs − rhs (a non-inferiority
/// margin). `Err` says why there is no test (too few seeds, no spread).
pub fn run(kind: TestKind, sample: &Sample, shift: f64) -> Result<SeedTest, String> {
    match kind {
        TestKind::PairedT | TestKind::Wilcoxon => seed_means(kind, sample, shift),
        TestKind::PitmanMorgan => variance_contrasts(sample),
        TestKind::Pearson if sample.cells >= 3 => correlation_per_seed(sample),
        TestKind::Pearson => correlation_contrasts(sample),
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> f64 {
    stats::summarize(v).sd
}

/// The one-sample t test of `units` against 0.
fn t_over(units: &[f64]) -> Result<PairedComparison, String> {
    stats::paired_t_test(units, &vec![0.0; units.len()]).map_err(|e| e.to_string())
}

fn seed_means(kind: TestKind, sample: &Sample, shift: f64) -> Result<SeedTest, String> {
    let per_seed: Vec<f64> = sample.seeds.iter().map(|s| mean(&s.pairs.iter().map(|p| p.lhs - p.rhs - shift).collect::<Vec<_>>())).collect();
    if per_seed.len() < 2 {
        return Err(format!("{} seed(s) with values; a test needs at least 2", per_seed.len()));
    }
    if kind == TestKind::Wilcoxon {
        let w = stats::wilcoxon_signed_rank(&per_seed, &vec![0.0; per_seed.len()]).map_err(|e| e.to_string())?;
        let m = per_seed.iter().filter(|&&x| x != 0.0).count() as f64;
        let hl = stats::hodges_lehmann(&per_seed);
        return Ok(SeedTest {
            method: Method::SeedMeanWilcoxon,
            seeds: per_seed.len(),
            units: per_seed.len(),
            effect: hl.estimate,
            ci_low: hl.ci_low,
            ci_high: hl.ci_high,
            statistic: w.statistic,
            p_value: w.p_value,
            // W⁺ above its null mean m(m + 1)/4 says "higher", whatever the mean says.
            direction: w.statistic - m * (m + 1.0) / 4.0,
            unit_mean: mean(&per_seed),
            unit_sd: sd(&per_seed),
            scale: Scale::Identity,
        });
    }
    t_over_units(Method::SeedMeanT, per_seed.len(), &per_seed, Scale::Identity)
}

/// The seeds that have every cell of the sample (contrasts need a complete seeds × cells
/// table), as (lhs, rhs) matrices in cell order; seeds missing a cell are left out.
fn complete_table(sample: &Sample) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let cells: std::collections::BTreeSet<usize> = sample.seeds.iter().flat_map(|s| s.pairs.iter().map(|p| p.cell)).collect();
    let row = |s: &SeedPairs, side: fn(&Pair) -> f64| -> Option<Vec<f64>> { cells.iter().map(|c| s.pairs.iter().find(|p| p.cell == *c).map(side)).collect() };
    sample.seeds.iter().filter_map(|s| Some((row(s, |p| p.lhs)?, row(s, |p| p.rhs)?))).unzip()
}

/// Helmert contrasts of the rows of `x` (seeds × cells): S − 1 rows, orthonormal in the seed
/// direction, so Σ_j h_j² = Σ_s (x_s − x̄)² in every cell.
fn helmert(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let cells = x.first().map_or(0, |r| r.len());
    (1..x.len())
        .map(|j| {
            let norm = ((j * (j + 1)) as f64).sqrt();
            (0..cells).map(|c| (x[..j].iter().map(|r| r[c]).sum::<f64>() - j as f64 * x[j][c]) / norm).collect()
        })
        .collect()
}

/// The Helmert contrasts of a sample's complete seeds × cells table, and one unit per
/// contrast.
struct Contrasts {
    /// Per contrast, the mean over cells of `f(h_lhs, h_rhs)`.
    units: Vec<f64>,
    lhs: Vec<Vec<f64>>,
    rhs: Vec<Vec<f64>>,
    /// Seeds in the table.
    seeds: usize,
}

fn contrast_units(sample: &Sample, f: fn(f64, f64) -> f64) -> Result<Contrasts, String> {
    let (a, b) = complete_table(sample);
    if a.len() < 3 {
        return Err(format!("{} seed(s) with every cell; a test over seed contrasts needs at least 3", a.len()));
    }
    let (lhs, rhs) = (helmert(&a), helmert(&b));
    let units = lhs.iter().zip(&rhs).map(|(x, y)| mean(&x.iter().zip(y).map(|(p, q)| f(*p, *q)).collect::<Vec<_>>())).collect();
    Ok(Contrasts { units, lhs, rhs, seeds: a.len() })
}

/// The one-sample t test over `units`, its effect and interval mapped through `scale`.
fn t_over_units(method: Method, seeds: usize, units: &[f64], scale: Scale) -> Result<SeedTest, String> {
    let t = t_over(units)?;
    Ok(SeedTest {
        method,
        seeds,
        units: units.len(),
        effect: scale.to_effect(t.mean_diff),
        ci_low: scale.to_effect(t.ci_low),
        ci_high: scale.to_effect(t.ci_high),
        statistic: t.statistic,
        p_value: t.p_value,
        direction: t.mean_diff,
        unit_mean: mean(units),
        unit_sd: sd(units),
        scale,
    })
}

fn variance_contrasts(sample: &Sample) -> Result<SeedTest, String> {
    let c = contrast_units(sample, |a, b| a * a - b * b)?;
    t_over_units(Method::VarianceContrasts, c.seeds, &c.units, Scale::Identity)
}

fn correlation_contrasts(sample: &Sample) -> Result<SeedTest, String> {
    let c = contrast_units(sample, |a, b| a * b)?;
    let mean_square = |h: &[Vec<f64>]| mean(&h.iter().flatten().map(|x| x * x).collect::<Vec<_>>());
    let scale = (mean_square(&c.lhs) * mean_square(&c.rhs)).sqrt();
    if scale == 0.0 {
        return Err("a metric does not vary between seeds".into());
    }
    t_over_units(Method::CorrelationContrasts, c.seeds, &c.units, Scale::Divide(scale))
}

fn correlation_per_seed(sample: &Sample) -> Result<SeedTest, String> {
    let z: Vec<f64> = sample
        .seeds
        .iter()
        .filter(|s| s.pairs.len() >= 3)
        .filter_map(|s| stats::pearson(&s.pairs.iter().map(|p| p.lhs).collect::<Vec<_>>(), &s.pairs.iter().map(|p| p.rhs).collect::<Vec<_>>()).ok())
        .map(|c| Scale::Tanh.to_unit(c.r))
        .collect();
    if z.len() < 2 {
        return Err(format!("{} seed(s) with a correlation across 3 or more cells; a test needs at least 2", z.len()));
    }
    t_over_units(Method::CorrelationPerSeed, z.len(), &z, Scale::Tanh)
}
