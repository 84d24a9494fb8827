//! Where and how long work ran: what each stored unit records of its execution, and what the
//! provenance sums and gathers from them.

use serde::{Deserialize, Serialize};

/// Wall-clock seconds per stage of one (cell, seed) unit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StageTimes {
    pub data: f64,
    pub teacher: f64,
    pub students: f64,
    pub metrics: f64,
}

/// Where one unit (or the merge) ran: the host and its CPU model, and Slurm's ids when Slurm
/// started the process. Stored in every shard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Execution {
    pub host: String,
    /// The CPU model: numerical kernels pick their code by the CPU, so results can differ in
    /// the last bits between CPU models (empty where the system does not say).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_task_id: Option<String>,
}

impl Execution {
    /// This process's host, outside any scheduler. The command line adds Slurm's job ids,
    /// which Slurm passes in the environment (the library never reads it).
    pub fn on_this_host() -> Execution {
        Execution {
            host: crate::fsio::hostname().to_string(),
            cpu: cpu_model().to_string(),
            slurm_job_id: None,
            slurm_array_job_id: None,
            slurm_array_task_id: None,
        }
    }
}

/// The CPU's model name as Linux reports it (`/proc/cpuinfo`), or empty; read once.
fn cpu_model() -> &'static str {
    static CPU: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CPU.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = info.lines().find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, v)| v.trim().to_string()));
        model.unwrap_or_default()
    })
}
