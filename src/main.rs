//! The `kdlab` command line: parse arguments, call the library, print errors once.
//!
//! Exit codes: 0 success; 2 a bad study file or bad arguments; 1 any other failure.
//! `study --plan`, `study --slurm`, `run-cell`, `status` and `report STUDY` make a cluster run.

use kdlab::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kdlab::cluster::{self, JobContext, SlurmOptions};
use kdlab::data::DataStore;
use kdlab::execution::Execution;
use kdlab::runner::{self, RunOptions};
use std::sync::Arc;
use kdlab::study::{self, LoadOptions, StudyError};

#[derive(Parser)]
#[command(name = "kdlab", version, about = "Check the theory of knowledge distillation with honest statistics")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run studies and write their Markdown reports.
    #[command(group(clap::ArgGroup::new("slurm_mode").args(["slurm", "slurm_dry_run"])))]
    Study {
        /// Study files, or names of files in `studies/` (without `.toml`).
        #[arg(required_unless_present = "all")]
        studies: Vec<String>,
        /// Run every study in `studies/`.
        #[arg(long, conflicts_with = "studies")]
        all: bool,
        /// Override the number of seeds.
        #[arg(long)]
        seeds: Option<usize>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory for reports and results.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// The small smoke version of the same design (at most 3 seeds and the study's [quick] overrides).
        #[arg(long)]
        quick: bool,
        /// Refuse a study whose estimated peak memory exceeds this many GiB (default: the
        /// memory available now).
        #[arg(long = "max-memory", value_name = "GIB")]
        max_memory_gib: Option<f64>,
        /// Do not run: list the array tasks (one per cell) and their units, with stable ids and
        /// what each needs; also written to `<out>/<study>/plan.json`.
        #[arg(long, conflicts_with_all = ["slurm", "slurm_dry_run"])]
        plan: bool,
        /// Do not run here: write a Slurm job array (one task per cell) and a merge job that
        /// depends on it, submit both with sbatch, and print their job ids.
        #[arg(long)]
        slurm: bool,
        /// As --slurm, but only write the scripts and print the sbatch commands.
        #[arg(long, conflicts_with = "slurm")]
        slurm_dry_run: bool,
        /// Slurm partition (default: the cluster's).
        #[arg(long, requires = "slurm_mode")]
        partition: Option<String>,
        /// Slurm time limit per task, e.g. 2:00:00 (default: the partition's).
        #[arg(long, requires = "slurm_mode")]
        time: Option<String>,
        /// Cores per array task; the task's seeds run on that many threads.
        #[arg(long, requires = "slurm_mode", default_value_t = 1)]
        cpus_per_task: usize,
        /// Memory per task, e.g. 8G (default: the partition's).
        #[arg(long, requires = "slurm_mode")]
        mem: Option<String>,
        /// At most this many array tasks at once.
        #[arg(long, requires = "slurm_mode")]
        max_parallel: Option<usize>,
        /// After the run, write each seed's teacher predictions (in-sample, out-of-fold when
        /// an arm cross-fits, test) as files under DIR, with `teacher.json` (one study, `file`
        /// data, one teacher per seed).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["plan", "slurm", "slurm_dry_run", "all"])]
        export_teacher: Option<PathBuf>,
    },
    /// Compute one array task of a cluster run: every seed of one cell, each stored as a shard
    /// in `<out>/<study>/cells/`. A finished task does nothing.
    RunCell {
        study: String,
        /// The cell's id, as `kdlab study --plan` lists it.
        #[arg(long, required_unless_present = "index", conflicts_with = "index")]
        cell: Option<String>,
        /// The task index: the cell's position in the plan (`$SLURM_ARRAY_TASK_ID`).
        #[arg(long)]
        index: Option<usize>,
        #[command(flatten)]
        common: StudyArgs,
        /// Threads for the cell's seeds (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Show a cluster run's tasks: done, running, failed, pending; and how to resubmit the
    /// failed ones alone.
    Status {
        study: String,
        #[command(flatten)]
        common: StudyArgs,
    },
    /// Validate study files without running them.
    Check {
        #[arg(required = true)]
        studies: Vec<String>,
    },
    /// List the studies in `studies/` with their claims, and the distillation arms.
    List,
    /// Print every metric (direction, unit, report section, what it estimates) as a Markdown table.
    Metrics,
    /// Check the verdict engine by simulation (false-positive rates under identical arms,
    /// family-wise rates under Holm and sequential looks, power under a known effect) and
    /// write the measured rates to a Markdown file.
    Calibrate {
        /// Simulated studies per design.
        #[arg(long, default_value_t = 4000)]
        reps: usize,
        /// Where to write the table.
        #[arg(long, default_value = "CALIBRATION.md")]
        out: PathBuf,
        /// Base seed of the simulations.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Decide a claim's predictions on results computed elsewhere: an analyze file names the
    /// results table (one row per seed × arm), its axes and the predictions; writes the same
    /// report, verdicts.json and results files as a study.
    Analyze {
        /// The analyze file (TOML).
        file: PathBuf,
        /// Output directory for the report and its files.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Re-render a report from stored results (a results directory, `reports/<study>/`), or,
    /// given a study, merge the shards of its array tasks into the results and the report.
    Report {
        /// A results directory, or a study file or name.
        target: String,
        #[command(flatten)]
        common: StudyArgs,
        /// Threads (the merge itself is light).
        #[arg(long)]
        jobs: Option<usize>,
        /// For the merge job of a sequential design: when its verdicts need another look,
        /// submit the study's Slurm scripts again instead of failing.
        #[arg(long)]
        submit_next_look: bool,
    },
}

/// How a study of a cluster run is read and where its results go; every command of one run
/// must get the same values.
#[derive(clap::Args, Clone)]
struct StudyArgs {
    /// Override the number of seeds.
    #[arg(long)]
    seeds: Option<usize>,
    /// The smoke version of the design.
    #[arg(long)]
    quick: bool,
    /// Output directory for reports and results.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
}

const STUDY_DIR: &str = "studies";

/// A study argument: an existing path, or a name in `studies/`.
fn resolve(arg: &str) -> PathBuf {
    let path = PathBuf::from(arg);
    if path.exists() {
        return path;
    }
    let named = Path::new(STUDY_DIR).join(format!("{arg}.toml"));
    if named.exists() {
        named
    } else {
        path
    }
}

fn study_paths(studies: &[String], all: bool) -> anyhow::Result<Vec<PathBuf>> {
    if all {
        let paths = study::discover(Path::new(STUDY_DIR)).map_err(|e| anyhow::anyhow!("cannot list {STUDY_DIR}/: {e}"))?;
        anyhow::ensure!(!paths.is_empty(), "no study files (*.toml) in {STUDY_DIR}/");
        Ok(paths)
    } else {
        Ok(studies.iter().map(|s| resolve(s)).collect())
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Study { studies, all, seeds, jobs, out, quick, max_memory_gib, plan, slurm, slurm_dry_run, partition, time, cpus_per_task, mem, max_parallel, export_teacher } => {
            let paths = study_paths(&studies, all)?;
            let options = LoadOptions { seeds, quick, ..LoadOptions::default() };
            // Validate every study before running any, so a typo in the last file does not
            // surface after an hour of work.
            let loaded = paths.iter().map(|p| study::load(p, &options)).collect::<Result<Vec<_>, StudyError>>()?;
            if plan {
                return write_plans(&loaded, &out);
            }
            if slurm || slurm_dry_run {
                let slurm_options = SlurmOptions { partition, time, cpus_per_task, mem, max_parallel };
                return to_slurm(&loaded, &paths, &out, &options, &slurm_options, slurm_dry_run);
            }
            let jobs = jobs.unwrap_or_else(default_jobs);
            anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
            anyhow::ensure!(export_teacher.is_none() || loaded.len() == 1, "--export-teacher takes one study");
            for s in &loaded {
                let max_memory = match max_memory_gib {
                    Some(g) => Some(g * (1u64 << 30) as f64),
                    None => kdlab::resources::available_bytes(),
                };
                let summary = runner::run(s, &RunOptions { progress: true, max_memory, ..run_options(&out, jobs) })?;
                println!(
                    "{}: {} ({} units computed, {} reused, {} failed rows)",
                    s.name,
                    summary.report.display(),
                    summary.units_computed,
                    summary.units_reused,
                    summary.failed_rows
                );
                if let Some(dir) = &export_teacher {
                    let written = runner::export_teachers(s, &run_options(&out, jobs), dir)?;
                    println!("{}: teacher predictions of {written} seeds in {}", s.name, dir.display());
                }
            }
            Ok(())
        }
        Command::RunCell { study: arg, cell, index, common, jobs } => {
            let s = study::load(&resolve(&arg), &common.load())?;
            let index = match (cell, index) {
                (Some(id), _) => runner::cell_index(&s, &id)?,
                (None, Some(i)) => i,
                (None, None) => unreachable!("clap requires --cell or --index"),
            };
            let jobs = jobs.unwrap_or_else(default_jobs);
            anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
            let summary = runner::run_cell(&s, index, &RunOptions { progress: true, ..run_options(&common.out, jobs) })?;
            println!(
                "{}: task {} (cell {}): {} units computed, {} already stored",
                s.name, summary.cell_index, summary.cell_id, summary.units_computed, summary.units_reused
            );
            Ok(())
        }
        Command::Status { study: arg, common } => {
            let s = study::load(&resolve(&arg), &common.load())?;
            print!("{}", cluster::status(&s, &common.out).render());
            Ok(())
        }
        Command::Check { studies } => {
            for path in studies.iter().map(|s| resolve(s)) {
                let s = study::load(&path, &LoadOptions::default())?;
                let seeds = if s.plan.is_sequential() { format!("{} to {} seeds in steps of {}", s.plan.min, s.plan.max, s.plan.step) } else { format!("{} seeds", s.seeds) };
                println!("{}: ok ({} cells × {seeds} × {} arms, {} predictions)", path.display(), s.cells.len(), s.arms.len(), s.predictions.len());
            }
            Ok(())
        }
        Command::Calibrate { reps, out, seed } => {
            anyhow::ensure!(reps >= 100, "--reps must be at least 100, got {reps}");
            let table = kdlab::verdicts::calibration::render(reps, seed);
            kdlab::fsio::write_atomic(&out, table.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            println!("{}", out.display());
            Ok(())
        }
        Command::List => {
            println!("Studies in {STUDY_DIR}/:");
            for path in study::discover(Path::new(STUDY_DIR))? {
                match study::load(&path, &LoadOptions::default()) {
                    Ok(s) => println!("  {:<30} {}", s.name, s.claim),
                    Err(e) => println!("  {:<30} INVALID: {e}", path.display()),
                }
            }
            println!("\nArms:");
            for arm in Registry::builtin().arms() {
                println!("  {:<30} {}", arm.name(), arm.description());
            }
            Ok(())
        }
        Command::Metrics => {
            print!("{}", kdlab::metric::markdown_table(Registry::builtin().metrics()));
            Ok(())
        }
        Command::Analyze { file, out } => {
            let report = kdlab::analyze::run(&file, &out, Registry::builtin())?;
            println!("{}", report.display());
            Ok(())
        }
        Command::Report { target, common, jobs, submit_next_look } => {
            let dir = PathBuf::from(&target);
            if dir.is_dir() {
                let report = kdlab::report::rerender(&dir, &Registry::builtin()).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
                println!("{}", report.display());
                return Ok(());
            }
            let s = study::load(&resolve(&target), &common.load())?;
            let jobs = jobs.unwrap_or(1);
            anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
            let summary = match runner::merge(&s, &run_options(&common.out, jobs)) {
                Err(runner::RunError::LookPending { look, count, .. }) if submit_next_look => return submit_look(&s, &common.out, look, count),
                other => other?,
            };
            println!("{}: {} ({} units merged, {} failed rows)", s.name, summary.report.display(), summary.units_computed, summary.failed_rows);
            Ok(())
        }
    }
}

/// The merge job of a sequential design whose verdicts need another look: submits the
/// study's array and merge scripts again (array tasks compute what the look needs).
fn submit_look(s: &study::Study, out: &Path, look: usize, count: usize) -> anyhow::Result<()> {
    let out = std::fs::canonicalize(out)?;
    let files = cluster::SlurmFiles::new(&out, &s.name);
    let submission = cluster::submit(&files, &cluster::job_name(&s.name, &out)).map_err(|e| anyhow::anyhow!("{}: {e}", s.name))?;
    println!("{}: look {look} needs {count} more units: submitted array job {} and merge job {}", s.name, submission.array_job_id, submission.merge_job_id);
    Ok(())
}

/// `kdlab study --plan`: prints each study's plan and writes it to `<out>/<study>/plan.json`.
fn write_plans(studies: &[study::Study], out: &Path) -> anyhow::Result<()> {
    for s in studies {
        let plan = cluster::plan(s);
        let path = cluster::write_plan(&plan, out).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        print!("{}", plan.render());
        println!("plan written to {}", path.display());
    }
    Ok(())
}

/// `kdlab study --slurm` (or `--slurm-dry-run`): writes each study's job-array and merge
/// scripts and submits them (or prints the commands that would).
fn to_slurm(studies: &[study::Study], paths: &[PathBuf], out: &Path, load: &LoadOptions, options: &SlurmOptions, dry_run: bool) -> anyhow::Result<()> {
    anyhow::ensure!(options.cpus_per_task >= 1, "--cpus-per-task must be at least 1");
    anyhow::ensure!(options.max_parallel != Some(0), "--max-parallel must be at least 1");
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    for (s, path) in studies.iter().zip(paths) {
        let ctx = JobContext {
            kdlab: std::env::current_exe()?,
            study_file: std::fs::canonicalize(path)?,
            out: std::fs::canonicalize(out)?,
            workdir: std::path::absolute(Path::new("."))?,
            seeds: load.seeds,
            quick: load.quick,
        };
        let files = cluster::write_scripts(s, &ctx, options).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        if dry_run {
            println!("{}: scripts written (not submitted): {} and {}", s.name, files.array.display(), files.merge.display());
            println!("  A=$({}) && {}", cluster::sbatch_command(&[], &files.array), cluster::sbatch_command(&["--dependency=afterok:${A%%;*}".to_string()], &files.merge));
            continue;
        }
        let submission = cluster::submit(&files, &cluster::job_name(&s.name, &ctx.out)).map_err(|e| anyhow::anyhow!("{}: {e}", s.name))?;
        println!("{}: submitted array job {} ({} tasks) and merge job {} (after the array succeeds)", s.name, submission.array_job_id, s.cells.len(), submission.merge_job_id);
        println!("  array_job_id={}", submission.array_job_id);
        println!("  merge_job_id={}", submission.merge_job_id);
        let out_arg = if out == Path::new("reports") { String::new() } else { format!(" --out {}", out.display()) };
        println!("  `kdlab status {}{out_arg}` shows its progress", path.display());
    }
    Ok(())
}

/// Environment variable naming the data cache directory (default `data-cache`).
const DATA_CACHE_ENV: &str = "KDLAB_DATA_CACHE";

/// How this process runs studies: the data cache `$KDLAB_DATA_CACHE` names, and Slurm's job ids
/// when Slurm started the process (it sets them in the job's environment).
fn run_options(out: &Path, jobs: usize) -> RunOptions {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let data_cache = var(DATA_CACHE_ENV).unwrap_or_else(|| kdlab::datasets::DEFAULT_CACHE.to_string());
    let execution = Execution {
        slurm_job_id: var("SLURM_JOB_ID"),
        slurm_array_job_id: var("SLURM_ARRAY_JOB_ID"),
        slurm_array_task_id: var("SLURM_ARRAY_TASK_ID"),
        ..Execution::on_this_host()
    };
    RunOptions { jobs, data: Arc::new(DataStore::new(data_cache)), execution, ..RunOptions::new(out) }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl StudyArgs {
    fn load(&self) -> LoadOptions {
        LoadOptions { seeds: self.seeds, quick: self.quick, ..LoadOptions::default() }
    }
}

fn main() -> ExitCode {
    // rayon's global pool reads RAYON_NUM_THREADS once, when it starts: one thread, since
    // kdlab's own pool (sized by --jobs) runs the units (see `kdlab::threads`).
    std::env::set_var("RAYON_NUM_THREADS", "1");
    kdlab::malloc::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<StudyError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
