//! The report's predictions: the statistics paragraph, the verdict and power tables, the looks
//! of a sequential design, and `verdicts.json` with every number behind each verdict.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{fmt_num, fmt_p, verdict_word};
use crate::results::Row;
use crate::stats::Verdict;
use crate::study::{Comparison, Expect, PaperEffect, TestKind};
use crate::verdicts::Design;
use crate::study::SeedPlan;
use crate::verdicts::sequential::Look;
use crate::verdicts::health::{self, Finding};
use crate::verdicts::{ConditionOutcome, Decision, Evaluation, ALPHA, POWER};

/// `verdicts.json`: a study's verdict counts (for the index) and, per prediction, the numbers
/// behind its verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictFile {
    pub name: String,
    pub claim: String,
    /// The paper whose claim the study tests (the index groups the scoreboard by it).
    #[serde(default)]
    pub paper: Option<String>,
    pub supported: usize,
    pub contradicted: usize,
    pub inconclusive: usize,
    /// Predictions not judged: a precondition not shown or a failed health check. (Defaults
    /// to 0 in files written before it existed.)
    #[serde(default)]
    pub not_applicable: usize,
    /// Health findings the study did not silence.
    #[serde(default)]
    pub health_warnings: usize,
    pub failed_rows: usize,
    /// The family-wise α Holm holds within this study. (The fields from here on default when
    /// absent, so the index still reads files written before they existed.)
    #[serde(default)]
    pub alpha: Option<f64>,
    #[serde(default)]
    pub seed_plan: Option<SeedPlan>,
    #[serde(default)]
    pub looks: Vec<Look>,
    #[serde(default)]
    pub predictions: Vec<PredictionRecord>,
}

/// One prediction's numbers; a value that is undefined (no test, an interval too wide to
/// exist) is `null`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub id: String,
    #[serde(default)]
    pub statement: String,
    pub metric: String,
    pub test: String,
    /// How the values were reduced to independent units, and the test over them.
    pub method: Option<String>,
    pub n_seeds: usize,
    pub n_cells: usize,
    pub duplicates_counted_once: usize,
    pub dropped_pairs: usize,
    pub effect: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub statistic: Option<f64>,
    pub p: Option<f64>,
    pub holm_p: Option<f64>,
    pub verdict: String,
    /// For an inconclusive verdict, which kind.
    pub inconclusive: Option<String>,
    pub margin: Option<f64>,
    pub min_effect: Option<f64>,
    /// Sd of the tested per-unit values, the effect detectable with 80% power at the seeds run
    /// and the look's α, and the seeds the observed effect and `min_effect` would need.
    pub unit_sd: Option<f64>,
    pub detectable_effect: Option<f64>,
    pub seeds_for_observed_effect: Option<usize>,
    pub seeds_for_min_effect: Option<usize>,
    /// The look that decided it (1-based), the seeds it used and the α it spent.
    pub look: usize,
    pub seeds_at_look: usize,
    pub alpha_at_look: Option<f64>,
    /// Its preconditions' tests.
    #[serde(default)]
    pub requires: Vec<ConditionRecord>,
    /// The unsilenced health checks that failed on its cells and rows.
    #[serde(default)]
    pub health: Vec<String>,
    /// The paper's own reported effect, when the study cites it.
    #[serde(default)]
    pub paper: Option<PaperEffect>,
}

/// One precondition's test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionRecord {
    pub condition: String,
    pub n_seeds: usize,
    pub effect: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p: Option<f64>,
    pub met: bool,
    pub no_test: Option<String>,
}

impl ConditionRecord {
    fn new(design: &Design, c: &ConditionOutcome) -> ConditionRecord {
        let t = c.test.as_ref();
        ConditionRecord {
            condition: condition_text(design, c),
            n_seeds: t.map_or(0, |t| t.seeds),
            effect: t.and_then(|t| finite(t.effect)),
            ci_low: t.and_then(|t| finite(t.ci_low)),
            ci_high: t.and_then(|t| finite(t.ci_high)),
            p: t.and_then(|t| finite(t.p_value)),
            met: c.met,
            no_test: c.no_test.clone(),
        }
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A condition as stated, with its own `where` (the cells it narrows the prediction's to).
fn condition_text(design: &Design, c: &ConditionOutcome) -> String {
    let own: Vec<String> = c.condition.filter.iter().map(|(a, l)| format!("{} = {l}", design.axes[*a].key)).collect();
    match own.is_empty() {
        true => c.condition.describe(),
        false => format!("{} (where {})", c.condition.describe(), own.join(", ")),
    }
}

impl PredictionRecord {
    fn new(design: &Design, d: &Decision) -> PredictionRecord {
        let t = d.test.as_ref();
        let power = d.power.as_ref();
        PredictionRecord {
            id: d.prediction.id.clone(),
            statement: d.prediction.statement.clone(),
            metric: d.prediction.metric.clone(),
            test: d.prediction.test.describe().to_string(),
            method: t.map(|t| t.method.describe().to_string()),
            n_seeds: d.seeds(),
            n_cells: d.cells,
            duplicates_counted_once: d.duplicates,
            dropped_pairs: d.dropped,
            effect: t.and_then(|t| finite(t.effect)),
            ci_low: t.and_then(|t| finite(t.ci_low)),
            ci_high: t.and_then(|t| finite(t.ci_high)),
            statistic: t.and_then(|t| finite(t.statistic)),
            p: t.and_then(|t| finite(t.p_value)),
            holm_p: d.adjusted_p.and_then(finite),
            verdict: verdict_word(d.verdict).to_string(),
            inconclusive: d.inconclusive.map(|i| i.describe().to_string()),
            margin: d.prediction.margin,
            min_effect: d.prediction.min_effect,
            unit_sd: power.and_then(|p| finite(p.unit_sd)),
            detectable_effect: power.and_then(|p| finite(p.detectable_effect)),
            seeds_for_observed_effect: power.and_then(|p| p.seeds_for_observed),
            seeds_for_min_effect: power.and_then(|p| p.seeds_for_min_effect),
            look: d.look,
            seeds_at_look: d.seeds_run,
            alpha_at_look: power.map(|p| p.alpha),
            requires: d.conditions.iter().map(|c| ConditionRecord::new(design, c)).collect(),
            health: d.health.clone(),
            paper: d.prediction.paper.clone(),
        }
    }
}

impl VerdictFile {
    pub fn new(design: &Design, rows: &[Row], evaluation: &Evaluation) -> VerdictFile {
        let count = |v: Verdict| evaluation.decisions.iter().filter(|d| d.verdict == v).count();
        VerdictFile {
            name: design.name.to_string(),
            claim: design.claim.to_string(),
            paper: design.paper.map(str::to_string),
            supported: count(Verdict::Supported),
            contradicted: count(Verdict::Contradicted),
            inconclusive: count(Verdict::Inconclusive),
            not_applicable: count(Verdict::NotApplicable),
            health_warnings: evaluation.health.iter().filter(|f| f.silenced.is_none()).count(),
            failed_rows: rows.iter().filter(|r| r.failure.is_some()).count(),
            alpha: Some(ALPHA),
            seed_plan: Some(evaluation.plan),
            looks: evaluation.looks.clone(),
            predictions: evaluation.decisions.iter().map(|d| PredictionRecord::new(design, d)).collect(),
        }
    }
}

/// "10" or "looks at 5, 10, …, 40 (sequential)".
pub fn seed_design(design: &Design) -> String {
    let plan = design.plan;
    if plan.is_sequential() {
        let looks: Vec<String> = plan.looks().iter().map(|s| s.to_string()).collect();
        format!("sequential design, looks at {} seeds (min {}, max {}, step {})", looks.join(", "), plan.min, plan.max, plan.step)
    } else {
        design.seeds.to_string()
    }
}

/// The setup bullet that says what the unit of analysis is, which tests ran, and how α is
/// controlled.
pub fn statistics_paragraph(w: &mut String, evaluation: &Evaluation) {
    let _ = writeln!(w, "- Unit of analysis: the seed. The cells of one seed share its data split, usually its teacher and often the student's initial weights, so their differences are correlated; only seeds are independent. Each prediction's values are therefore reduced to one value per seed (or to contrasts between seeds) before testing, and a measurement that is the same row in several cells (a teacher compared across a student-side axis) counts once.");
    let mut methods: Vec<_> = evaluation.decisions.iter().filter_map(|d| d.test.as_ref().map(|t| t.method)).collect();
    methods.sort_by_key(|m| m.describe());
    methods.dedup();
    for m in methods {
        let _ = writeln!(w, "  - {}.", m.describe());
    }
    let n = evaluation.decisions.len();
    if evaluation.plan.is_sequential() {
        let _ = writeln!(w, "- Verdicts: sequential design. At each look, Holm's step-down correction runs over the predictions still undecided at the α that look spends (Lan–DeMets O'Brien–Fleming-type spending of α = {ALPHA} over the planned looks); by the union bound the family-wise error over all looks and the study's {n} predictions is at most {ALPHA}. A prediction is decided at the first look that rejects, or that shows it has 80% power for its `min_effect` and no such effect; later seeds do not change its verdict. The next look adds seeds only to the cells the undecided predictions use.");
    } else {
        let _ = writeln!(w, "- Verdicts: Holm's step-down correction across the study's {n} predictions at family-wise α = {ALPHA} (within this study only). Supported: the corrected test rejects with the predicted sign; contradicted: it rejects with the other sign (each direction is held at α/2).");
    }
    let _ = writeln!(w, "- Power: for the one-sample t test over the units, from the noncentral t distribution at the look's α before Holm (two-sided) and {:.0}% power, with the observed sd of the units; Wilcoxon's figures are the t test's scaled by its efficiency 3/π under normal data, never below the 6 seeds its exact test needs. Correlation figures are on the r scale (through Fisher z or the covariance scale).", POWER * 100.0);
}

fn expectation(d: &Decision) -> String {
    let p = &d.prediction;
    let what = match (&p.test, &p.comparison) {
        (TestKind::PitmanMorgan, _) => "variance difference",
        (TestKind::Pearson, _) => "r",
        (_, Comparison::Constant { .. }) => "mean − constant",
        _ => "difference",
    };
    match (p.expect, p.margin) {
        (Expect::Lower, None) => format!("expects {what} < 0"),
        (Expect::Higher, None) => format!("expects {what} > 0"),
        (Expect::Lower, Some(m)) => format!("non-inferiority: expects difference < {m}, tested as lhs − (rhs + {m}) < 0"),
        (Expect::Higher, Some(m)) => format!("non-inferiority: expects difference > −{m}, tested as lhs − (rhs − {m}) > 0"),
    }
}

fn seeds_text(n: Option<usize>) -> String {
    n.map_or("> 10⁶ or none".into(), |n| n.to_string())
}

/// The "Predictions" section: verdicts, power, looks, and the verdicts in words.
pub fn section(w: &mut String, design: &Design, evaluation: &Evaluation) {
    let decisions = &evaluation.decisions;
    let _ = writeln!(w, "## Predictions\n");
    if decisions.is_empty() {
        let _ = writeln!(w, "The study states no predictions.\n");
        return;
    }
    let _ = writeln!(w, "| id | prediction | metric | seeds | cells | effect (lhs − rhs; variance difference; r; Hodges–Lehmann for Wilcoxon) | 95% CI | p | Holm p | verdict |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for d in decisions {
        let p = &d.prediction;
        let cells = if p.filter.is_empty() { String::new() } else { format!(" (where {})", p.filter.iter().map(|(a, l)| format!("{} = {l}", design.axes[*a].key)).collect::<Vec<_>>().join(", ")) };
        let (effect, ci, pv) = match &d.test {
            Some(t) => (fmt_num(t.effect), format!("[{}, {}]", fmt_num(t.ci_low), fmt_num(t.ci_high)), fmt_p(t.p_value)),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let dup = if d.duplicates > 0 { format!(" ({} repeated measurements counted once)", d.duplicates) } else { String::new() };
        let _ = writeln!(w, "| {} | {}{cells}; {} | `{}` | {} | {}{dup} | {effect} | {ci} | {pv} | {} | **{}**{} |", p.id, p.statement, expectation(d), p.metric, d.seeds(), d.cells, d.adjusted_p.map(fmt_p).unwrap_or_else(|| "–".into()), verdict_word(d.verdict), marks(d));
    }
    let dropped: usize = decisions.iter().map(|d| d.dropped).sum();
    let _ = writeln!(w, "\nPairs dropped because a row failed or lacked the metric: {dropped}.\n");
    if decisions.iter().any(|d| !d.health.is_empty() || d.conditions.iter().any(|c| !c.met)) {
        let _ = writeln!(w, "⚠ marks a verdict made not applicable: by an unshown precondition (`requires`), or by a failed health check on its cells and rows (see Health checks). Such a claim is not judged here; its test is shown only for the record.\n");
    }
    conditions_table(w, design, decisions);
    replication_table(w, decisions);
    power_table(w, decisions);
    if evaluation.plan.is_sequential() {
        looks_table(w, evaluation);
    }
    let _ = writeln!(w, "In words, at this study's scale:\n");
    for d in decisions {
        let said = match d.verdict {
            Verdict::Supported => "reproduces".to_string(),
            Verdict::Contradicted => "does not reproduce: the data go the other way".to_string(),
            Verdict::Inconclusive => match (&d.no_test, d.inconclusive) {
                (Some(why), _) => format!("cannot be judged: {why}"),
                (None, Some(kind)) => format!("inconclusive: {}", kind.describe()),
                (None, None) => "inconclusive".to_string(),
            },
            Verdict::NotApplicable => format!("is not applicable here: {}", not_applicable_because(design, d)),
        };
        let _ = writeln!(w, "- `{}` {said}.", d.prediction.id);
    }
    let _ = writeln!(w);
}

/// " ⚠ precondition, not-converged" after a gated verdict.
fn marks(d: &Decision) -> String {
    let mut why: Vec<String> = Vec::new();
    if d.conditions.iter().any(|c| !c.met) {
        why.push("precondition".into());
    }
    why.extend(d.health.iter().cloned());
    if why.is_empty() { String::new() } else { format!(" ⚠ {}", why.join(", ")) }
}

/// Why a verdict is not applicable, in words.
fn not_applicable_because(design: &Design, d: &Decision) -> String {
    let mut why: Vec<String> = d.conditions.iter().filter(|c| !c.met).map(|c| format!("{} was not shown", condition_text(design, c))).collect();
    if !d.health.is_empty() {
        why.push(format!("health checks failed on its rows: {}", d.health.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")));
    }
    why.join("; ")
}

/// Each precondition's test: shown when it rejects at the look's α in the stated direction.
fn conditions_table(w: &mut String, design: &Design, decisions: &[Decision]) {
    if decisions.iter().all(|d| d.conditions.is_empty()) {
        return;
    }
    let _ = writeln!(w, "Preconditions (`requires`): each tested over the prediction's cells with the seed as the unit, at the look's α, two-sided and uncorrected; all of a prediction's conditions must be shown (an intersection–union test, which needs no correction). Effect: lhs − rhs, or mean − constant.\n");
    let _ = writeln!(w, "| id | condition | seeds | effect | 95% CI | p | shown |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for d in decisions {
        for c in &d.conditions {
            let (n, effect, ci, p) = match &c.test {
                Some(t) => (t.seeds.to_string(), fmt_num(t.effect), format!("[{}, {}]", fmt_num(t.ci_low), fmt_num(t.ci_high)), fmt_p(t.p_value)),
                None => ("–".into(), "–".into(), c.no_test.clone().unwrap_or_else(|| "no test".into()), "–".into()),
            };
            let _ = writeln!(w, "| {} | {} | {n} | {effect} | {ci} | {p} | {} |", d.prediction.id, condition_text(design, c), if c.met { "yes" } else { "**no**" });
        }
    }
    let _ = writeln!(w);
}

/// kdlab's effect beside the paper's own, where the study cites it.
fn replication_table(w: &mut String, decisions: &[Decision]) {
    if decisions.iter().all(|d| d.prediction.paper.is_none()) {
        return;
    }
    let _ = writeln!(w, "Beside the paper (the paper's effect on kdlab's scale: lhs − rhs, or mean − constant; a scaled-down design need not match its size, only its direction):\n");
    let _ = writeln!(w, "| id | kdlab effect [95% CI] | paper's effect | where the paper reports it | verdict |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for d in decisions {
        let Some(paper) = &d.prediction.paper else { continue };
        let ours = d.test.as_ref().map_or("–".to_string(), |t| format!("{} [{}, {}]", fmt_num(t.effect), fmt_num(t.ci_low), fmt_num(t.ci_high)));
        let _ = writeln!(w, "| {} | {ours} | {} {} | {} | {} |", d.prediction.id, fmt_num(paper.effect), paper.unit, paper.source, verdict_word(d.verdict));
    }
    let _ = writeln!(w);
}

/// The "Health checks" section: each check's rule and what it found, silenced ones with the
/// study's reason.
pub fn health_section(w: &mut String, findings: &[Finding], silenced: &[(String, String)]) {
    let _ = writeln!(w, "## Health checks\n");
    let _ = writeln!(w, "Each check reads the results table. A finding that touches a prediction's cells and compared rows makes its verdict not applicable (⚠), unless the study silences the check with a reason.\n");
    let _ = writeln!(w, "| check | rule | result |");
    let _ = writeln!(w, "|---|---|---|");
    for check in health::CHECKS {
        let found: Vec<&Finding> = findings.iter().filter(|f| f.check == check.name()).collect();
        let result = match (found.len(), silenced.iter().find(|(n, _)| n == check.name())) {
            (0, None) => "passed".to_string(),
            (0, Some(_)) => "passed (silenced)".to_string(),
            (n, None) => format!("**{n} finding{}**", if n == 1 { "" } else { "s" }),
            (n, Some(_)) => format!("{n} finding{} (silenced)", if n == 1 { "" } else { "s" }),
        };
        let _ = writeln!(w, "| `{}` | {} | {result} |", check.name(), check.rule());
    }
    let _ = writeln!(w);
    for (name, why) in silenced {
        let _ = writeln!(w, "- `{name}` is silenced by the study: {why}");
    }
    if !silenced.is_empty() {
        let _ = writeln!(w);
    }
    for f in findings {
        let mark = if f.silenced.is_some() { " (silenced)" } else { "" };
        let _ = writeln!(w, "- `{}`{mark}: {}.", f.check, f.detail);
    }
    if !findings.is_empty() {
        let _ = writeln!(w);
    }
}

fn power_table(w: &mut String, decisions: &[Decision]) {
    let _ = writeln!(w, "Power (80%, at the look's α before Holm; the unit is the seed, or the seed contrast for variance and within-cell correlation tests):\n");
    let _ = writeln!(w, "| id | test over units | sd per unit | detectable effect | seeds for the observed effect | min_effect | seeds for min_effect |");
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for d in decisions {
        let Some(power) = &d.power else {
            let _ = writeln!(w, "| {} | {} | – | – | – | {} | – |", d.prediction.id, d.no_test.as_deref().unwrap_or("no test"), d.prediction.min_effect.map(fmt_num).unwrap_or_else(|| "–".into()));
            continue;
        };
        let method = d.test.as_ref().map(|t| format!("{} over {} {}s", t.method.short(), t.units, t.method.unit())).unwrap_or_default();
        let _ = writeln!(
            w,
            "| {} | {method} | {} | {} | {} | {} | {} |",
            d.prediction.id,
            fmt_num(power.unit_sd),
            fmt_num(power.detectable_effect),
            seeds_text(power.seeds_for_observed),
            d.prediction.min_effect.map(fmt_num).unwrap_or_else(|| "–".into()),
            if d.prediction.min_effect.is_some() { seeds_text(power.seeds_for_min_effect) } else { "–".into() },
        );
    }
    let _ = writeln!(w);
}

fn looks_table(w: &mut String, evaluation: &Evaluation) {
    let _ = writeln!(w, "Looks of the sequential design:\n");
    let _ = writeln!(w, "| look | seeds | α spent | decided at this look |");
    let _ = writeln!(w, "|---|---|---|---|");
    for look in &evaluation.looks {
        let decided = if look.decided.is_empty() { "–".to_string() } else { look.decided.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ") };
        let _ = writeln!(w, "| {} | {} | {} | {decided} |", look.index, look.seeds, fmt_p(look.alpha));
    }
    if let Some(next) = &evaluation.next {
        let _ = writeln!(w, "\nThe design is not finished: look {} needs seeds 0..{} of cells {:?}.", next.index, next.seeds, next.cells);
    } else if let Some(last) = evaluation.looks.last() {
        let stopped = if last.seeds < evaluation.plan.max { format!("stopped early at {} of at most {} seeds: every prediction was decided", last.seeds, evaluation.plan.max) } else { format!("ran to its maximum of {} seeds", evaluation.plan.max) };
        let _ = writeln!(w, "\nThe design {stopped}.");
    }
    let _ = writeln!(w);
}
