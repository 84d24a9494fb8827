//! Deciding a study's predictions with the seed as the unit of analysis.
//!
//! For each prediction, [`per_seed`] gathers its paired values by seed (a measurement that is
//! the same row in several cells counts once), [`seed_tests`] reduces each seed's cells to
//! independent units and runs the prediction's test over them, Holm's correction runs across
//! the study's predictions, and [`power`] says what the seeds run could detect. A sequential
//! design ([`sequential`]) repeats this at each look with the α that look may spend.
//!
//! A verdict is *supported* when the Holm-corrected test rejects in the predicted direction,
//! *contradicted* when it rejects in the other, and *inconclusive* otherwise, with the kind of
//! inconclusive stated (no test, underpowered, or powered and no effect of interest). It is
//! *not applicable* when a condition the claim holds under (`requires`) is not shown at the
//! look's α, or when a [`health`] check fails on the cells and arms it compares: the
//! claim is then not judged at all. Holm still counts such predictions, so gating only removes
//! rejections and the family-wise error stays at most α.

pub mod per_seed;
pub mod calibration;
pub mod health;
pub mod power;
pub mod seed_tests;
pub mod sequential;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::results::Row;
use crate::stats::{self, Verdict};
use crate::registry::Registry;
use health::Finding;
use crate::study::{Condition, Expect, GridAxis, Prediction, Study};
use seed_tests::{Method, SeedTest};
use crate::study::SeedPlan;
use sequential::Look;

/// Family-wise error rate of the Holm correction over a study's predictions (and over all the
/// looks of a sequential design).
pub const ALPHA: f64 = 0.05;
/// The power at which detectable effects and seeds needed are stated.
pub const POWER: f64 = 0.8;
/// Largest seed count the power search tries.
const MAX_SEEDS_SEARCHED: usize = 1_000_000;
/// Fewest seeds at which an exact two-sided signed-rank test can reach p < 0.05 (2/2⁶).
const WILCOXON_MIN_SEEDS: usize = 6;

/// Why a prediction is inconclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inconclusive {
    /// No test could run (too few seeds, no spread); the decision's `no_test` says why.
    NoTest,
    /// The seeds run had under 80% power for the smallest effect of interest.
    Underpowered,
    /// 80% power for the smallest effect of interest, and no effect found.
    NoEffectOfInterest,
    /// No `min_effect` stated: only the detectable effect can be given.
    NoEffectOfInterestStated,
}

impl Inconclusive {
    pub fn describe(self) -> &'static str {
        match self {
            Inconclusive::NoTest => "no test could run",
            Inconclusive::Underpowered => "underpowered for the smallest effect of interest",
            Inconclusive::NoEffectOfInterest => "powered for the smallest effect of interest, and no effect of that size",
            Inconclusive::NoEffectOfInterestStated => "no difference told from noise (no smallest effect of interest stated)",
        }
    }
}

/// What the seeds run could detect, on the reported effect's scale, at the look's α before
/// Holm (two-sided) and 80% power.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerFigures {
    /// The level the figures use.
    pub alpha: f64,
    /// Sd of the tested unit values (per-seed means, contrasts or Fisher z).
    pub unit_sd: f64,
    /// Smallest |effect| detected with 80% power at the seeds run (NaN when none can be).
    pub detectable_effect: f64,
    /// Seeds needed to detect the observed effect with 80% power (`None`: more than a million,
    /// or no effect).
    pub seeds_for_observed: Option<usize>,
    /// Seeds needed for the prediction's `min_effect`, when it states one.
    pub seeds_for_min_effect: Option<usize>,
}

/// A precondition's test at the look that decided its prediction.
#[derive(Debug, Clone)]
pub struct ConditionOutcome {
    pub condition: Condition,
    pub test: Option<SeedTest>,
    pub no_test: Option<String>,
    /// Shown: the test over seeds rejects at the look's α (two-sided, uncorrected) in the
    /// stated direction. All conditions must be shown (an intersection–union test, which needs
    /// no multiplicity correction).
    pub met: bool,
}

/// One prediction's outcome.
#[derive(Debug, Clone)]
pub struct Decision {
    pub prediction: Prediction,
    /// The test over the seeds; `None` when none could run (`no_test` says why).
    pub test: Option<SeedTest>,
    pub no_test: Option<String>,
    /// Distinct cells that gave values.
    pub cells: usize,
    /// Pairs dropped because a row failed or lacked the metric.
    pub dropped: usize,
    /// Repeated measurements (the same rows in several cells) counted once.
    pub duplicates: usize,
    pub adjusted_p: Option<f64>,
    pub verdict: Verdict,
    pub inconclusive: Option<Inconclusive>,
    /// The 1-based look that decided it, and the seeds that look used.
    pub look: usize,
    pub seeds_run: usize,
    pub power: Option<PowerFigures>,
    /// Its preconditions' tests, in the order stated.
    pub conditions: Vec<ConditionOutcome>,
    /// Names of the health checks that failed on its cells and arms and were not silenced.
    pub health: Vec<String>,
}

impl Decision {
    /// Seeds whose values entered the test (0 when none ran).
    pub fn seeds(&self) -> usize {
        self.test.as_ref().map_or(0, |t| t.seeds)
    }
}

/// The seeds and cells a sequential design's next look needs before it can decide.
#[derive(Debug, Clone, PartialEq)]
pub struct NextLook {
    pub index: usize,
    pub seeds: usize,
    pub cells: BTreeSet<usize>,
}

/// Every prediction's decision, the looks taken, and what the next look needs when the rows
/// end before the design is finished.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub decisions: Vec<Decision>,
    pub plan: SeedPlan,
    pub looks: Vec<Look>,
    pub next: Option<NextLook>,
    /// Every health check's findings, silenced ones included.
    pub health: Vec<Finding>,
}

/// What the verdict engine reads of a study: its grid, each cell's levels, its predictions,
/// seed plan and metrics. A kdlab study gives one, and so does an analyze file of results
/// computed elsewhere.
pub struct Design<'a> {
    pub name: &'a str,
    pub claim: &'a str,
    /// The paper whose claim it tests.
    pub paper: Option<&'a str>,
    pub axes: &'a [GridAxis],
    /// Each cell's levels (one per axis), by cell index.
    pub cells: Vec<&'a [String]>,
    pub predictions: &'a [Prediction],
    pub plan: SeedPlan,
    /// The most seeds any cell runs (`plan.max`).
    pub seeds: usize,
    pub registry: &'a Registry,
    /// Health checks the study silences, with its reason.
    pub silenced: &'a [(String, String)],
}

impl<'a> From<&'a Study> for Design<'a> {
    fn from(study: &'a Study) -> Design<'a> {
        Design {
            name: &study.name,
            claim: &study.claim,
            paper: study.paper.as_deref(),
            axes: &study.axes,
            cells: study.cells.iter().map(|c| c.levels.as_slice()).collect(),
            predictions: &study.predictions,
            plan: study.plan,
            seeds: study.seeds,
            registry: &study.registry,
            silenced: &study.silenced,
        }
    }
}

/// Decides every prediction of a study on `rows`: at each look of its seed plan (one look for
/// a fixed design), Holm at that look's α over the predictions still undecided.
pub fn evaluate<'a>(design: impl Into<Design<'a>>, rows: &[Row]) -> Evaluation {
    let design = &design.into();
    let plan = design.plan;
    let (looks, levels) = (plan.looks(), sequential::alpha_per_look(&plan, ALPHA));
    let present: BTreeSet<(usize, usize)> = rows.iter().map(|r| (r.cell_index, r.seed)).collect();
    let mut latest: Vec<Option<Decision>> = vec![None; design.predictions.len()];
    let mut open: Vec<usize> = (0..design.predictions.len()).collect();
    let mut taken = Vec::new();
    let mut next = None;
    for (k, (&seeds, &level)) in looks.iter().zip(&levels).enumerate() {
        if open.is_empty() {
            break;
        }
        let last = k + 1 == looks.len();
        if plan.is_sequential() {
            let cells: BTreeSet<usize> = if k == 0 { (0..design.cells.len()).collect() } else { open.iter().flat_map(|&i| per_seed::cells_used(design, &design.predictions[i])).collect() };
            if cells.iter().any(|&c| (0..seeds).any(|s| !present.contains(&(c, s)))) {
                next = Some(NextLook { index: k + 1, seeds, cells });
                break;
            }
        }
        let mut at_look: Vec<Decision> = open.iter().map(|&i| decide_one(design, rows, &design.predictions[i], seeds, level, k + 1)).collect();
        correct(&mut at_look, level);
        let mut decided = Vec::new();
        let mut still_open = Vec::new();
        for (i, d) in open.iter().copied().zip(at_look) {
            let stop = matches!(d.verdict, Verdict::Supported | Verdict::Contradicted) || d.inconclusive == Some(Inconclusive::NoEffectOfInterest) || last;
            if stop {
                decided.push(d.prediction.id.clone());
            } else {
                still_open.push(i);
            }
            latest[i] = Some(d);
        }
        taken.push(Look { index: k + 1, seeds, alpha: level, decided });
        open = still_open;
    }
    let mut decisions: Vec<Decision> = latest.into_iter().zip(design.predictions).map(|(d, p)| d.unwrap_or_else(|| not_reached(p))).collect();
    let findings = health::run(design, rows);
    for d in &mut decisions {
        gate_by_health(design, d, &findings);
    }
    Evaluation { decisions, plan, looks: taken, next, health: findings }
}

/// Marks `d` with the unsilenced findings that touch its cells and arms; any makes it not
/// applicable.
fn gate_by_health(design: &Design, d: &mut Decision, findings: &[Finding]) {
    let cells = per_seed::cells_used(design, &d.prediction);
    let rows = health::rows_compared(&d.prediction);
    for f in findings.iter().filter(|f| f.silenced.is_none() && f.touches(&d.prediction, &cells, &rows)) {
        if !d.health.contains(&f.check.to_string()) {
            d.health.push(f.check.to_string());
        }
    }
    if !d.health.is_empty() {
        d.verdict = Verdict::NotApplicable;
        d.inconclusive = None;
    }
}

/// A prediction no look has reached yet (the rows stop before its first look).
fn not_reached(prediction: &Prediction) -> Decision {
    Decision {
        prediction: prediction.clone(),
        test: None,
        no_test: Some("the study's first look has not run".into()),
        cells: 0,
        dropped: 0,
        duplicates: 0,
        adjusted_p: None,
        verdict: Verdict::Inconclusive,
        inconclusive: Some(Inconclusive::NoTest),
        look: 0,
        seeds_run: 0,
        power: None,
        conditions: Vec::new(),
        health: Vec::new(),
    }
}

/// The non-inferiority shift subtracted from lhs − rhs: testing lhs − (rhs ± δ).
fn margin_shift(prediction: &Prediction) -> f64 {
    match (prediction.margin, prediction.expect) {
        (Some(m), Expect::Lower) => m,
        (Some(m), Expect::Higher) => -m,
        (None, _) => 0.0,
    }
}

/// One prediction at one look, before the multiple-testing correction.
fn decide_one(design: &Design, rows: &[Row], prediction: &Prediction, seeds: usize, level: f64, look: usize) -> Decision {
    let sample = per_seed::collect(design, rows, prediction, seeds);
    let outcome = seed_tests::run(prediction.test, &sample, margin_shift(prediction));
    let power = outcome.as_ref().ok().map(|t| power_figures(t, prediction, level));
    let (test, no_test) = match outcome {
        Ok(t) => (Some(t), None),
        Err(why) => (None, Some(why)),
    };
    let conditions = prediction.requires.iter().enumerate().map(|(k, c)| test_condition(design, rows, prediction, k, c, seeds, level)).collect();
    Decision { prediction: prediction.clone(), test, no_test, cells: sample.cells, dropped: sample.dropped, duplicates: sample.duplicates, adjusted_p: None, verdict: Verdict::Inconclusive, inconclusive: None, look, seeds_run: seeds, power, conditions, health: Vec::new() }
}

/// Precondition `k` of `parent` over its cells and seeds `0..seeds`: shown when the seed-level
/// test rejects at `level` in the stated direction.
fn test_condition(design: &Design, rows: &[Row], parent: &Prediction, k: usize, condition: &Condition, seeds: usize, level: f64) -> ConditionOutcome {
    let as_prediction = condition.as_prediction(parent, k);
    let sample = per_seed::collect(design, rows, &as_prediction, seeds);
    let (test, no_test) = match seed_tests::run(condition.test, &sample, 0.0) {
        Ok(t) => (Some(t), None),
        Err(why) => (None, Some(why)),
    };
    let sign = match condition.expect {
        Expect::Lower => -1.0,
        Expect::Higher => 1.0,
    };
    let met = test.as_ref().is_some_and(|t| stats::verdict(t.direction, sign, t.p_value < level) == Verdict::Supported);
    ConditionOutcome { condition: condition.clone(), test, no_test, met }
}

/// Holm at `level` across the decisions that have a test, then each verdict and, for the
/// inconclusive ones, which kind.
fn correct(decisions: &mut [Decision], level: f64) {
    let tested: Vec<usize> = (0..decisions.len()).filter(|&i| decisions[i].test.is_some()).collect();
    let p: Vec<f64> = tested.iter().map(|&i| decisions[i].test.as_ref().map_or(f64::NAN, |t| t.p_value)).collect();
    for (&i, h) in tested.iter().zip(stats::holm(&p, level)) {
        let d = &mut decisions[i];
        let t = d.test.as_ref().expect("tested");
        let sign = match d.prediction.expect {
            Expect::Lower => -1.0,
            Expect::Higher => 1.0,
        };
        d.adjusted_p = Some(h.adjusted_p);
        d.verdict = stats::verdict(t.direction, sign, h.reject);
    }
    for d in decisions.iter_mut().filter(|d| d.conditions.iter().any(|c| !c.met)) {
        d.verdict = Verdict::NotApplicable;
    }
    for d in decisions.iter_mut().filter(|d| d.verdict == Verdict::Inconclusive) {
        d.inconclusive = Some(why_inconclusive(d));
    }
}

fn why_inconclusive(d: &Decision) -> Inconclusive {
    let (Some(test), Some(power)) = (&d.test, &d.power) else { return Inconclusive::NoTest };
    let Some(min) = d.prediction.min_effect else { return Inconclusive::NoEffectOfInterestStated };
    // The CI excludes the effect of interest on both sides, or the design could detect it.
    let excluded = test.ci_low > -min && test.ci_high < min;
    if excluded || power.detectable_effect <= min {
        Inconclusive::NoEffectOfInterest
    } else {
        Inconclusive::Underpowered
    }
}

/// Power figures of a test: on the unit scale for the t test's noncentral t, mapped back to
/// the reported effect. Wilcoxon's are the t test's scaled by its asymptotic relative
/// efficiency 3/π under normal data, and none below the 6 seeds its exact test needs.
fn power_figures(test: &SeedTest, prediction: &Prediction, alpha: f64) -> PowerFigures {
    let contrasts = matches!(test.method, Method::VarianceContrasts | Method::CorrelationContrasts);
    let to_seeds = |units: usize| units + contrasts as usize;
    let wilcoxon = test.method == Method::SeedMeanWilcoxon;
    let efficiency = if wilcoxon { 3.0 / std::f64::consts::PI } else { 1.0 };
    let sd = test.unit_sd;
    let needed = |unit_effect: f64| -> Option<usize> {
        let t_units = power::seeds_needed(unit_effect, sd, alpha, POWER, MAX_SEEDS_SEARCHED)?;
        let units = (t_units as f64 / efficiency).ceil() as usize;
        Some(to_seeds(if wilcoxon { units.max(WILCOXON_MIN_SEEDS) } else { units }))
    };
    let detectable_unit = if wilcoxon && test.units < WILCOXON_MIN_SEEDS {
        f64::NAN
    } else {
        power::minimum_detectable_effect(sd, test.units, alpha, POWER) / efficiency.sqrt()
    };
    PowerFigures {
        alpha,
        unit_sd: sd,
        detectable_effect: test.scale.to_effect(detectable_unit).abs(),
        seeds_for_observed: needed(test.unit_mean),
        seeds_for_min_effect: prediction.min_effect.and_then(|m| needed(test.scale.to_unit(m))),
    }
}

#[cfg(test)]
mod tests {
    use super::calibration::{Design, Kind};
    use super::*;
    use std::collections::BTreeMap;

    /// A results table of `design`'s study with `value(cell, seed, arm)` as every row's
    /// `log_loss` (and a Brier score that tells rows apart unless `value` repeats it).
    fn table(study: &Study, seeds: usize, value: impl Fn(usize, usize, &str) -> f64) -> Vec<Row> {
        let mut rows = Vec::new();
        for cell in &study.cells {
            for s in 0..seeds {
                for arm in ["kd", "labels", "teacher"] {
                    let v = value(cell.index, s, arm);
                    let metrics = BTreeMap::from([("log_loss".to_string(), v), ("brier".to_string(), v / 3.0)]);
                    rows.push(Row { cell_index: cell.index, cell_id: cell.id.clone(), levels: cell.levels.clone(), seed: s, arm: arm.into(), failure: None, metrics, reliability: Vec::new() });
                }
            }
        }
        rows
    }

    #[test]
    fn wilcoxon_reads_its_direction_from_the_signed_ranks() {
        // 19 differences of +1 and one of −100: the mean is −4.05, but W⁺ = 190 of 210 says
        // "higher" (exact p = 0.0004); the prediction expects "lower", so it is contradicted.
        let study = Design::null(Kind::Wilcoxon, 1, 20, 0.0).study();
        let rows = table(&study, 20, |_, s, arm| match (arm, s) {
            ("kd", 0) => -100.0,
            ("kd", _) => 1.0 + s as f64 * 1e-3,
            _ => s as f64 * 1e-3,
        });
        let d = &evaluate(&study, &rows).decisions[0];
        let t = d.test.as_ref().unwrap();
        assert_eq!(t.statistic, 190.0);
        assert!(t.direction > 0.0 && t.effect > 0.0, "{t:?}");
        assert_eq!(d.verdict, Verdict::Contradicted);
    }

    #[test]
    fn cells_of_a_seed_become_one_value() {
        // 4 cells × 5 seeds: the test runs over 5 per-seed means, not 20 pairs. Differences
        // d(c, s) = s + c/10, so the per-seed means are s + 0.15 and their mean is 2.15.
        let study = Design::null(Kind::PairedT, 4, 5, 0.0).study();
        let rows = table(&study, 5, |c, s, arm| if arm == "kd" { (s as f64 + c as f64 / 10.0) + 7.0 * c as f64 } else { 7.0 * c as f64 });
        let d = &evaluate(&study, &rows).decisions[0];
        let t = d.test.as_ref().unwrap();
        assert_eq!((t.seeds, t.units, d.cells), (5, 5, 4));
        assert!((t.effect - 2.15).abs() < 1e-12, "{}", t.effect);
        assert!((t.unit_sd - (2.5f64).sqrt()).abs() < 1e-12, "{}", t.unit_sd);
        // Power figures: the t test's, at the seeds run.
        let p = d.power.as_ref().unwrap();
        assert!((p.detectable_effect - power::minimum_detectable_effect(t.unit_sd, 5, ALPHA, POWER)).abs() < 1e-12);
        assert_eq!(p.seeds_for_observed, power::seeds_needed(2.15, t.unit_sd, ALPHA, POWER, MAX_SEEDS_SEARCHED));
    }

    #[test]
    fn a_repeated_teacher_row_counts_once() {
        // The teacher compared across the teacher axis, repeated over 3 student-side cells:
        // one pair per seed, the other two counted once.
        let study = Design::null(Kind::DuplicatedTeacher, 3, 4, 0.0).study();
        let depth_of = |c: usize| &study.cells[c].levels[0];
        let rows = table(&study, 4, |c, s, arm| if arm == "teacher" { s as f64 + if depth_of(c) == "8" { 0.5 } else { 0.0 } } else { c as f64 + s as f64 });
        let d = &evaluate(&study, &rows).decisions[0];
        assert_eq!((d.seeds(), d.cells, d.duplicates), (4, 1, 8));
    }

    #[test]
    fn a_sequential_design_asks_for_its_next_look() {
        let design = Design { sequential: Some((3, 3)), ..Design::null(Kind::PairedT, 2, 9, 0.5) };
        let study = design.study();
        let mut rng = crate::seed::rng(7);
        let rows: Vec<Row> = design.rows(&study, &mut rng).into_iter().filter(|r| r.seed < 3).collect();
        let e = evaluate(&study, &rows);
        assert_eq!(e.looks.len(), 1);
        let next = e.next.expect("a null effect at 3 seeds is undecided");
        assert_eq!((next.index, next.seeds, next.cells.len()), (2, 6, 2));
        // No rows at all: the first look needs every cell.
        let first = evaluate(&study, &[]).next.unwrap();
        assert_eq!((first.index, first.seeds), (1, 3));
    }
}
