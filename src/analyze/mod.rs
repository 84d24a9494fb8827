//! `kdlab analyze`: the verdict engine on results computed anywhere. An analyze file
//! ([`crate::study::external`]) names a results table (one row per seed × arm: grid columns,
//! metric columns), the claim, the directions of metrics kdlab does not know, and predictions
//! in a study's schema. The verdicts are decided exactly as a study's are (the seed as the
//! unit, Holm's correction, power), and the report, `verdicts.json` and the table in Parquet
//! are written beside kdlab's own reports.

pub mod report;

use std::path::{Path, PathBuf};

use crate::registry::Registry;
use crate::study::external::{self, ExternalError, ExternalStudy};
use crate::verdicts::{self, Design};

impl ExternalStudy {
    /// The design the verdict engine reads.
    pub fn design(&self) -> Design<'_> {
        Design {
            name: &self.name,
            claim: &self.claim,
            paper: self.paper.as_deref(),
            axes: &self.axes,
            cells: self.table.cells.iter().map(Vec::as_slice).collect(),
            predictions: &self.predictions,
            plan: self.plan,
            seeds: self.plan.max,
            registry: &self.registry,
            silenced: &self.silenced,
        }
    }
}

/// Reads the analyze file at `path` against `registry`, decides its predictions and writes the
/// report under `out`; returns the report's path.
pub fn run(path: &Path, out: &Path, registry: Registry) -> Result<PathBuf, AnalyzeError> {
    let study = external::load(path, registry)?;
    let evaluation = verdicts::evaluate(study.design(), &study.table.rows);
    Ok(report::write(&study, &evaluation, out)?)
}

/// Why an analysis stopped.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Input(#[from] ExternalError),
    #[error("writing the report: {0}")]
    Output(#[from] Box<dyn std::error::Error + Send + Sync>),
}
