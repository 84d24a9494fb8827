//! Where a report's numbers came from: the study file's hash, the code's version and git state,
//! seeds, threads, and per-stage timings.

use serde::{Deserialize, Serialize};

use crate::results::StageTimes;
use crate::study::Study;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub study_file: String,
    pub study_sha256: String,
    pub kdlab_version: String,
    pub git_commit: String,
    pub git_dirty: Option<bool>,
    pub base_seed: u64,
    pub seeds: usize,
    pub quick: bool,
    pub threads: usize,
    pub units_computed: usize,
    pub units_reused: usize,
    /// Distinct teachers fitted for the computed units, and how many units used them (cells
    /// with the same data, teacher and cross-fit settings share one).
    #[serde(default)]
    pub teachers_fitted: usize,
    #[serde(default)]
    pub teacher_uses: usize,
    /// Teachers loaded from the teacher cache of earlier runs instead of being fit.
    #[serde(default)]
    pub teachers_loaded: usize,
    /// Seconds summed over units, per stage (CPU-side work, across threads).
    pub stage_seconds: StageTimes,
    /// Wall-clock seconds of the parallel compute phase, and of the whole run.
    pub compute_wall_seconds: f64,
    pub total_wall_seconds: f64,
    pub host_os: String,
}

impl Provenance {
    pub fn collect(
        study: &Study,
        threads: usize,
        units_reused: usize,
        units_computed: usize,
        stage_seconds: StageTimes,
        compute_wall_seconds: f64,
        total_wall_seconds: f64,
    ) -> Provenance {
        let (git_commit, git_dirty) = git_state();
        Provenance {
            study_file: study.path.display().to_string(),
            study_sha256: study.sha256.clone(),
            kdlab_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit,
            git_dirty,
            base_seed: study.base_seed,
            seeds: study.seeds,
            quick: study.quick,
            threads,
            units_computed,
            units_reused,
            teachers_fitted: 0,
            teacher_uses: 0,
            teachers_loaded: 0,
            stage_seconds,
            compute_wall_seconds,
            total_wall_seconds,
            host_os: std::env::consts::OS.to_string(),
        }
    }
}

/// The commit of the working directory's git checkout and whether it has uncommitted changes;
/// "unknown" outside a checkout or without git.
fn git_state() -> (String, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(commit) => (commit, run(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty())),
        None => ("unknown".into(), None),
    }
}
