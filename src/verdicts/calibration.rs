//! The verdict engine checked by simulation: results tables drawn with known truth (identical
//! arms, or a known effect) and correlation within seed, run through [`super::evaluate`]
//! exactly as a study's rows are, counting how often a verdict is declared.
//!
//! `tests/calibration.rs` asserts the rates; `kdlab calibrate` writes them to
//! `CALIBRATION.md`, so a user can see how each decision rule behaves.

use std::path::Path;

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::Serialize;

use super::{evaluate, power, ALPHA};
use crate::results::Row;
use crate::seed;
use crate::stats::Verdict;
use crate::study::{self, Study};

/// Which prediction a design simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `compare = ["kd", "labels"]`, paired t.
    PairedT,
    /// The same with `test = "wilcoxon"`.
    Wilcoxon,
    /// `margin = 0.1`, true difference at the margin; counts "supported" only.
    NonInferiority,
    /// Pitman–Morgan, equal variances, correlated arms.
    PitmanMorgan,
    /// `correlate`, independent metrics.
    Pearson,
    /// One arm at two levels of an axis.
    Levels,
    /// An arm against a constant.
    Constant,
    /// A teacher row compared across the levels of a teacher axis, repeated across a
    /// student-side axis of `cells` levels.
    DuplicatedTeacher,
    /// An interaction: kd's lead over labels at one level of an axis against its lead at the
    /// other (`minus`, a difference of differences).
    Interaction,
    /// A paired-t prediction with a huge true effect whose precondition (`requires`, kd's ECE
    /// above 0) has the design's `effect`: at 0 the condition is at its boundary, so every
    /// verdict declared is one the precondition should have stopped.
    Precondition,
}

impl Kind {
    pub const ALL: [Kind; 10] = [Kind::PairedT, Kind::Wilcoxon, Kind::NonInferiority, Kind::PitmanMorgan, Kind::Pearson, Kind::Levels, Kind::Interaction, Kind::Constant, Kind::DuplicatedTeacher, Kind::Precondition];

    fn prediction(self) -> &'static str {
        match self {
            Kind::PairedT => "metric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"",
            Kind::Wilcoxon => "metric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\ntest = \"wilcoxon\"",
            Kind::NonInferiority => "metric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\nmargin = 0.1",
            Kind::PitmanMorgan => "metric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\ntest = \"pitman-morgan\"",
            Kind::Pearson => "metric = \"log_loss\"\ncorrelate = \"accuracy\"\narm = \"kd\"\nexpect = \"higher\"",
            Kind::Levels => "metric = \"log_loss\"\naxis = \"teacher.max_depth\"\narm = \"kd\"\ncompare = [8, 2]\nexpect = \"lower\"",
            Kind::Interaction => "metric = \"log_loss\"\naxis = \"teacher.max_depth\"\narm = \"kd\"\nminus = \"labels\"\ncompare = [8, 2]\nexpect = \"lower\"",
            Kind::Constant => "metric = \"log_loss\"\ncompare = [\"kd\", 0.5]\nexpect = \"lower\"",
            Kind::DuplicatedTeacher => "metric = \"log_loss\"\naxis = \"teacher.max_depth\"\narm = \"teacher\"\ncompare = [8, 2]\nexpect = \"lower\"",
            Kind::Precondition => "metric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\nrequires = [{ metric = \"ece\", compare = [\"kd\", 0.0], expect = \"higher\" }]",
        }
    }

    /// Whether the design has the two-level teacher axis.
    fn has_levels(self) -> bool {
        matches!(self, Kind::Levels | Kind::Interaction | Kind::DuplicatedTeacher)
    }
}

/// A simulated design: `predictions` copies of one kind's prediction (each on its own
/// metric), `cells` student-side cells, within-seed correlation `rho`, and a true effect
/// `effect` in the direction predicted (0: the null).
#[derive(Debug, Clone, Serialize)]
pub struct Design {
    pub kind: Kind,
    pub cells: usize,
    pub seeds: usize,
    pub rho: f64,
    pub effect: f64,
    pub predictions: usize,
    /// `Some((min, step))`: a sequential design from `min` to `seeds` seeds.
    pub sequential: Option<(usize, usize)>,
}

/// Metrics the simulated predictions use, one per prediction.
const METRICS: [&str; 9] = ["log_loss", "brier", "ece", "excess_risk", "bayes_sq_error", "student_error", "kl_teacher_student", "agreement", "auc"];

impl Design {
    pub fn null(kind: Kind, cells: usize, seeds: usize, rho: f64) -> Design {
        Design { kind, cells, seeds, rho, effect: 0.0, predictions: 1, sequential: None }
    }

    /// The study file of the design (its data, teacher and student are never fitted).
    pub fn study(&self) -> Study {
        let seeds = match self.sequential {
            Some((min, step)) => format!("{{ min = {min}, max = {}, step = {step} }}", self.seeds),
            None => self.seeds.to_string(),
        };
        let epochs = if self.cells > 1 { format!("[{}]", (1..=self.cells).map(|e| e.to_string()).collect::<Vec<_>>().join(", ")) } else { "1".into() };
        let depth = if self.kind.has_levels() { "[2, 8]" } else { "2" };
        let predictions: String = (0..self.predictions)
            .map(|i| {
                let body = self.kind.prediction().replacen("\"log_loss\"", &format!("\"{}\"", METRICS[i]), 1);
                format!("[[predictions]]\nid = \"p{i}\"\n{body}\n\n")
            })
            .collect();
        // The simulated metrics are draws, not accuracies: the health checks would misread
        // them, so the simulation measures the verdict engine (and preconditions) alone.
        let silence: String = std::iter::once("[health.silence]\n".to_string()).chain(crate::study::HEALTH_CHECKS.iter().map(|c| format!("{c} = \"simulated rows\"\n"))).collect();
        let source = format!(
            "name = \"calibration\"\nclaim = \"simulated\"\nseeds = {seeds}\nseed = 1\narms = [\"labels\", \"kd\"]\n\n[data]\nkind = \"gaussian-mixture\"\nn_train = 100\nn_test = 100\nn_population = 100\ndim = 2\n\n[teacher]\nkind = \"forest\"\nn_trees = 2\nmax_depth = {depth}\n\n[student]\nkind = \"mlp\"\nhidden = [4]\nepochs = {epochs}\n\n[theory]\noracle_n = 0\n\n{predictions}{silence}"
        );
        study::parse(Path::new("calibration.toml"), &source, &study::LoadOptions::default()).expect("the calibration study is valid")
    }

    /// One simulated results table.
    pub fn rows(&self, study: &Study, rng: &mut impl Rng) -> Vec<Row> {
        let mut normal = || -> f64 { rng.sample(StandardNormal) };
        let (shared, own) = (self.rho.sqrt(), (1.0 - self.rho).sqrt());
        let mut rows = Vec::new();
        for s in 0..self.seeds {
            // Per seed and prediction: the seed-level draws every cell of the seed shares.
            let seed_draws: Vec<[f64; 4]> = (0..self.predictions).map(|_| [normal(), normal(), normal(), normal()]).collect();
            let teacher_draws: Vec<[f64; 2]> = (0..self.predictions).map(|_| [normal(), normal()]).collect();
            for cell in &study.cells {
                let deep = self.kind.has_levels() && cell.levels[0] == "8";
                // The student-side level: the same in both levels of the teacher axis.
                let position = (cell.index % self.cells) as f64;
                let mut values: [Vec<(String, f64)>; 3] = Default::default();
                for (p, (sd, td)) in seed_draws.iter().zip(&teacher_draws).enumerate() {
                    let (kd, labels, teacher, with) = self.draw(sd, td, deep, position, shared, own, &mut normal);
                    values[0].push((METRICS[p].to_string(), kd));
                    values[1].push((METRICS[p].to_string(), labels));
                    values[2].push((METRICS[p].to_string(), teacher));
                    let second = if self.kind == Kind::Precondition { "ece" } else { "accuracy" };
                    values[0].push((second.to_string(), with));
                }
                for (arm, metrics) in ["kd", "labels", "teacher"].into_iter().zip(values) {
                    rows.push(Row { cell_index: cell.index, cell_id: cell.id.clone(), levels: cell.levels.clone(), seed: s, arm: arm.into(), failure: None, metrics: metrics.into_iter().collect(), reliability: Vec::new() });
                }
            }
        }
        rows
    }

    /// (kd, labels, teacher, kd's second metric) of one cell of one seed. `sd` are the seed's
    /// shared draws, `td` the teacher's per-level draws (shared by every student-side cell).
    #[allow(clippy::too_many_arguments)]
    fn draw(&self, sd: &[f64; 4], td: &[f64; 2], deep: bool, position: f64, shared: f64, own: f64, normal: &mut impl FnMut() -> f64) -> (f64, f64, f64, f64) {
        let signed = -self.effect; // every prediction expects "lower" (Pearson: "higher", below)
        let labels = position + shared * sd[0] + own * normal();
        let teacher = td[deep as usize] + if deep { signed } else { 0.0 };
        match self.kind {
            Kind::PairedT | Kind::Wilcoxon => (labels + signed + shared * sd[1] + own * normal(), labels, teacher, 0.0),
            Kind::NonInferiority => (labels + 0.1 + shared * sd[1] + own * normal(), labels, teacher, 0.0),
            Kind::PitmanMorgan => {
                // Equal variances, correlation 0.6 between the arms at both levels.
                let a = shared * sd[0] + own * normal();
                let b = 0.6 * a + 0.8 * (shared * sd[1] + own * normal());
                (position + a * (1.0 - self.effect).sqrt(), position + b, teacher, 0.0)
            }
            Kind::Pearson => {
                let a = position + shared * sd[0] + own * normal();
                let b = shared * sd[1] + own * normal();
                (a, labels, teacher, self.effect * (a - position) + (1.0 - self.effect * self.effect).sqrt() * b)
            }
            // `labels` shares its seed draw across the two levels, so the interaction removes it.
            Kind::Levels | Kind::Interaction => (position + shared * sd[deep as usize + 2] + own * normal() + if deep { signed } else { 0.0 }, labels, teacher, 0.0),
            Kind::Constant => (0.5 + signed + shared * sd[1] + own * normal(), labels, teacher, 0.0),
            Kind::DuplicatedTeacher => (labels, labels, teacher, 0.0),
            // The claim itself always holds (a 20-sd effect); only the condition is in doubt.
            Kind::Precondition => (labels - 20.0 + shared * sd[1] + own * normal(), labels, teacher, self.effect + shared * sd[2] + own * normal()),
        }
    }

    /// The sd of one seed's tested value under this design's model (paired t, levels and
    /// interactions): a levels difference has two seed draws and two own draws per cell, an
    /// interaction two seed draws (labels' cancels) and four own draws.
    pub fn seed_sd(&self) -> f64 {
        let (c, rho) = (self.cells as f64, self.rho);
        match self.kind {
            Kind::Levels => (2.0 * rho + 2.0 * (1.0 - rho) / c).sqrt(),
            Kind::Interaction => (2.0 * rho + 4.0 * (1.0 - rho) / c).sqrt(),
            _ => (rho + (1.0 - rho) / c).sqrt(),
        }
    }
}

/// How often a design declared a verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub design: Design,
    pub reps: usize,
    /// Studies with at least one verdict declared (for non-inferiority: one "supported").
    pub declared: usize,
    /// Studies whose verdicts were all decided before the last look (sequential designs).
    pub stopped_early: usize,
    pub rate: f64,
    /// Monte-Carlo standard error of `rate`.
    pub se: f64,
}

/// Runs `reps` simulated studies of `design` (on both cores; every rep draws from its own
/// seed derived from `base_seed`, so the rate does not depend on the thread count).
pub fn simulate(design: &Design, reps: usize, base_seed: u64) -> Rate {
    let study = design.study();
    let label = serde_json::to_string(design).expect("serialisable");
    let outcomes: Vec<(bool, bool)> = (0..reps)
        .into_par_iter()
        .map(|rep| {
            let mut rng = seed::rng(seed::derive(base_seed, &[&label, &rep.to_string()]));
            let rows = design.rows(&study, &mut rng);
            let evaluation = evaluate(&study, &rows);
            let declared = evaluation.decisions.iter().any(|d| match design.kind {
                Kind::NonInferiority | Kind::Precondition => d.verdict == Verdict::Supported,
                _ => matches!(d.verdict, Verdict::Supported | Verdict::Contradicted),
            });
            let early = evaluation.looks.last().is_some_and(|l| l.seeds < design.seeds);
            (declared, early)
        })
        .collect();
    let declared = outcomes.iter().filter(|o| o.0).count();
    let rate = declared as f64 / reps as f64;
    Rate { design: design.clone(), reps, declared, stopped_early: outcomes.iter().filter(|o| o.1).count(), rate, se: (rate.max(ALPHA) * (1.0 - rate.max(ALPHA)) / reps as f64).sqrt() }
}

/// The null designs the calibration covers: every kind over cells, seeds and correlation.
pub fn null_designs() -> Vec<Design> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for (cells, seeds) in [(1, 3), (1, 10), (2, 5), (4, 3), (4, 10), (8, 5), (8, 30), (2, 30)] {
            for rho in [0.0, 0.5, 0.9] {
                out.push(Design::null(kind, cells, seeds, rho));
            }
        }
    }
    out
}

/// Studies of several null predictions (Holm across them), and sequential designs.
pub fn family_designs() -> Vec<Design> {
    let base = |predictions, cells, seeds, rho, sequential| Design { kind: Kind::PairedT, cells, seeds, rho, effect: 0.0, predictions, sequential };
    vec![
        base(9, 4, 3, 0.5, None),
        base(9, 4, 10, 0.9, None),
        base(3, 2, 20, 0.5, Some((5, 5))),
        base(3, 4, 40, 0.5, Some((5, 5))),
        base(1, 1, 30, 0.0, Some((10, 10))),
        Design { kind: Kind::Wilcoxon, ..base(3, 2, 24, 0.5, Some((8, 8))) },
    ]
}

/// Sequential designs with a large true effect in every prediction: they should stop early.
pub fn early_stop_designs() -> Vec<Design> {
    vec![Design { kind: Kind::PairedT, cells: 2, seeds: 40, rho: 0.5, effect: 1.5, predictions: 3, sequential: Some((5, 5)) }]
}

/// Designs with a known effect, and the power the noncentral t predicts for each.
pub fn power_designs() -> Vec<(Design, f64)> {
    [(Kind::PairedT, 1, 10, 0.0, 0.8), (Kind::PairedT, 4, 10, 0.5, 0.7), (Kind::PairedT, 8, 5, 0.9, 1.2), (Kind::Levels, 4, 12, 0.5, 0.8), (Kind::Interaction, 4, 12, 0.5, 0.8), (Kind::PairedT, 2, 30, 0.5, 0.3), (Kind::Precondition, 4, 10, 0.5, 0.7)]
        .into_iter()
        .map(|(kind, cells, seeds, rho, effect)| {
            let design = Design { effect, ..Design::null(kind, cells, seeds, rho) };
            let predicted = power::t_test_power(effect, design.seed_sd(), seeds, ALPHA);
            (design, predicted)
        })
        .collect()
}

/// Wilcoxon designs with a known effect, and the power its report states: the t test's at
/// 3/π of the seeds (its asymptotic relative efficiency under normal data). An approximation,
/// measured here rather than asserted.
pub fn wilcoxon_power_designs() -> Vec<(Design, f64)> {
    [(1, 10, 0.0, 0.8), (4, 12, 0.5, 0.7), (2, 30, 0.5, 0.3)]
        .into_iter()
        .map(|(cells, seeds, rho, effect)| {
            let design = Design { effect, ..Design::null(Kind::Wilcoxon, cells, seeds, rho) };
            let effective = (seeds as f64 * 3.0 / std::f64::consts::PI).round() as usize;
            (design.clone(), power::t_test_power(effect, design.seed_sd(), effective, ALPHA))
        })
        .collect()
}

/// `CALIBRATION.md`: every rate measured with `reps` studies per design.
pub fn render(reps: usize, base_seed: u64) -> String {
    // The command line keeps rayon's global pool at one thread (candle's rule); the
    // simulations are independent, so they take every core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| render_tables(reps, base_seed)),
        Err(_) => render_tables(reps, base_seed),
    }
}

fn render_tables(reps: usize, base_seed: u64) -> String {
    use std::fmt::Write as _;
    let mut w = String::new();
    let _ = writeln!(w, "# Calibration of the verdicts\n");
    let _ = writeln!(w, "Written by `kdlab calibrate --reps {reps}` (base seed {base_seed}); `tests/calibration.rs` checks the same designs. Each design draws {reps} results tables with a known truth and within-seed correlation ρ (each seed's cells share a seed-level draw with weight √ρ), runs them through the verdict engine exactly as a study's rows, and counts the studies that declared a verdict (supported or contradicted; for non-inferiority, supported). Nominal family-wise α = {ALPHA}; the Monte-Carlo standard error is √(α(1 − α)/reps).\n");
    let _ = writeln!(w, "## One null prediction per study\n");
    let _ = writeln!(w, "| test | cells | seeds | ρ | rate | within α + 3 SE |\n|---|---|---|---|---|---|");
    for d in null_designs() {
        let r = simulate(&d, reps, base_seed);
        let _ = writeln!(w, "| {:?} | {} | {} | {} | {:.4} | {} |", d.kind, d.cells, d.seeds, d.rho, r.rate, if r.rate <= ALPHA + 3.0 * r.se { "yes" } else { "**no**" });
    }
    let _ = writeln!(w, "\n## Studies of several null predictions (Holm), and sequential designs\n");
    let _ = writeln!(w, "| test | predictions | cells | seeds | ρ | design | family-wise rate | stopped early | within α + 3 SE |\n|---|---|---|---|---|---|---|---|---|");
    for d in family_designs() {
        let r = simulate(&d, reps, base_seed);
        let design = d.sequential.map_or("fixed".to_string(), |(min, step)| format!("looks {min}..{} step {step}", d.seeds));
        let _ = writeln!(w, "| {:?} | {} | {} | {} | {} | {design} | {:.4} | {:.4} | {} |", d.kind, d.predictions, d.cells, d.seeds, d.rho, r.rate, r.stopped_early as f64 / reps as f64, if r.rate <= ALPHA + 3.0 * r.se { "yes" } else { "**no**" });
    }
    for d in early_stop_designs() {
        let r = simulate(&d, reps, base_seed);
        let _ = writeln!(w, "\nWith a true effect of {} per-cell sd in each of {} predictions ({} cells, looks {}..{} step {}, ρ = {}): at least one verdict declared in {:.4} of the studies, and every prediction decided before the last look (the design stopped early) in {:.4}.", d.effect, d.predictions, d.cells, d.sequential.map_or(0, |s| s.0), d.seeds, d.sequential.map_or(0, |s| s.1), d.rho, r.rate, r.stopped_early as f64 / reps as f64);
    }
    let _ = writeln!(w, "\n## Power: a known effect\n");
    let _ = writeln!(w, "| test | cells | seeds | ρ | effect | per-seed sd | predicted power | detected | within 3 SE |\n|---|---|---|---|---|---|---|---|---|");
    for (d, predicted) in power_designs() {
        let r = simulate(&d, reps, base_seed);
        let se = (predicted * (1.0 - predicted) / reps as f64).sqrt();
        let _ = writeln!(w, "| {:?} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {} |", d.kind, d.cells, d.seeds, d.rho, d.effect, d.seed_sd(), predicted, r.rate, if (r.rate - predicted).abs() <= 3.0 * se { "yes" } else { "**no**" });
    }
    let _ = writeln!(w, "\nWilcoxon's stated power is an approximation (the t test's at 3/π of the seeds); measured:\n");
    let _ = writeln!(w, "| cells | seeds | ρ | effect | stated power | detected |\n|---|---|---|---|---|---|");
    for (d, predicted) in wilcoxon_power_designs() {
        let r = simulate(&d, reps, base_seed);
        let _ = writeln!(w, "| {} | {} | {} | {} | {:.4} | {:.4} |", d.cells, d.seeds, d.rho, d.effect, predicted, r.rate);
    }
    w
}
