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

/// Where one unit (or the merge) ran: the host, and Slurm's ids when Slurm started the process.
/// Stored in every shard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Execution {
    pub host: String,
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
            slurm_job_id: None,
            slurm_array_job_id: None,
            slurm_array_task_id: None,
        }
    }
}
