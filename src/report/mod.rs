//! The Markdown report of a study, its SVG figures, and the index `README.md` of all reports.
//!
//! Layout: `<out>/<study>.md` links figures in `<out>/<study>/`; `<out>/README.md` lists every
//! study with its verdict counts (read from each study's `verdicts.json`). Only this module
//! knows Markdown. Every file is written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsio;
use crate::models::student::EARLY_STOPPING_RULE;
use crate::plot::{self, Interval, Series};
use crate::provenance::Provenance;
use crate::metric::{Better, MetricInfo, Section};
use crate::registry::Registry;
use crate::results::{self, Row, RowKind};
use crate::stats::{self, Summary, Verdict};
use crate::study::{self, Study};
use crate::theory;
use crate::verdicts::{self, Decision, Design, Evaluation};

pub mod predictions;

pub use predictions::{PredictionRecord, VerdictFile};

/// The protocol sections: title and their tables' sections. A section appears when its rows
/// carry a metric that only it shows (the protocols share some metric names).
const PROTOCOL_SECTIONS: &[(&str, &[Section])] = &[
    ("Fidelity metrics", &[Section::Fidelity(0), Section::Fidelity(1), Section::Fidelity(2), Section::Fidelity(3)]),
    ("Method metrics", &[Section::Method]),
];

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "supported",
        Verdict::Contradicted => "contradicted",
        Verdict::Inconclusive => "inconclusive",
        Verdict::NotApplicable => "not applicable",
    }
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a != 0.0 && (a < 1e-3 || a >= 1e5) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "–".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn fmt_summary(s: &Summary) -> String {
    if s.n == 0 {
        "–".into()
    } else if s.n < 2 {
        format!("{} (n=1)", fmt_num(s.mean))
    } else {
        format!("{} [{}, {}]", fmt_num(s.mean), fmt_num(s.ci_low), fmt_num(s.ci_high))
    }
}

/// Values of `metric` for (cell, arm) over seeds, failed rows excluded.
fn values(rows: &[Row], cell: usize, arm: &str, metric: &str) -> Vec<f64> {
    rows.iter().filter(|r| r.cell_index == cell && r.arm == arm && r.failure.is_none()).filter_map(|r| r.get(metric)).collect()
}

fn cell_title(study: &Study, cell: &crate::study::Cell) -> String {
    if study.axes.is_empty() {
        "All data".to_string()
    } else {
        study.axes.iter().zip(&cell.levels).map(|(a, l)| format!("{} = {l}", a.key)).collect::<Vec<_>>().join(", ")
    }
}

/// The metrics of `names` that some row of `cell` carries.
pub(crate) fn present_metrics<'a>(names: &[&'a str], rows: &[Row], cell: usize) -> Vec<&'a str> {
    names.iter().copied().filter(|m| rows.iter().any(|r| r.cell_index == cell && r.get(m).is_some())).collect()
}

/// A cell's table: one line per shown arm, mean [95% CI] of each metric over seeds, with n.
pub(crate) fn cell_table(w: &mut String, arms: &[String], rows: &[Row], cell: usize, metrics: &[&str]) {
    let _ = writeln!(w, "| arm | n | {} |", metrics.join(" | "));
    let _ = writeln!(w, "|---|---|{}", "---|".repeat(metrics.len()));
    for arm in arms {
        let n = rows.iter().filter(|r| r.cell_index == cell && &r.arm == arm && r.failure.is_none()).count();
        let cells: Vec<String> = metrics.iter().map(|m| fmt_summary(&stats::summarize(&values(rows, cell, arm, m)))).collect();
        let _ = writeln!(w, "| {arm} | {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(w);
}

/// One line per metric of `names` that some row carries: its description and direction.
pub(crate) fn metric_legend(w: &mut String, registry: &Registry, names: &[&str], rows: &[Row]) {
    for metric in names.iter().filter(|m| rows.iter().any(|r| r.get(m).is_some())) {
        if let Some(info) = registry.metric(metric) {
            let _ = writeln!(w, "- `{}`: {} ({}; {}).", info.name, info.description, info.unit, match info.better {
                Better::Lower => "lower is better",
                Better::Higher => "higher is better",
                Better::Neither => "a measurement, not a score",
            });
        }
    }
    let _ = writeln!(w);
}

/// `metric` of every computed row of `cell`, keyed by (seed, arm).
fn values_by_seed(rows: &[Row], cell: usize, metric: &str) -> BTreeMap<(usize, String), f64> {
    rows.iter().filter(|r| r.cell_index == cell && r.failure.is_none()).filter_map(|r| Some(((r.seed, r.arm.clone()), r.get(metric)?))).collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 { s[m] } else { (s[m - 1] + s[m]) / 2.0 }
}

/// Writes the report, its figures, `verdicts.json`, and refreshes the index. Returns the
/// report's path.
pub fn render_all(study: &Study, rows: &[Row], provenance: &Provenance, out: &Path) -> io::Result<PathBuf> {
    let dir = out.join(&study.name);
    let evaluation = verdicts::evaluate(study, rows);
    let figures = write_figures(study, rows, &evaluation.decisions, &dir)?;
    let markdown = render(&Report { study, rows, evaluation: &evaluation, prov: provenance, figures: &figures, rendered_by: crate::provenance::git_state() });
    let report = out.join(format!("{}.md", study.name));
    fsio::write_atomic(&report, markdown.as_bytes())?;
    let verdicts = VerdictFile::new(&study.into(), rows, &evaluation);
    fsio::write_atomic(&dir.join("verdicts.json"), serde_json::to_string_pretty(&verdicts).expect("serialisable").as_bytes())?;
    write_index(out)?;
    Ok(report)
}

/// Re-renders a report from a results directory (`<out>/<study>/`) without recomputing; the
/// study is read against `registry`, which must know its methods and metrics.
pub fn rerender(results_dir: &Path, registry: &Registry) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let provenance: Provenance = serde_json::from_slice(&std::fs::read(results_dir.join("provenance.json"))?)?;
    let source = std::fs::read_to_string(results_dir.join("study.toml"))?;
    // A sequential run is read with the file's own plan; any other with the seeds it ran.
    let seeds = if provenance.seed_plan.is_some() { None } else { Some(provenance.seeds) };
    let study = study::parse(Path::new(&provenance.study_file), &source, &study::LoadOptions { seeds, quick: provenance.quick, registry: registry.clone() })?;
    let axes: Vec<String> = study.axes.iter().map(|a| a.key.clone()).collect();
    let rows = results::read(results_dir, &axes, study.registry.metrics())?;
    let out = results_dir.parent().unwrap_or(Path::new("."));
    Ok(render_all(&study, &rows, &provenance, out)?)
}

/// The arms shown, teacher first.
fn shown_arms(study: &Study, rows: &[Row]) -> Vec<String> {
    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold).then(|| RowKind::CrossfitTeacher.arm().to_string());
    let oracle = rows.iter().any(|r| r.kind() == RowKind::Oracle).then(|| RowKind::Oracle.arm().to_string());
    std::iter::once(RowKind::Teacher.arm().to_string()).chain(crossfit).chain(oracle).chain(study.arms.iter().map(|a| a.name().to_string())).collect()
}

/// The metrics a figure is drawn for: those the predictions name, then accuracy.
pub(crate) fn figure_metrics(decisions: &[Decision]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for d in decisions {
        if !names.contains(&d.prediction.metric) {
            names.push(d.prediction.metric.clone());
        }
    }
    if !names.iter().any(|n| n == "accuracy") {
        names.push("accuracy".into());
    }
    names
}

/// One chart per metric of `metrics`: each arm's mean and 95% CI over seeds against the first
/// axis's levels, a line per level combination of the other axes. Returns (metric, path
/// relative to the reports directory) per chart written.
pub(crate) fn interval_figures(design: &Design, arms: &[String], rows: &[Row], metrics: &[String], dir: &Path) -> io::Result<Vec<(String, String)>> {
    let mut figures = Vec::new();
    // x: the first axis's levels (or one point when the study has no grid).
    let (x_label, levels): (String, Vec<String>) = match design.axes.first() {
        Some(a) => (a.key.clone(), a.levels.clone()),
        None => ("cell".into(), vec!["all".into()]),
    };
    // Other axes' level combinations each get their own line per arm.
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (index, cell) in design.cells.iter().enumerate() {
        groups.entry(cell.iter().skip(1).cloned().collect()).or_default().push(index);
    }
    for metric in metrics {
        let metric = metric.clone();
        let mut series = Vec::new();
        for arm in arms {
            for (rest, cells) in &groups {
                let points = levels
                    .iter()
                    .map(|level| {
                        let &cell = cells.iter().find(|&&c| design.cells[c].first().map(|l| l == level).unwrap_or(true))?;
                        let v = values(rows, cell, arm, &metric);
                        if v.is_empty() {
                            return None;
                        }
                        let s = stats::summarize(&v);
                        Some(Interval { mean: s.mean, low: s.ci_low, high: s.ci_high })
                    })
                    .collect::<Vec<_>>();
                if points.iter().all(Option::is_none) {
                    continue;
                }
                let name = if rest.is_empty() { arm.clone() } else { format!("{arm} ({})", rest.join(", ")) };
                series.push(Series { name, points });
            }
        }
        let title = format!("{}: {metric} (mean, 95% CI, n = seeds)", design.name);
        let svg = plot::interval_chart(&title, &x_label, &metric, &levels, &series).map_err(io::Error::other)?;
        let file = format!("fig-{metric}.svg");
        fsio::write_atomic(&dir.join(&file), svg.as_bytes())?;
        figures.push((metric, format!("{}/{file}", design.name)));
    }
    Ok(figures)
}

fn write_figures(study: &Study, rows: &[Row], decisions: &[Decision], dir: &Path) -> io::Result<Vec<(String, String)>> {
    let mut metrics = figure_metrics(decisions);
    // The teacher's in-sample vs out-of-fold gap, where the study cross-fits.
    if rows.iter().any(|r| r.get("teacher_oof_gap").is_some()) && !metrics.iter().any(|m| m == "teacher_oof_gap") {
        metrics.push("teacher_oof_gap".into());
    }
    let mut figures = interval_figures(&study.into(), &shown_arms(study, rows), rows, &metrics, dir)?;
    // Reliability diagrams, one per cell: each model's bins pooled over seeds (equal-width bins
    // share their edges across seeds, so counts add and means are count-weighted).
    for cell in &study.cells {
        let curves: Vec<plot::ReliabilityCurve> = shown_arms(study, rows)
            .into_iter()
            .filter_map(|arm| {
                let mut pooled: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
                for r in rows.iter().filter(|r| r.cell_index == cell.index && r.arm == arm && r.failure.is_none()) {
                    for b in &r.reliability {
                        let e = pooled.entry(b.lower.to_bits()).or_default();
                        e.0 += b.mean_confidence * b.count as f64;
                        e.1 += b.accuracy * b.count as f64;
                        e.2 += b.count;
                    }
                }
                let mut bins: Vec<(f64, f64, usize)> = pooled.into_values().map(|(c, a, n)| (c / n as f64, a / n as f64, n)).collect();
                bins.sort_by(|a, b| a.0.total_cmp(&b.0));
                (!bins.is_empty()).then_some(plot::ReliabilityCurve { name: arm, bins })
            })
            .collect();
        if curves.is_empty() {
            continue;
        }
        let title = format!("reliability, cell {}: {}", cell.index, cell_title(study, cell));
        let svg = plot::reliability_chart(&title, &curves).map_err(io::Error::other)?;
        let file = format!("fig-reliability-cell{}.svg", cell.index);
        fsio::write_atomic(&dir.join(&file), svg.as_bytes())?;
        figures.push((format!("reliability diagram, cell {} (test points pooled over seeds; equal-width bins; marker area ∝ share of points)", cell.index), format!("{}/{file}", study.name)));
    }
    // Loss slices of a fidelity study (first seed, `kd` arm).
    let surfaces: Vec<crate::loss_surface::LossSurface> = std::fs::read(dir.join(LOSS_SURFACES)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    for surface in &surfaces {
        let Some(cell) = study.cells.get(surface.cell_index) else { continue };
        let grid = plot::SurfaceGrid {
            alpha: &surface.alpha,
            beta: &surface.beta,
            values: &surface.loss,
            points: vec![("student, initial", surface.initial), ("student, final", surface.fin), ("teacher", surface.teacher)],
        };
        let title = format!("distillation loss, cell {}: {}", cell.index, cell_title(study, cell));
        let svg = plot::surface_chart(&title, "along final − initial student", "toward the teacher", &grid).map_err(io::Error::other)?;
        let file = format!("fig-loss-surface-cell{}.svg", cell.index);
        fsio::write_atomic(&dir.join(&file), svg.as_bytes())?;
        figures.push((
            format!("loss surface, cell {} (seed {}, `{}`): KL(teacher ‖ student) at the training temperature on up to 512 distillation rows, on the plane through the initial student (origin), the final student and the teacher; axes in weight-space units", cell.index, surface.seed, surface.arm),
            format!("{}/{file}", study.name),
        ));
    }
    Ok(figures)
}

/// File (in a study's results directory) of its loss slices.
pub const LOSS_SURFACES: &str = "loss-surfaces.json";

/// What a report is rendered from.
struct Report<'a> {
    study: &'a Study,
    rows: &'a [Row],
    evaluation: &'a Evaluation,
    prov: &'a Provenance,
    figures: &'a [(String, String)],
    /// The git commit and dirty flag of the code rendering now (verdicts are decided by it).
    rendered_by: (String, Option<bool>),
}

/// The report's sections, in order.
type SectionFn = fn(&mut String, &Report);
const SECTIONS: &[(&str, SectionFn)] = &[
    ("header", header),
    ("setup", setup),
    ("predictions", predictions_section),
    ("health", health_section),
    ("results", results_section),
    ("protocols", protocol_sections),
    ("diagnostics", diagnostics_section),
    ("rate-checks", rate_checks_section),
    ("figures", figures_section),
    ("failed-rows", failed_rows_section),
    ("provenance", provenance_section),
];

fn render(report: &Report) -> String {
    let mut md = String::new();
    for (_, section) in SECTIONS {
        section(&mut md, report);
    }
    md
}

/// The title, the claim and the verdict counts.
fn header(w: &mut String, r: &Report) {
    let Report { study, rows, evaluation, .. } = *r;
    let decisions = &evaluation.decisions;
    let _ = writeln!(w, "# {}\n", study.name);
    let _ = writeln!(w, "**Claim.** {}\n", study.claim);
    if let Some(d) = &study.description {
        let _ = writeln!(w, "{d}\n");
    }
    let failed = rows.iter().filter(|r| r.failure.is_some()).count();
    let count = |v: Verdict| decisions.iter().filter(|d| d.verdict == v).count();
    let warnings = evaluation.health.iter().filter(|f| f.silenced.is_none()).count();
    let _ = writeln!(
        w,
        "**Verdicts:** {} supported, {} contradicted, {} inconclusive, {} not applicable (of {} predictions). Health warnings: {warnings}. Failed rows: {failed}.\n",
        count(Verdict::Supported),
        count(Verdict::Contradicted),
        count(Verdict::Inconclusive),
        count(Verdict::NotApplicable),
        decisions.len()
    );
}

/// The design: seeds, grid, arms, teachers, protocols and the statistics used.
fn setup(w: &mut String, r: &Report) {
    let Report { study, rows, evaluation, prov, .. } = *r;
    let _ = writeln!(w, "## Setup\n");
    let _ = writeln!(w, "- Seeds: {} (base seed {}){}; cells: {}; rows: {}.", predictions::seed_design(&study.into()), study.base_seed, if study.quick { ", quick smoke version" } else { "" }, study.cells.len(), rows.len());
    if study.axes.is_empty() {
        let _ = writeln!(w, "- Grid: none (a single cell).");
    }
    for a in &study.axes {
        let _ = writeln!(w, "- Grid axis `{}`: {}.", a.key, a.levels.join(", "));
    }
    let _ = writeln!(w, "- Arms:");
    for arm in &study.arms {
        let _ = writeln!(w, "  - `{}`: {}.", arm.name(), arm.description());
    }
    let _ = writeln!(w, "  - `teacher`: the teacher's own predictions (not a student).");
    if rows.iter().any(|r| r.kind() == RowKind::Oracle) {
        let _ = writeln!(w, "  - `oracle`: the oracle student f0, the student class fit to the exact p0 on a fresh sample (once per cell); `student_error` = E‖f̂ − f0‖² measures each student against it.");
    }
    if study.arms.iter().any(|a| a.needs().out_of_fold) {
        let _ = writeln!(w, "  - `crossfit-teacher`: the cross-fit fold teachers' own scores, each metric averaged over the folds; `teacher_error_out_of_fold` is the error of the out-of-fold targets.");
    }
    if prov.teacher_uses > 0 {
        let distinct = prov.teachers_fitted + prov.teachers_loaded;
        let _ = writeln!(w, "- Teachers: {distinct} distinct teachers for the {} units computed in this run ({} fitted, {} loaded from the teacher cache of earlier runs); cells with the same data, teacher and cross-fit settings share one teacher per seed ({} units reused another unit's teacher).", prov.teacher_uses, prov.teachers_fitted, prov.teachers_loaded, prov.teacher_uses - distinct);
    }
    if let Some(crate::models::TeacherSpec::Predictions(files)) = study.cells.first().map(|c| &c.config.teacher) {
        let split = match files.shared {
            true => format!("one set in `{}` for every seed: every seed uses the same split and the same teacher, so seeds differ only in the students' own randomness, and the verdicts speak of that randomness alone, not of new data", files.dir),
            false => format!("one set per seed in `{}/seed-<s>/`, whose rows are that seed's split", files.dir),
        };
        let _ = writeln!(w, "- Teacher: class probabilities read from files (SHA-256 `{}`), not fitted by kdlab: {split}. The `teacher` row's metrics are those of its test probabilities; the `crossfit-teacher` row has none (they would need the fold teachers).", files.files_sha256);
    }
    let _ = writeln!(w, "- Pairing: for a given seed, every arm of a cell sees the same data, the same teacher and the same student initialisation.");
    if let Some(f) = study.cells.first().and_then(|c| c.config.fidelity.as_ref()) {
        let _ = writeln!(w, "- Fidelity protocol: teachers are networks kept in memory; each student is distilled on the distillation stream (its training rows{}), and the teacher labels every batch as the student sees it (augmented or mixed rows get the teacher's probabilities of those rows). `kd-independent` is the control of Stanton et al.: a student distilled the same way from an independent teacher (same data, another seed), scored against this cell's teacher, so its `agreement` is A(t, s′) beside A(t, s) of `kd`.", match f.extra {
            crate::fidelity::Extra::None => String::new(),
            crate::fidelity::Extra::Fresh => " plus `fidelity.n_extra` fresh unlabeled draws of the generator".to_string(),
            crate::fidelity::Extra::Noise => " plus `fidelity.n_extra` images of uniform noise over the pixel range".to_string(),
            crate::fidelity::Extra::Ood => " plus `fidelity.n_extra` out-of-distribution stand-ins: training images under one fixed random pixel permutation".to_string(),
        });
        let _ = writeln!(w, "- Fidelity definitions: `agreement` = top-1 agreement of student and teacher on the clean test set; `kl_teacher_student` = mean KL(teacher ‖ student) at τ = 1 in nats, whatever τ the student trained at (Stanton et al.'s direction; Guo et al.'s code reports KL(student ‖ teacher) × 10, which kdlab does not); train fidelity (`train_agreement`, `train_kl`) is measured with the final weights on one seeded pass of the student's augmentation over the distillation stream, against the teacher the student was distilled from, not on the fly during training; `*_augmented` metrics use the test images under the student's augmentation with this cell's teacher labelling the same images; MI is in bits (Miller–Madow) on predicted labels.");
        if f.init_lambda.is_some() {
            let _ = writeln!(w, "- Initialisation: students start at λ·θ_teacher + (1 − λ)·θ_random (Stanton et al.'s λ; the released code's `loc_param` is 1 − λ, and it also scales the learning rate, which kdlab does not).");
        }
        if f.attention {
            let _ = writeln!(w, "- Attention: class-activation maps of the teacher's members (the head applied at each position of the last conv layer; Guo et al.'s released map sums the class weights, Σ_c w_c, a direction that CE and KD gradients never change, so it stays at its initial value under SGD without weight decay: see `sumcam_direction_drift`; the predicted-class map is the robustness variant), bilinearly upsampled, min–max normalised per image, thresholded at {}; IoU pooled per batch of 128 test images. Networks here have no batch normalisation, so the released code's train-mode BatchNorm confound does not arise.", f.cam_threshold);
        }
    }
    let _ = writeln!(w, "- Student training: {EARLY_STOPPING_RULE}.");
    let _ = writeln!(w, "- Summaries: mean and two-sided 95% Student-t interval over seeds, with n; failed rows are excluded from every statistic.");
    predictions::statistics_paragraph(w, evaluation);
    if rows.iter().any(|r| r.get("excess_risk").is_some()) {
        let _ = writeln!(w, "- Population metrics (`excess_risk`, `bayes_sq_error`, `teacher_error_population`) use a fresh Monte-Carlo sample from the known p0, never the test set.");
    }
    let _ = writeln!(w, "\n<details><summary>Study file</summary>\n\n```toml\n{}\n```\n</details>\n", study.source.trim_end());
}

/// The predictions, their verdicts and their statistics.
fn predictions_section(w: &mut String, r: &Report) {
    predictions::section(w, &r.study.into(), r.evaluation);
}

/// The health checks and what they found.
fn health_section(w: &mut String, r: &Report) {
    predictions::health_section(w, &r.evaluation.health, &r.study.silenced);
}

/// Per-cell results tables of the metrics every study has.
fn results_section(w: &mut String, r: &Report) {
    let Report { study, rows, .. } = *r;
    let _ = writeln!(w, "## Results\n");
    let _ = writeln!(w, "Mean [95% CI] over seeds; n is the number of seeds that computed.\n");
    let shown = study.registry.in_section(Section::Results);
    metric_legend(w, &study.registry, &shown, rows);
    for cell in &study.cells {
        let _ = writeln!(w, "### Cell {}: {}\n", cell.index, cell_title(study, cell));
        cell_table(w, &shown_arms(study, rows), rows, cell.index, &present_metrics(&shown, rows, cell.index));
    }
}

/// The fidelity and method protocols' own metrics, where their rows have them.
fn protocol_sections(w: &mut String, r: &Report) {
    let Report { study, rows, .. } = *r;
    for (title, sections) in PROTOCOL_SECTIONS {
        let groups: Vec<Vec<&str>> = sections.iter().map(|&s| study.registry.in_section(s)).collect();
        let shown = |m: &&MetricInfo| m.sections.iter().any(|s| sections.contains(s));
        let all: Vec<&str> = study.registry.metrics().iter().copied().filter(shown).map(|m| m.name).collect();
        let own: Vec<&str> = study.registry.metrics().iter().copied().filter(|m| m.sections.iter().all(|s| sections.contains(s)) && shown(m)).map(|m| m.name).collect();
        if !rows.iter().any(|r| own.iter().any(|m| r.get(m).is_some())) {
            continue;
        }
        let _ = writeln!(w, "## {title}\n");
        let _ = writeln!(w, "Mean [95% CI] over seeds, per cell; a metric a row does not have is –.\n");
        metric_legend(w, &study.registry, &all, rows);
        for cell in &study.cells {
            let _ = writeln!(w, "### {title}, cell {}: {}\n", cell.index, cell_title(study, cell));
            for group in &groups {
                let present = present_metrics(group, rows, cell.index);
                if !present.is_empty() {
                    cell_table(w, &shown_arms(study, rows), rows, cell.index, &present);
                }
            }
        }
    }
}

/// The `[diagnostics]` metrics, when the study asked for them.
fn diagnostics_section(w: &mut String, r: &Report) {
    let Report { study, rows, .. } = *r;
    // `ece` is in every row; the section speaks only when the study asked for diagnostics.
    if study.cells.iter().any(|c| c.config.diagnostics.is_some()) {
        let _ = writeln!(w, "## Diagnostics\n");
        let _ = writeln!(w, "Asked for by the study's `[diagnostics]` section; computed on the test set for the teacher and every student. Mean [95% CI] over seeds; the per-seed uncertainty of each number (permutation null, bootstrap interval) is its own column. Each number is labelled with what it estimates: a certified bound, a heuristic, or an estimate.\n");
        let shown = study.registry.in_section(Section::Diagnostics);
        metric_legend(w, &study.registry, &shown, rows);
        for cell in &study.cells {
            let present = present_metrics(&shown, rows, cell.index);
            if present.is_empty() {
                continue;
            }
            let _ = writeln!(w, "### Diagnostics, cell {}: {}\n", cell.index, cell_title(study, cell));
            cell_table(w, &shown_arms(study, rows), rows, cell.index, &present);
            let (lower, upper) = (values_by_seed(rows, cell.index, "lipschitz_lower"), values_by_seed(rows, cell.index, "lipschitz_upper"));
            let gaps: Vec<f64> = lower.iter().filter_map(|(key, lo)| upper.get(key).filter(|_| *lo > 0.0).map(|up| up / lo)).collect();
            if !gaps.is_empty() {
                let _ = writeln!(w, "Lipschitz gap (upper / lower bound, network models): median {} over {} models, largest {}.\n", fmt_num(median(&gaps)), gaps.len(), fmt_num(gaps.iter().copied().fold(f64::NAN, f64::max)));
            }
        }
    }
}

/// The reconstructed rate checks, when the study has the oracle's `student_error`.
fn rate_checks_section(w: &mut String, r: &Report) {
    let Report { study, rows, .. } = *r;
    let rates = theory::rate_checks(&study.arms, rows);
    if !rates.is_empty() {
        let _ = writeln!(w, "## Rate checks (reconstructed)\n");
        let _ = writeln!(w, "The paper's theorem constants were not available, so kdlab checks rates, not bounds: the OLS slope of log student error E‖f̂ − f0‖² on log teacher error E‖p̂ − p0‖² over every (cell, seed) of the arm, with a 95% t interval. Predicted: slope 1 for plain and cross-fit KD (teacher error passes at first order), slope 2 for the corrected arms (second order), until the student's own estimation error dominates and flattens the slope. This reconstruction, not the paper's statement, is what is tested.\n");
        let _ = writeln!(w, "| arm | teacher error on x | n | slope | 95% CI | predicted | CI contains the prediction |\n|---|---|---|---|---|---|---|");
        for rc in &rates {
            let f = &rc.fit;
            let contains = if f.slope_ci_low <= rc.predicted_slope && rc.predicted_slope <= f.slope_ci_high { "yes" } else { "no" };
            let _ = writeln!(w, "| {} | `{}` population error | {} | {} | [{}, {}] | {} | {contains} |", rc.arm, rc.teacher_error, f.n, fmt_num(f.slope), fmt_num(f.slope_ci_low), fmt_num(f.slope_ci_high), rc.predicted_slope);
        }
        let _ = writeln!(w);
    }
}

/// The figures written beside the report.
fn figures_section(w: &mut String, r: &Report) {
    let Report { figures, .. } = *r;
    let _ = writeln!(w, "## Figures\n");
    for (metric, path) in figures {
        let _ = writeln!(w, "![{metric}]({path})\n");
    }
}

/// Failed rows with their reasons.
fn failed_rows_section(w: &mut String, r: &Report) {
    let Report { rows, .. } = *r;
    let _ = writeln!(w, "## Failed rows\n");
    let failures: Vec<&Row> = rows.iter().filter(|r| r.failure.is_some()).collect();
    if failures.is_empty() {
        let _ = writeln!(w, "None: every row computed.\n");
    } else {
        let _ = writeln!(w, "{} rows failed and are excluded from every statistic above.\n", failures.len());
        let _ = writeln!(w, "| cell | seed | arm | reason |\n|---|---|---|---|");
        for r in failures {
            let _ = writeln!(w, "| {} | {} | {} | {} |", r.cell_index, r.seed, r.arm, r.failure.as_deref().unwrap_or(""));
        }
        let _ = writeln!(w);
    }
}

/// Where, when and by which code the results were computed.
fn provenance_section(w: &mut String, r: &Report) {
    let Report { study, prov, .. } = *r;
    let _ = writeln!(w, "## Provenance\n");
    let dirty = match prov.git_dirty {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let t = &prov.stage_seconds;
    let _ = writeln!(w, "| item | value |\n|---|---|");
    let _ = writeln!(w, "| study file | `{}` |", prov.study_file);
    let _ = writeln!(w, "| study SHA-256 | `{}` |", prov.study_sha256);
    let _ = writeln!(w, "| kdlab version | {} |", prov.kdlab_version);
    if !prov.code_fingerprint.is_empty() {
        let _ = writeln!(w, "| code fingerprint | `{}` (every unit computed by this code) |", prov.code_fingerprint);
    }
    let _ = writeln!(w, "| git commit | `{}` (uncommitted changes: {dirty}) |", prov.git_commit);
    // A report re-rendered from stored results decides its verdicts with the code of now.
    let (commit, now_dirty) = r.rendered_by.clone();
    if commit != prov.git_commit || now_dirty != prov.git_dirty {
        let now_dirty = match now_dirty {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let _ = writeln!(w, "| verdicts and report rendered by | kdlab {} at `{commit}` (uncommitted changes: {now_dirty}), from the stored results above |", env!("CARGO_PKG_VERSION"));
    }
    let _ = writeln!(w, "| seeds | {} (base seed {}; every draw derives from it) |", prov.seeds, prov.base_seed);
    let _ = writeln!(w, "| threads | {} |", prov.threads);
    let _ = writeln!(w, "| units computed / reused | {} / {} |", prov.units_computed, prov.units_reused);
    let _ = writeln!(w, "| teachers fitted / loaded from the cache / units that used them | {} / {} / {} |", prov.teachers_fitted, prov.teachers_loaded, prov.teacher_uses);
    let _ = writeln!(w, "| stage seconds (summed over units) | data {:.2}, teacher {:.2}, students {:.2}, metrics {:.2} |", t.data, t.teacher, t.students, t.metrics);
    let _ = writeln!(w, "| wall seconds | compute {:.2}, total {:.2} |", prov.compute_wall_seconds, prov.total_wall_seconds);
    if !prov.hosts.is_empty() {
        let _ = writeln!(w, "| hosts | {} |", prov.hosts.join(", "));
    }
    if let Some(s) = &prov.scheduler {
        let merge = s.merge_job_id.as_deref().map(|id| format!(", merged by job {id}")).unwrap_or_default();
        let _ = writeln!(w, "| scheduler | {}: job array {} ({} task jobs){merge} |", s.name, if s.array_job_ids.is_empty() { "–".to_string() } else { s.array_job_ids.join(", ") }, s.task_job_ids.len());
    }
    let _ = writeln!(w, "\nResults: `{0}/results.csv`, `{0}/results.parquet` (one row per cell, seed and arm); per-unit timings: `{0}/timings.csv`.", study.name);
}

/// Rewrites `<out>/README.md` from every `<out>/*/verdicts.json`.
pub fn write_index(out: &Path) -> io::Result<()> {
    let mut entries: Vec<VerdictFile> = Vec::new();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path().join("verdicts.json");
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(v) = serde_json::from_slice::<VerdictFile>(&bytes) {
                entries.push(v);
            }
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut md = String::from("# kdlab reports\n\nOne report per study. Holm's correction holds the family-wise error at α = 0.05 within each study (over its predictions and, for a sequential design, its looks); it does not reach across studies, so a sum of verdicts over the table below has no joint error guarantee: with many studies, some verdicts are expected to be wrong by chance.\n\n");
    md.push_str("A verdict is *not applicable* where a condition its claim holds under was not shown, or a health check failed on the rows it compares; such claims are not judged. Health warnings count the findings a study did not silence.\n\n");
    md.push_str("| study | claim | supported | contradicted | inconclusive | not applicable | health warnings | failed rows |\n|---|---|---|---|---|---|---|---|\n");
    for e in &entries {
        let _ = writeln!(md, "| [{0}]({0}.md) | {1} | {2} | {3} | {4} | {5} | {6} | {7} |", e.name, e.claim, e.supported, e.contradicted, e.inconclusive, e.not_applicable, e.health_warnings, e.failed_rows);
    }
    scoreboard(&mut md, &entries);
    fsio::write_atomic(&out.join("README.md"), md.as_bytes())
}

/// The replication scoreboard: each paper's claims as the studies test them, with the outcome
/// and, where a study cites it, the paper's own effect beside kdlab's.
fn scoreboard(md: &mut String, entries: &[VerdictFile]) {
    let mut papers: Vec<&str> = entries.iter().map(|e| e.paper.as_deref().unwrap_or("no paper named")).collect();
    papers.sort();
    papers.dedup();
    md.push_str("\n## Replication scoreboard\n\nEach paper's claims, as the studies test them at their scale: *reproduced* (supported), *not reproduced* (contradicted), *inconclusive*, or *not applicable here* (a precondition not shown or a health check failed, so not judged). kdlab's effect is lhs − rhs (or mean − constant) with its 95% CI; the paper's, where a study cites it, is on the same scale.\n");
    for paper in papers {
        let _ = writeln!(md, "\n### {paper}\n");
        md.push_str("| study | prediction | outcome | kdlab effect [95% CI] | paper's effect |\n|---|---|---|---|---|\n");
        for e in entries.iter().filter(|e| e.paper.as_deref().unwrap_or("no paper named") == paper) {
            for p in &e.predictions {
                let outcome = match p.verdict.as_str() {
                    "supported" => "reproduced",
                    "contradicted" => "**not reproduced**",
                    "not applicable" => "not applicable here",
                    other => other,
                };
                let num = |v: Option<f64>| v.map_or("–".to_string(), fmt_num);
                let ours = if p.effect.is_some() { format!("{} [{}, {}]", num(p.effect), num(p.ci_low), num(p.ci_high)) } else { "–".into() };
                let theirs = p.paper.as_ref().map_or("–".to_string(), |q| format!("{} {} ({})", fmt_num(q.effect), q.unit, q.source));
                let _ = writeln!(md, "| [{0}]({0}.md) | `{1}`: {2} | {outcome} | {ours} | {theirs} |", e.name, p.id, p.statement);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::StageTimes;

    const STUDY: &str = r#"name = "snapshot"
claim = "KD beats labels on a small fixed table."
seeds = 3
seed = 1
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = [100, 200]

[teacher]
kind = "forest"

[student]
kind = "mlp"

[diagnostics]
mutual_information = true

[[predictions]]
id = "kd-beats-labels"
metric = "accuracy"
compare = ["kd", "labels"]
expect = "higher"
"#;

    /// Two cells × three seeds of teacher, labels and kd rows with fixed metrics (results,
    /// diagnostics, a fidelity metric and the rate check's errors); one failed row.
    fn rows(study: &Study) -> Vec<Row> {
        let mut rows = Vec::new();
        for cell in &study.cells {
            for seed in 0..3 {
                for (a, arm) in ["teacher", "labels", "kd"].into_iter().enumerate() {
                    // A per-seed wobble, so differences between arms have a spread.
                    let wobble = 0.004 * ((seed * 7 + a * 3 + cell.index) % 5) as f64;
                    let base = 0.7 + 0.05 * a as f64 + 0.01 * seed as f64 + 0.02 * cell.index as f64 + wobble;
                    let failed = cell.index == 1 && seed == 2 && arm == "labels";
                    let error = 0.01 * (1.0 + seed as f64 + cell.index as f64);
                    let values = [
                        ("accuracy", base),
                        ("log_loss", 1.0 - base),
                        ("ece", 0.05 + 0.01 * seed as f64),
                        ("excess_risk", 0.1 / (1.0 + a as f64)),
                        ("teacher_error_population", error),
                        ("student_error", if a == 0 { f64::NAN } else { 0.5 * error + wobble / 10.0 }),
                        ("mi_teacher_student", 0.5 + wobble),
                        ("train_agreement", base - 0.1),
                    ];
                    let metrics = if failed { BTreeMap::new() } else { values.iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k.to_string(), *v)).collect() };
                    let failure = failed.then(|| "student: training diverged at epoch 3: loss is NaN".to_string());
                    rows.push(Row { cell_index: cell.index, cell_id: cell.id.clone(), levels: cell.levels.clone(), seed, arm: arm.into(), failure, metrics, reliability: Vec::new() });
                }
            }
        }
        rows
    }

    fn provenance(study: &Study) -> Provenance {
        let mut p = Provenance::collect(study, 2, 0, 6, StageTimes { data: 0.5, teacher: 1.0, students: 2.0, metrics: 0.25 }, 3.5, 4.0);
        (p.git_commit, p.git_dirty, p.code_fingerprint) = ("0123abc".into(), Some(false), "f1f2f3f4".into());
        p.hosts = vec!["node-1".into()];
        p
    }

    /// Each section's Markdown for the fixed table, against `tests/snapshots/report/<section>.md`.
    /// A missing snapshot is written and the test fails once, so a new one is read before it
    /// is trusted; delete a snapshot to accept a deliberate change.
    #[test]
    fn every_section_matches_its_snapshot() {
        let study = study::parse(Path::new("snapshot.toml"), STUDY, &study::LoadOptions::default()).unwrap();
        let rows = rows(&study);
        let evaluation = verdicts::evaluate(&study, &rows);
        let prov = provenance(&study);
        let figures = vec![("accuracy".to_string(), "snapshot/fig-accuracy.svg".to_string())];
        let report = Report { study: &study, rows: &rows, evaluation: &evaluation, prov: &prov, figures: &figures, rendered_by: ("4567def".into(), Some(false)) };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/report");
        let mut written = Vec::new();
        for (name, section) in SECTIONS {
            let mut md = String::new();
            section(&mut md, &report);
            let path = dir.join(format!("{name}.md"));
            match std::fs::read_to_string(&path) {
                Ok(expected) => assert_eq!(md, expected, "section `{name}` differs from {}", path.display()),
                Err(_) => {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, &md).unwrap();
                    written.push(path.display().to_string());
                }
            }
        }
        assert!(written.is_empty(), "new snapshots written (read them, then rerun): {written:?}");
        // The whole report is its sections in order.
        assert_eq!(render(&report), SECTIONS.iter().map(|(_, s)| { let mut md = String::new(); s(&mut md, &report); md }).collect::<String>());
    }
}
