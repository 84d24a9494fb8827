//! Running a study on a cluster scheduler (Slurm): the plan of array tasks, the `sbatch`
//! scripts of a job array and of its dependent merge job, their submission, and the status of
//! the tasks.
//!
//! **The grain: one array task per cell**, computing every seed of that cell (on
//! `--cpus-per-task` threads). Task `N` is cell `N` of the study, in the study's own order,
//! and its units are stored as one shard per (cell, seed), exactly as a local run stores them.
//! Why a cell and not a single (cell, seed) unit: the cell's oracle student is fit once per
//! cell (per unit it would be refit for every seed), data are loaded once per task, a task
//! lasts long enough to be worth scheduling, and array sizes stay below clusters' usual
//! `MaxArraySize` (cells, not cells × seeds). Nothing is lost on failure: a task that is
//! killed half-way keeps the shards it finished, and running it again computes only the rest.
//!
//! The scripts call the same `kdlab` binary with absolute paths; each task runs
//! `kdlab run-cell STUDY --index $SLURM_ARRAY_TASK_ID`, and the merge job runs
//! `kdlab report STUDY` once every task has succeeded (`--dependency=afterok`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::method::GammaRule;
use crate::fingerprint;
use crate::fsio;
use crate::runner;
use crate::seed;
use crate::study::Study;

/// The array tasks of a study, in a stable order with stable ids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub study: String,
    pub study_sha256: String,
    pub seeds: usize,
    /// A sequential design: the units listed are its first look's; the merge job submits each
    /// later look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<crate::study::SeedPlan>,
    pub base_seed: u64,
    /// One array task per cell; `tasks[i].index == i`.
    pub tasks: Vec<PlanTask>,
}

/// One array task: one cell and its seeds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanTask {
    /// The array task index (`--index`, `$SLURM_ARRAY_TASK_ID`): the cell's index in the study.
    pub index: usize,
    /// The cell's stable id (`--cell`): a hash of a fixed salt, base seed and cell config.
    pub cell_id: String,
    /// `axis = level` for each grid axis.
    pub levels: Vec<String>,
    /// The data set (kind and its settings) and the teacher this cell needs.
    pub data: serde_json::Value,
    pub teacher: serde_json::Value,
    /// Rough size: training rows (where the study says), and model fits per unit.
    pub n_train: Option<u64>,
    pub teacher_fits_per_unit: usize,
    pub student_fits_per_unit: usize,
    pub units: Vec<PlanUnit>,
}

/// One (cell, seed) unit: its shard and the teacher-cache key of the teacher it needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanUnit {
    pub seed: usize,
    /// The unit's id: `<cell id>-seed<seed>`, also its shard's file name.
    pub id: String,
    pub teacher_key: String,
}

/// The plan of `study`: one task per cell, in the study's cell order.
pub fn plan(study: &Study) -> Plan {
    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold);
    let tasks = study
        .cells
        .iter()
        .map(|cell| {
            let cfg = &cell.config;
            let data = serde_json::to_value(&cfg.data).expect("serialisable");
            let n_train = data.get("n_train").and_then(|v| v.as_u64());
            let student_fits = study
                .arms
                .iter()
                .map(|a| 1 + if a.gamma_rule() == GammaRule::VarianceAware { cfg.distill.c_grid.len() * cfg.distill.cv_folds } else { 0 })
                .sum();
            PlanTask {
                index: cell.index,
                cell_id: cell.id.clone(),
                levels: study.axes.iter().zip(&cell.levels).map(|(a, l)| format!("{} = {l}", a.key)).collect(),
                data,
                teacher: serde_json::to_value(&cfg.teacher).expect("serialisable"),
                n_train,
                teacher_fits_per_unit: 1 + if crossfit { cfg.distill.crossfit_folds } else { 0 },
                student_fits_per_unit: student_fits,
                units: (0..study.plan.looks()[0])
                    .map(|s| PlanUnit { seed: s, id: format!("{}-seed{s}", cell.id), teacher_key: runner::teacher_key(study, cell, s, fingerprint::CODE) })
                    .collect(),
            }
        })
        .collect();
    let sequential = study.plan.is_sequential().then_some(study.plan);
    Plan { study: study.name.clone(), study_sha256: study.sha256.clone(), seeds: study.seeds, sequential, base_seed: study.base_seed, tasks }
}

impl Plan {
    /// The plan as a table: one line per task, then one per unit.
    pub fn render(&self) -> String {
        let mut w = String::new();
        let units: usize = self.tasks.iter().map(|t| t.units.len()).sum();
        match self.sequential {
            Some(p) => {
                let _ = writeln!(w, "{}: {} array tasks (one per cell); a sequential design of {} to {} seeds in steps of {}: the first look's {units} units below, then the merge job submits each look the undecided predictions need", self.study, self.tasks.len(), p.min, p.max, p.step);
            }
            None => {
                let _ = writeln!(w, "{}: {} array tasks (one per cell, each computing its {} seeds), {units} units", self.study, self.tasks.len(), self.seeds);
            }
        }
        let _ = writeln!(w, "task\tcell id\tlevels\tdata\tn_train\tteacher\tteacher fits/unit\tstudent fits/unit");
        for t in &self.tasks {
            let kind = |v: &serde_json::Value| v.get("kind").and_then(|k| k.as_str()).unwrap_or("?").to_string();
            let levels = if t.levels.is_empty() { "-".to_string() } else { t.levels.join(", ") };
            let n = t.n_train.map_or("-".to_string(), |n| n.to_string());
            let _ = writeln!(w, "{}\t{}\t{levels}\t{}\t{n}\t{}\t{}\t{}", t.index, t.cell_id, kind(&t.data), kind(&t.teacher), t.teacher_fits_per_unit, t.student_fits_per_unit);
        }
        let _ = writeln!(w, "\ntask\tunit\tteacher key");
        for t in &self.tasks {
            for u in &t.units {
                let _ = writeln!(w, "{}\t{}\t{}", t.index, u.id, u.teacher_key);
            }
        }
        w
    }
}

/// Writes `<out>/<study>/plan.json` and returns its path.
pub fn write_plan(plan: &Plan, out: &Path) -> std::io::Result<PathBuf> {
    let path = out.join(&plan.study).join("plan.json");
    fsio::write_atomic(&path, serde_json::to_string_pretty(plan).expect("serialisable").as_bytes())?;
    Ok(path)
}

/// Resources asked of Slurm (`None`: the cluster's default).
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: usize,
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub max_parallel: Option<usize>,
}

/// How a job calls kdlab: every path absolute, so a job runs from any node and directory.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub kdlab: PathBuf,
    pub study_file: PathBuf,
    pub out: PathBuf,
    pub workdir: PathBuf,
    /// The `--seeds` / `--quick` the study was planned with; every job passes them on.
    pub seeds: Option<usize>,
    pub quick: bool,
}

/// The scripts of a study's cluster run, under `<out>/<study>/slurm/`.
pub struct SlurmFiles {
    pub dir: PathBuf,
    pub array: PathBuf,
    pub merge: PathBuf,
    pub logs: PathBuf,
}

impl SlurmFiles {
    pub fn new(out: &Path, study: &str) -> SlurmFiles {
        let dir = out.join(study).join("slurm");
        SlurmFiles { array: dir.join("array.sbatch"), merge: dir.join("merge.sbatch"), logs: dir.join("logs"), dir }
    }
}

/// The job name of a study's array: the study's name and a hash of its absolute output
/// directory, so `kdlab status` finds this run's jobs (resubmitted ones included) by name.
pub fn job_name(study: &str, out: &Path) -> String {
    format!("kdlab-{study}-{}", &seed::short_hash(&out.display().to_string())[..8])
}

/// A word for a POSIX shell, single-quoted unless it is plainly safe.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn common_directives(w: &mut String, options: &SlurmOptions) {
    let _ = writeln!(w, "#SBATCH --cpus-per-task={}", options.cpus_per_task.max(1));
    for (flag, value) in [("partition", &options.partition), ("time", &options.time), ("mem", &options.mem)] {
        if let Some(v) = value {
            let _ = writeln!(w, "#SBATCH --{flag}={v}");
        }
    }
}

fn study_args(ctx: &JobContext) -> String {
    let mut args = format!("{} --out {}", shell_quote(&ctx.study_file.display().to_string()), shell_quote(&ctx.out.display().to_string()));
    if let Some(n) = ctx.seeds {
        let _ = write!(args, " --seeds {n}");
    }
    if ctx.quick {
        args.push_str(" --quick");
    }
    args
}

/// The `--array` value: every task, at most `max_parallel` at once.
pub fn array_spec(tasks: &[usize], max_parallel: Option<usize>) -> String {
    let mut spec = compress_ranges(tasks);
    if let Some(k) = max_parallel {
        let _ = write!(spec, "%{k}");
    }
    spec
}

/// `0,1,2,5,7,8` → `0-2,5,7-8`.
pub fn compress_ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { sorted[i].to_string() } else { format!("{}-{}", sorted[i], sorted[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// The job-array script: task N runs `kdlab run-cell STUDY --index N`.
pub fn array_script(study: &Study, ctx: &JobContext, options: &SlurmOptions, files: &SlurmFiles) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "#!/bin/bash");
    if study.plan.is_sequential() {
        let _ = writeln!(w, "# kdlab study `{}`: array task N computes the seeds of cell N that the next look of the sequential design needs ({} cells, {} to {} seeds).", study.name, study.cells.len(), study.plan.min, study.plan.max);
    } else {
        let _ = writeln!(w, "# kdlab study `{}`: array task N computes every seed of cell N ({} cells x {} seeds).", study.name, study.cells.len(), study.seeds);
    }
    let _ = writeln!(w, "# Written by `kdlab study --slurm`; a finished task does nothing when run again.");
    let _ = writeln!(w, "#SBATCH --job-name={}", job_name(&study.name, &ctx.out));
    let tasks: Vec<usize> = (0..study.cells.len()).collect();
    let _ = writeln!(w, "#SBATCH --array={}", array_spec(&tasks, options.max_parallel));
    common_directives(&mut w, options);
    let _ = writeln!(w, "#SBATCH --chdir={}", ctx.workdir.display());
    let _ = writeln!(w, "#SBATCH --output={}", files.logs.join("task-%A_%a.out").display());
    let _ = writeln!(w, "set -euo pipefail");
    let _ = writeln!(
        w,
        "exec {} run-cell {} --index \"$SLURM_ARRAY_TASK_ID\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"",
        shell_quote(&ctx.kdlab.display().to_string()),
        study_args(ctx)
    );
    w
}

/// The merge script: `kdlab report STUDY` once every array task has succeeded.
pub fn merge_script(study: &Study, ctx: &JobContext, options: &SlurmOptions, files: &SlurmFiles) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "#!/bin/bash");
    let _ = writeln!(w, "# kdlab study `{}`: merges the array tasks' shards into the results and the report.", study.name);
    let _ = writeln!(w, "# Submitted with --dependency=afterok:<array job id> by `kdlab study --slurm`.");
    let _ = writeln!(w, "#SBATCH --job-name={}-merge", job_name(&study.name, &ctx.out));
    common_directives(&mut w, &SlurmOptions { cpus_per_task: 1, ..options.clone() });
    let _ = writeln!(w, "#SBATCH --chdir={}", ctx.workdir.display());
    let _ = writeln!(w, "#SBATCH --output={}", files.logs.join("merge-%j.out").display());
    let _ = writeln!(w, "set -euo pipefail");
    // A sequential design's merge submits these scripts again while a look is still to run.
    let next_look = if study.plan.is_sequential() && ctx.seeds.is_none() && !ctx.quick { " --submit-next-look" } else { "" };
    let _ = writeln!(w, "exec {} report {} --jobs 1{next_look}", shell_quote(&ctx.kdlab.display().to_string()), study_args(ctx));
    w
}

/// Writes both scripts (and creates the log directory, which Slurm does not).
pub fn write_scripts(study: &Study, ctx: &JobContext, options: &SlurmOptions) -> std::io::Result<SlurmFiles> {
    let files = SlurmFiles::new(&ctx.out, &study.name);
    std::fs::create_dir_all(&files.logs)?;
    fsio::write_atomic(&files.array, array_script(study, ctx, options, &files).as_bytes())?;
    fsio::write_atomic(&files.merge, merge_script(study, ctx, options, &files).as_bytes())?;
    Ok(files)
}

/// The job ids of a submission, kept in `<out>/<study>/slurm/jobs.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Submission {
    pub array_job_id: String,
    pub merge_job_id: String,
    pub job_name: String,
}

/// The shell command that submits `script` (with extra sbatch arguments).
pub fn sbatch_command(extra: &[String], script: &Path) -> String {
    let mut words = vec!["sbatch".to_string(), "--parsable".to_string()];
    words.extend(extra.iter().cloned());
    words.push(shell_quote(&script.display().to_string()));
    words.join(" ")
}

/// Submits the array, then the merge job depending on it; returns their ids.
pub fn submit(files: &SlurmFiles, job_name: &str) -> Result<Submission, String> {
    let array_job_id = sbatch(&[], &files.array)?;
    let merge_job_id = sbatch(&[format!("--dependency=afterok:{array_job_id}")], &files.merge)?;
    let submission = Submission { array_job_id, merge_job_id, job_name: job_name.to_string() };
    let path = files.dir.join("jobs.json");
    fsio::write_atomic(&path, serde_json::to_string_pretty(&submission).expect("serialisable").as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(submission)
}

/// Runs `sbatch --parsable [extra] script` and returns the job id it prints (`id` or `id;cluster`).
fn sbatch(extra: &[String], script: &Path) -> Result<String, String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|e| format!("cannot run sbatch (is this a Slurm submit host?): {e}"))?;
    if !output.status.success() {
        return Err(format!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr).trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch printed no job id: {:?}", stdout.trim()));
    }
    Ok(id)
}

/// The state of one array task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskState {
    /// Every unit of the task has its shard.
    Done,
    /// Slurm runs it now.
    Running,
    /// Waiting: in Slurm's queue, or not submitted yet.
    Pending,
    /// Slurm says it failed, or it left the queue without storing all its units.
    Failed,
}

impl TaskState {
    pub fn word(self) -> &'static str {
        match self {
            TaskState::Done => "done",
            TaskState::Running => "running",
            TaskState::Pending => "pending",
            TaskState::Failed => "failed",
        }
    }
}

/// Decides each task's state from what is on disk and what Slurm says. `done[i]`: task i has
/// every shard. `queue`: squeue's state per task index (`None`: squeue unavailable).
/// `accounting`: sacct's final state per task index (`None`: no accounting). `submitted`:
/// whether an array was submitted for this study.
pub fn classify(done: &[bool], queue: Option<&BTreeMap<usize, String>>, accounting: Option<&BTreeMap<usize, String>>, submitted: bool) -> Vec<TaskState> {
    done.iter()
        .enumerate()
        .map(|(i, &done)| {
            if done {
                return TaskState::Done;
            }
            if let Some(state) = queue.and_then(|q| q.get(&i)) {
                return match state.as_str() {
                    "RUNNING" | "COMPLETING" | "CONFIGURING" | "STAGE_OUT" | "SIGNALING" => TaskState::Running,
                    "PENDING" | "SUSPENDED" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESIZING" => TaskState::Pending,
                    _ => TaskState::Failed,
                };
            }
            if let Some(state) = accounting.and_then(|a| a.get(&i)) {
                if state.starts_with("RUNNING") {
                    return TaskState::Running;
                }
                if state.starts_with("PENDING") {
                    return TaskState::Pending;
                }
                // COMPLETED without every shard is a failure too (the shards went missing).
                return TaskState::Failed;
            }
            if submitted && queue.is_some() {
                // Submitted, no longer queued, and its units are not all stored.
                TaskState::Failed
            } else {
                TaskState::Pending
            }
        })
        .collect()
}

/// Parses `JOBID|STATE` lines (squeue `-o %i|%T`, sacct `-P -o JobID,State`) into each array
/// task's state; `123_4` is task 4, `123_[5-7%2]` tasks 5 to 7. Lines of other jobs
/// (no `_`) and job steps (`123_4.batch`) are skipped.
pub fn parse_task_states(text: &str) -> BTreeMap<usize, String> {
    let mut states = BTreeMap::new();
    for line in text.lines() {
        let Some((id, state)) = line.trim().split_once('|') else { continue };
        let Some((_, task)) = id.split_once('_') else { continue };
        if task.contains('.') {
            continue;
        }
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        let task = task.trim_start_matches('[').trim_end_matches(']');
        let task = task.split('%').next().unwrap_or("");
        for part in task.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                for i in a..=b.min(a + 1_000_000) {
                    states.insert(i, state.clone());
                }
            }
        }
    }
    states
}

/// squeue's view of the jobs named `name` (each array task on its own line), or `None` when
/// squeue cannot be run.
pub fn squeue(name: &str) -> Option<BTreeMap<usize, String>> {
    let output = Command::new("squeue").args(["-h", "-r", &format!("--name={name}"), "-o", "%i|%T"]).output().ok()?;
    output.status.success().then(|| parse_task_states(&String::from_utf8_lossy(&output.stdout)))
}

/// Whether a job named `name` is in the queue, and its state.
pub fn squeue_job(name: &str) -> Option<String> {
    let output = Command::new("squeue").args(["-h", &format!("--name={name}"), "-o", "%i %T %r"]).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// sacct's final states of the tasks named `name` over the last week, or `None` when the
/// cluster keeps no accounting.
pub fn sacct(name: &str) -> Option<BTreeMap<usize, String>> {
    let output = Command::new("sacct").args(["-n", "-P", "-X", "-S", "now-7days", &format!("--name={name}"), "-o", "JobID,State"]).output().ok()?;
    output.status.success().then(|| parse_task_states(&String::from_utf8_lossy(&output.stdout)))
}


/// The state of a study's cluster run, for `kdlab status`.
pub struct Status {
    pub study: String,
    /// Per task: its state and how many of its units are stored.
    pub tasks: Vec<(TaskState, usize, usize)>,
    pub submission: Option<Submission>,
    /// The merge job's squeue line, while it is queued.
    pub merge_queued: Option<String>,
    pub merged: bool,
    pub files: SlurmFiles,
    pub max_parallel: Option<usize>,
    /// Stored units that other code computed (they count as not stored).
    pub stale: usize,
}

/// Looks at the shards on disk and, where there are, at squeue and sacct.
pub fn status(study: &Study, out: &Path) -> Status {
    // Absolute, as at submission: the job name hashes it, and printed commands work anywhere.
    let absolute = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    let files = SlurmFiles::new(&absolute, &study.name);
    let submission: Option<Submission> = std::fs::read(files.dir.join("jobs.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let name = submission.as_ref().map(|s| s.job_name.clone()).unwrap_or_else(|| job_name(&study.name, &absolute));
    let read = |c: usize, s: usize| runner::read_unit(study, out, fingerprint::CODE, c, s);
    let stored: Vec<usize> = (0..study.cells.len()).map(|c| (0..study.seeds).filter(|&s| read(c, s).fresh().is_some()).count()).collect();
    let stale = (0..study.cells.len()).map(|c| (0..study.seeds).filter(|&s| matches!(read(c, s), runner::Stored::Stale(_))).count()).sum();
    // A task is done when its cell has every unit the run needs now (for a sequential design,
    // what its next look needs).
    let (pending, next) = runner::pending_units(study, out, fingerprint::CODE);
    let done: Vec<bool> = (0..study.cells.len()).map(|c| !pending.iter().any(|u| u.0 == c)).collect();
    let wanted = |c: usize, stored: usize| match &next {
        Some(look) if look.cells.contains(&c) => look.seeds.max(stored),
        _ if study.plan.is_sequential() => stored,
        _ => study.seeds,
    };
    let queue = submission.as_ref().and_then(|_| squeue(&name));
    let accounting = submission.as_ref().and_then(|_| sacct(&name));
    let states = classify(&done, queue.as_ref(), accounting.as_ref(), submission.is_some());
    // The throttle of the submitted script, so a resubmission keeps it.
    let max_parallel = std::fs::read_to_string(&files.array)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("#SBATCH --array=").and_then(|a| a.split_once('%')).and_then(|(_, k)| k.trim().parse().ok())));
    let merge_queued = submission.as_ref().and_then(|_| squeue_job(&format!("{name}-merge")));
    let merged = runner::results_dir(out, study).join("results.csv").exists() && done.iter().all(|&d| d);
    Status {
        study: study.name.clone(),
        tasks: states.into_iter().zip(stored).enumerate().map(|(c, (s, n))| (s, n, wanted(c, n))).collect(),
        submission,
        merge_queued,
        merged,
        files,
        max_parallel,
        stale,
    }
}

impl Status {
    pub fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.0 == state).count()
    }

    /// The task indices in `state`.
    pub fn indices(&self, state: TaskState) -> Vec<usize> {
        self.tasks.iter().enumerate().filter(|(_, t)| t.0 == state).map(|(i, _)| i).collect()
    }

    /// The exact commands that resubmit the failed tasks alone, and a merge after them.
    pub fn resubmit_commands(&self) -> Option<String> {
        let failed = self.indices(TaskState::Failed);
        if failed.is_empty() {
            return None;
        }
        let array = sbatch_command(&[format!("--array={}", array_spec(&failed, self.max_parallel))], &self.files.array);
        let merge = format!("sbatch --dependency=afterok:${{A%%;*}} {}", shell_quote(&self.files.merge.display().to_string()));
        let mut text = String::new();
        if let (Some(s), Some(_)) = (&self.submission, &self.merge_queued) {
            let _ = writeln!(text, "scancel {}   # the first merge job waits on the failed array forever", s.merge_job_id);
        }
        let _ = writeln!(text, "A=$({array}) && {merge}");
        Some(text)
    }

    pub fn render(&self) -> String {
        let mut w = String::new();
        let units: usize = self.tasks.iter().map(|t| t.1).sum();
        let total: usize = self.tasks.iter().map(|t| t.2).sum();
        let _ = writeln!(
            w,
            "{}: {} tasks: {} done, {} running, {} failed, {} pending ({units}/{total} units stored)",
            self.study,
            self.tasks.len(),
            self.count(TaskState::Done),
            self.count(TaskState::Running),
            self.count(TaskState::Failed),
            self.count(TaskState::Pending)
        );
        if self.stale > 0 {
            let _ = writeln!(w, "{} stored units were computed by other code than this build ({}): their tasks count as not done and must run again", self.stale, crate::fingerprint::CODE);
        }
        match &self.submission {
            Some(s) => {
                let _ = writeln!(w, "array job {}, merge job {} ({})", s.array_job_id, s.merge_job_id, self.merge_queued.as_deref().map_or("not queued".to_string(), |q| format!("queued: {q}")));
            }
            None => {
                let _ = writeln!(w, "not submitted to Slurm from this output directory (`kdlab study --slurm` submits it)");
            }
        }
        for state in [TaskState::Running, TaskState::Failed, TaskState::Pending] {
            let tasks = self.indices(state);
            if !tasks.is_empty() {
                let _ = writeln!(w, "{} tasks: {}", state.word(), compress_ranges(&tasks));
            }
        }
        if let Some(commands) = self.resubmit_commands() {
            let _ = writeln!(w, "Resubmit the failed tasks alone (logs: {}), then the merge:\n{commands}", self.files.logs.display());
        }
        if self.merged {
            let _ = writeln!(w, "merged: results and report written");
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_compressed() {
        assert_eq!(compress_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(compress_ranges(&[3]), "3");
        assert_eq!(compress_ranges(&[]), "");
        assert_eq!(array_spec(&[0, 1, 2, 3], Some(2)), "0-3%2");
    }

    #[test]
    fn task_states_parse_from_squeue_and_sacct_lines() {
        let q = parse_task_states("77_0|RUNNING\n77_[2-3%1]|PENDING\n78|PENDING\n77_1.batch|FAILED\n79_5|CANCELLED by 0\n");
        let expect: BTreeMap<usize, String> =
            [(0, "RUNNING"), (2, "PENDING"), (3, "PENDING"), (5, "CANCELLED")].into_iter().map(|(i, s)| (i, s.to_string())).collect();
        assert_eq!(q, expect);
    }

    #[test]
    fn tasks_are_classified_from_shards_queue_and_accounting() {
        let done = [true, false, false, false, false];
        let queue: BTreeMap<usize, String> = [(1, "RUNNING".to_string()), (2, "PENDING".to_string())].into_iter().collect();
        let acct: BTreeMap<usize, String> = [(3, "TIMEOUT".to_string())].into_iter().collect();
        use TaskState::*;
        assert_eq!(classify(&done, Some(&queue), Some(&acct), true), vec![Done, Running, Pending, Failed, Failed]);
        // Without accounting a task that left the queue unfinished failed; before any
        // submission (or without squeue) unfinished tasks are pending.
        assert_eq!(classify(&done, Some(&queue), None, true), vec![Done, Running, Pending, Failed, Failed]);
        assert_eq!(classify(&done, None, None, true), vec![Done, Pending, Pending, Pending, Pending]);
        assert_eq!(classify(&done, Some(&BTreeMap::new()), None, false), vec![Done, Pending, Pending, Pending, Pending]);
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_quote("/a/b-c.toml"), "/a/b-c.toml");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
