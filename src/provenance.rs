//! Where a report's numbers came from: the study file's hash, the code's version and git state,
//! seeds, threads, per-stage timings, and where the units ran (hosts, and the scheduler's job
//! ids when a cluster scheduler ran them).

use serde::{Deserialize, Serialize};

use crate::execution::{Execution, StageTimes};
use crate::study::Study;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub study_file: String,
    pub study_sha256: String,
    pub kdlab_version: String,
    /// The fingerprint of the code that computed every stored unit ([`crate::fingerprint`]).
    #[serde(default)]
    pub code_fingerprint: String,
    pub git_commit: String,
    pub git_dirty: Option<bool>,
    pub base_seed: u64,
    pub seeds: usize,
    /// The seed plan the run followed (a sequential design's looks), so a re-render reads the
    /// study the same way; absent in provenance written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_plan: Option<crate::study::SeedPlan>,
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
    /// The hosts that computed the units, each with its CPU model (from their shards), sorted.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The scheduler that ran the units, when one did (a Slurm job array and its merge job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerRecord>,
}

/// The scheduler's part of the provenance: which jobs computed the units and merged them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SchedulerRecord {
    /// `slurm`.
    pub name: String,
    /// The job arrays whose tasks computed units (more than one after a resubmission).
    #[serde(default)]
    pub array_job_ids: Vec<String>,
    /// Every task's own job id, sorted.
    #[serde(default)]
    pub task_job_ids: Vec<String>,
    /// The job that merged the shards into the results and the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_job_id: Option<String>,
}

impl SchedulerRecord {
    /// Gathers the hosts and the Slurm record from the executions of the units and of this
    /// process (the merge); no scheduler record when nothing ran under Slurm.
    pub fn gather<'a>(units: impl IntoIterator<Item = &'a Execution>, merge: &Execution) -> (Vec<String>, Option<SchedulerRecord>) {
        let mut hosts = std::collections::BTreeSet::new();
        let mut arrays = std::collections::BTreeSet::new();
        let mut tasks = std::collections::BTreeSet::new();
        for e in units {
            hosts.insert(if e.cpu.is_empty() { e.host.clone() } else { format!("{} ({})", e.host, e.cpu) });
            arrays.extend(e.slurm_array_job_id.clone());
            tasks.extend(e.slurm_job_id.clone());
        }
        let slurm = !tasks.is_empty() || merge.slurm_job_id.is_some();
        let record = slurm.then(|| SchedulerRecord {
            name: "slurm".into(),
            array_job_ids: arrays.into_iter().collect(),
            task_job_ids: sort_numeric(tasks.into_iter().collect()),
            merge_job_id: merge.slurm_job_id.clone(),
        });
        (hosts.into_iter().collect(), record)
    }
}

/// Job ids sorted as numbers where they are numbers.
fn sort_numeric(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
    ids
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
            code_fingerprint: String::new(),
            git_commit,
            git_dirty,
            base_seed: study.base_seed,
            seeds: study.seeds,
            seed_plan: study.plan.is_sequential().then_some(study.plan),
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
            hosts: Vec::new(),
            scheduler: None,
        }
    }
}

/// The commit of the working directory's git checkout and whether tracked files outside `reports/`
/// have uncommitted changes;
/// "unknown" outside a checkout or without git.
pub fn git_state() -> (String, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        // The committed reports are outputs: a study run rewriting them does not make the code
        // that produced the next report "uncommitted".
        Some(commit) => (commit, run(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"]).map(|s| !s.is_empty())),
        None => ("unknown".into(), None),
    }
}
