//! The `kdlab` command line: parse arguments, call the library, print errors once.
//!
//! Exit codes: 0 success; 2 a bad study file or bad arguments; 1 any other failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kdlab::runner::{self, RunOptions};
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
    },
    /// Validate study files without running them.
    Check {
        #[arg(required = true)]
        studies: Vec<String>,
    },
    /// List the studies in `studies/` with their claims, and the distillation arms.
    List,
    /// Re-render a report from stored results (`reports/<study>/`), without recomputing.
    Report { results_dir: PathBuf },
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
        Command::Study { studies, all, seeds, jobs, out, quick, max_memory_gib } => {
            let paths = study_paths(&studies, all)?;
            let options = LoadOptions { seeds, quick };
            // Validate every study before running any, so a typo in the last file does not
            // surface after an hour of work.
            let loaded = paths.iter().map(|p| study::load(p, &options)).collect::<Result<Vec<_>, StudyError>>()?;
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
            for s in &loaded {
                let max_memory = match max_memory_gib {
                    Some(g) => Some(g * (1u64 << 30) as f64),
                    None => kdlab::resources::available_bytes(),
                };
                let summary = runner::run(s, &RunOptions { jobs, out: out.clone(), progress: true, max_memory })?;
                println!(
                    "{}: {} ({} units computed, {} reused, {} failed rows)",
                    s.name,
                    summary.report.display(),
                    summary.units_computed,
                    summary.units_reused,
                    summary.failed_rows
                );
            }
            Ok(())
        }
        Command::Check { studies } => {
            for path in studies.iter().map(|s| resolve(s)) {
                let s = study::load(&path, &LoadOptions::default())?;
                println!("{}: ok ({} cells × {} seeds × {} arms, {} predictions)", path.display(), s.cells.len(), s.seeds, s.arms.len(), s.predictions.len());
            }
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
            for (name, description) in kdlab::report::known_arms() {
                println!("  {name:<30} {description}");
            }
            Ok(())
        }
        Command::Report { results_dir } => {
            let report = kdlab::report::rerender(&results_dir).map_err(|e| anyhow::anyhow!("{}: {e}", results_dir.display()))?;
            println!("{}", report.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // candle reads RAYON_NUM_THREADS for its matmul threads: keep each model on the thread
    // that runs its unit. Set before any thread exists; kdlab's own pool is sized by --jobs.
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
