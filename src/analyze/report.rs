//! The report of an analysis: what was read (files by SHA-256), the design the table implies,
//! the verdicts with their statistics, and per-cell means; `verdicts.json` and the table as
//! `results.csv` and `results.parquet` beside it, as for a study.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::predictions::{self, VerdictFile};
use crate::report::{cell_table, figure_metrics, interval_figures, metric_legend, present_metrics, write_index};
use crate::study::external::ExternalStudy;
use crate::verdicts::Evaluation;
use crate::{fsio, results};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Writes `<out>/<name>.md`, `<out>/<name>/verdicts.json` and the results files, and refreshes
/// the index of `out`.
pub fn write(study: &ExternalStudy, evaluation: &Evaluation, out: &Path) -> Result<PathBuf, BoxError> {
    let dir = out.join(&study.name);
    if dir.join("cells").is_dir() {
        return Err(format!("{} holds a study's results (its `cells/`); give the analysis another `name`, or another --out", dir.display()).into());
    }
    std::fs::create_dir_all(&dir)?;
    let rows = &study.table.rows;
    let axes: Vec<String> = study.axes.iter().map(|a| a.key.clone()).collect();
    let mut frame = results::to_frame(&study.name, &axes, rows, study.registry.metrics())?;
    results::write(&dir, &mut frame)?;
    let design = study.design();
    let verdicts = VerdictFile::new(&design, rows, evaluation);
    fsio::write_atomic(&dir.join("verdicts.json"), serde_json::to_string_pretty(&verdicts)?.as_bytes())?;
    let figures = interval_figures(&design, &arms_shown(study), rows, &figure_metrics(&evaluation.decisions), &dir)?;
    let report = out.join(format!("{}.md", study.name));
    fsio::write_atomic(&report, render(study, evaluation, &figures)?.as_bytes())?;
    write_index(out)?;
    Ok(report)
}

/// Every arm of the table, pseudo-arms (such as `teacher`) included, in order of first row.
fn arms_shown(study: &ExternalStudy) -> Vec<String> {
    study.table.rows.iter().fold(Vec::new(), |mut seen, r| {
        if !seen.contains(&r.arm) {
            seen.push(r.arm.clone());
        }
        seen
    })
}

fn render(study: &ExternalStudy, evaluation: &Evaluation, figures: &[(String, String)]) -> Result<String, BoxError> {
    let mut w = String::new();
    let _ = writeln!(w, "# {}\n", study.name);
    let _ = writeln!(w, "**Claim.** {}\n", study.claim);
    if let Some(d) = &study.description {
        let _ = writeln!(w, "{}\n", d.trim());
    }
    setup(&mut w, study, evaluation)?;
    predictions::section(&mut w, &study.design(), evaluation);
    predictions::health_section(&mut w, &evaluation.health, &study.silenced);
    results_section(&mut w, study);
    let _ = writeln!(w, "## Figures\n");
    for (metric, path) in figures {
        let _ = writeln!(w, "![{metric}]({path})\n");
    }
    Ok(w)
}

fn setup(w: &mut String, study: &ExternalStudy, evaluation: &Evaluation) -> Result<(), BoxError> {
    let table = &study.table;
    let results_sha = fsio::sha256_file(&study.results).map_err(|e| format!("{}: {e}", study.results.display()))?;
    let _ = writeln!(w, "## Setup\n");
    let (commit, dirty) = crate::provenance::git_state();
    let tree = match dirty {
        Some(true) => ", uncommitted changes",
        Some(false) => "",
        None => ", no git state",
    };
    let what = match study.from_probabilities {
        true => format!("test probabilities computed outside kdlab, read from `{}` (SHA-256 `{results_sha}`); kdlab computed each model's metrics from them ({} result rows)", study.results_as_written, table.rows.len()),
        false => format!("results computed outside kdlab, read from `{}` (SHA-256 `{results_sha}`, {} rows)", study.results_as_written, table.rows.len()),
    };
    let _ = writeln!(w, "- Input: {what}, as the analyze file `{}` (SHA-256 `{}`) says; decided by kdlab {} (commit {commit}{tree}).", study.path.display(), study.sha256, env!("CARGO_PKG_VERSION"));
    let seeds: Vec<String> = table.seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(w, "- Seeds: {} (the table's seed values {}, numbered 0 to {} in that order); cells: {}; arms: {}.", predictions::seed_design(&study.design()), seeds.join(", "), table.seeds.len() - 1, table.cells.len(), table.arms.join(", "));
    let _ = writeln!(w, "- Each seed is taken to be an independent replicate (its own data draw, teacher and initialisation); rows of one seed are paired across arms and cells. If the seeds of the experiment shared data or a teacher, the verdicts overstate the evidence.");
    predictions::statistics_paragraph(w, evaluation);
    let _ = writeln!(w);
    Ok(())
}

fn results_section(w: &mut String, study: &ExternalStudy) {
    let rows = &study.table.rows;
    let _ = writeln!(w, "## Results\n");
    let _ = writeln!(w, "Mean [95% CI] over seeds; n is the number of seeds with a row that did not fail.\n");
    let names: Vec<&str> = study.table.metrics.iter().map(String::as_str).collect();
    metric_legend(w, &study.registry, &names, rows);
    let arms = arms_shown(study);
    for (index, levels) in study.table.cells.iter().enumerate() {
        let title = if study.axes.is_empty() { "All data".to_string() } else { study.axes.iter().zip(levels).map(|(a, l)| format!("{} = {l}", a.key)).collect::<Vec<_>>().join(", ") };
        let _ = writeln!(w, "### Cell {index}: {title}\n");
        cell_table(w, &arms, rows, index, &present_metrics(&names, rows, index));
    }
}
