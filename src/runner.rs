//! Runs a study: every (cell, seed) unit in parallel, each stored as a shard when it finishes,
//! then the results table, the verdicts and the report.
//!
//! Units run on a rayon pool of `jobs` threads; each unit's candle work stays on its own
//! thread (many small models in parallel beat one model on two threads). Every random draw in a
//! unit derives from the study's base seed, the replicate index and the config it belongs to,
//! so the results do not depend on the thread count or on the order units finish in.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{validation_split, DataStore, Dataset, RowSplit};
use crate::diagnostics::calibration::ReliabilityBin;
use crate::diagnostics::complexity;
use crate::diagnostics::lipschitz::ReluMlp;
use crate::diagnostics::suite::{self, ModelAccess};
use crate::fidelity;
use crate::fingerprint;
use crate::fsio;
use crate::teacher_files;
use crate::metric::{self, Predictions};
use crate::metrics;
use crate::registry::Registry;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::TeacherSpec;
use crate::models::loss::LossTerm;
use crate::models::student::{self, FittedStudent, NeuralSpec, StudentSpec, StudentTargets, TargetScale};
use crate::protocol::{Protocol, Semiparametric};
use crate::provenance::{Provenance, SchedulerRecord};
use crate::report;
use crate::resources;
use crate::schedule;
use crate::distill;
use crate::execution::{Execution, StageTimes};
use crate::results::{self, Row, RowKind, Shard};
use crate::seed;
use crate::threads;
use crate::study::{Cell, Study};
use crate::verdicts;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot build the thread pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    #[error("cannot write results: {0}")]
    Results(Box<dyn std::error::Error + Send + Sync>),
    #[error("{study}: data: {message}")]
    Data { study: String, message: String },
    #[error("{study}: the estimated peak memory is {estimate}, above the limit of {limit}; lower n_train, n_trees, crossfit_folds or --jobs, or raise --max-memory")]
    Memory { study: String, estimate: String, limit: String },
    #[error("{study}: no cell {task} (the study has {tasks} cells: indices 0 to {tasks} - 1, ids as `kdlab study --plan` lists them)")]
    NoSuchTask { study: String, task: String, tasks: usize },
    #[error("{study}: {count} units have no stored result yet (first: {first}); run their tasks (`kdlab status` lists them) before merging")]
    Missing { study: String, count: usize, first: String },
    #[error("{study}: {count} stored units were computed by other code (first: {first}); this build is {code}: run their tasks again with this build before merging")]
    Stale { study: String, count: usize, first: String, code: String },
    #[error("{study}: teacher: {message}")]
    TeacherFiles { study: String, message: String },
    #[error("{study}: --export-teacher: {message}")]
    Export { study: String, message: String },
    #[error("{study}: the sequential design is not decided yet: look {look} needs {count} more units (seeds 0..{seeds} of cells {cells:?}); `kdlab study --slurm` submits them")]
    LookPending { study: String, look: usize, seeds: usize, cells: Vec<usize>, count: usize },
}

/// How to run a study.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads (default: all cores).
    pub jobs: usize,
    /// Reports go to `out/<study>.md`, results to `out/<study>/`.
    pub out: PathBuf,
    /// Show a progress bar (terminal) or plain progress lines.
    pub progress: bool,
    /// Refuse the study up front when its estimated peak memory ([`resources::estimate`])
    /// exceeds this many bytes.
    pub max_memory: Option<f64>,
    /// The fingerprint of the code computing now ([`fingerprint::CODE`]): stored shards and
    /// cached teachers with another fingerprint are recomputed, never reused.
    pub code: String,
    /// Where real data sets are read from, and those read so far.
    pub data: Arc<DataStore>,
    /// Where this process runs (host; Slurm's job ids under Slurm), stored in every shard.
    pub execution: Execution,
}

impl RunOptions {
    /// Every core, no progress display, no memory limit, this build's fingerprint, the data
    /// cache in the working directory, and this host outside any scheduler.
    pub fn new(out: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            out: out.into(),
            progress: false,
            max_memory: None,
            code: fingerprint::CODE.to_string(),
            data: Arc::new(DataStore::new(crate::datasets::DEFAULT_CACHE)),
            execution: Execution::on_this_host(),
        }
    }
}

/// What a finished run wrote.
pub struct RunSummary {
    pub report: PathBuf,
    pub results_dir: PathBuf,
    pub units_computed: usize,
    pub units_reused: usize,
    pub failed_rows: usize,
}

pub fn results_dir(out: &Path, study: &Study) -> PathBuf {
    out.join(&study.name)
}

/// Runs every pending unit of `study`, then writes results and the report. Holds the output
/// directory's exclusive lock throughout.
pub fn run(study: &Study, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let dir = results_dir(&options.out, study);
    if let Some(limit) = options.max_memory {
        let estimate = resources::estimate(study, options.jobs);
        if estimate.bytes > limit {
            return Err(RunError::Memory { study: study.name.clone(), estimate: estimate.breakdown, limit: resources::gib(limit) });
        }
    }
    ensure_data(study, 0..study.cells.len(), &options.data)?;
    let _lock = fsio::DirLock::acquire(&dir).map_err(io_error(&dir))?;
    let outcome = if study.plan.is_sequential() {
        run_looks(study, options)?
    } else {
        let units: Vec<(usize, usize)> = (0..study.cells.len()).flat_map(|c| (0..study.seeds).map(move |s| (c, s))).collect();
        run_units(study, &units, options)?
    };
    finish(study, options, outcome, started)
}

/// A sequential design: run the units each look needs (the verdicts decide which: every cell
/// at the first look, then the cells of the predictions still undecided), until the design
/// is decided or at its maximum. Looks are replayed from the stored shards, so a resumed run
/// continues where it stopped.
fn run_looks(study: &Study, options: &RunOptions) -> Result<UnitsOutcome, RunError> {
    let mut total = UnitsOutcome { shards: BTreeMap::new(), computed: 0, reused: 0, compute_seconds: 0.0, teachers: TeacherCounts::default() };
    loop {
        let rows: Vec<Row> = total.shards.values().flat_map(|s| s.rows.iter().cloned()).collect();
        let Some(next) = verdicts::evaluate(study, &rows).next else { return Ok(total) };
        let units: Vec<(usize, usize)> = next.cells.iter().flat_map(|&c| (0..next.seeds).map(move |s| (c, s))).filter(|u| !total.shards.contains_key(u)).collect();
        if units.is_empty() {
            // Every unit the look needs has run but produced no rows: nothing more can be added.
            return Ok(total);
        }
        if options.progress {
            eprintln!("{}: look {} ({} seeds): {} units", study.name, next.index, next.seeds, units.len());
        }
        let look = run_units(study, &units, options)?;
        total.shards.extend(look.shards);
        total.computed += look.computed;
        total.reused += look.reused;
        total.compute_seconds += look.compute_seconds;
        total.teachers.fitted += look.teachers.fitted;
        total.teachers.loaded += look.teachers.loaded;
        total.teachers.uses += look.teachers.uses;
    }
}

/// What [`run_units`] did.
pub struct UnitsOutcome {
    /// Every requested unit's shard, stored earlier or computed now.
    pub shards: BTreeMap<(usize, usize), Shard>,
    pub computed: usize,
    pub reused: usize,
    /// Wall-clock seconds of the compute phases.
    pub compute_seconds: f64,
    pub teachers: TeacherCounts,
}

/// Teachers fitted and loaded from the teacher cache for the computed units, and how many
/// units used them.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeacherCounts {
    pub fitted: usize,
    pub loaded: usize,
    pub uses: usize,
}

impl TeacherCounts {
    /// Counted from the shards themselves (each records whether it fitted or loaded its
    /// teacher), as a merge sees the work of the array tasks.
    fn of<'a>(shards: impl IntoIterator<Item = &'a Shard>) -> TeacherCounts {
        shards.into_iter().fold(TeacherCounts::default(), |mut t, s| {
            t.fitted += s.teacher_fitted as usize;
            t.loaded += s.teacher_loaded as usize;
            t.uses += 1;
            t
        })
    }
}

/// Computes the `units` (cell index, seed) of `study` that have no shard yet, and stores each as
/// a shard in `<out>/<study>/cells/`: phase 1 fits (or loads from the teacher cache) each
/// distinct teacher those units need, and each of their cells' oracle; phase 2 runs the units.
/// The one code path of a local run and of one array task of a cluster run, so both give the
/// same bytes. Takes no lock: callers decide (see [`run`] and [`run_cell`]).
pub fn run_units(study: &Study, units: &[(usize, usize)], options: &RunOptions) -> Result<UnitsOutcome, RunError> {
    threads::one_per_unit();
    let dir = results_dir(&options.out, study);
    let shard_dir = dir.join(SHARDS);
    std::fs::create_dir_all(&shard_dir).map_err(io_error(&shard_dir))?;

    let mut shards: BTreeMap<(usize, usize), Shard> = BTreeMap::new();
    let mut stale = 0;
    for &(c, s) in units {
        match read_unit(study, &options.out, &options.code, c, s) {
            Stored::Fresh(shard) => {
                shards.insert((c, s), *shard);
            }
            Stored::Stale(_) => stale += 1,
            Stored::Absent => {}
        }
    }
    if stale > 0 && options.progress {
        eprintln!("{}: {stale} stored units were computed by other code: computing them again", study.name);
    }
    let reused = shards.len();
    let pending: Vec<(usize, usize)> = units.iter().copied().filter(|u| !shards.contains_key(u)).collect();
    if pending.is_empty() {
        return Ok(UnitsOutcome { shards, computed: 0, reused, compute_seconds: 0.0, teachers: TeacherCounts::default() });
    }

    // Phase 1: every distinct teacher (and each cell's oracle student) the pending units need,
    // fit once. Cells with the same data, teacher and cross-fit settings share a teacher.
    // Fitted teachers are also kept on disk, so a later run (of this study after an edit to its
    // student or distillation settings, of another study with the same teacher, data and base
    // seed, or another array task of a cluster run) loads them instead of refitting. The cache
    // is keyed by content hash and every entry is written atomically, so concurrent processes
    // only ever read whole entries; a process claims a teacher while it fits it, so array
    // tasks that need the same teacher at the same time fit it once (`obtain_teacher`).
    let teacher_cache = options.out.join(TEACHER_CACHE);
    std::fs::create_dir_all(&teacher_cache).map_err(io_error(&teacher_cache))?;
    let mut teacher_jobs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for &(c, s) in &pending {
        teacher_jobs.entry(teacher_key(study, &study.cells[c], s, &options.code)).or_insert((c, s));
    }
    let oracle_cells: Vec<usize> = (0..study.cells.len())
        .filter(|&c| pending.iter().any(|u| u.0 == c) && study.cells[c].config.theory.oracle_n > 0 && study.cells[c].config.data.problem().is_some())
        .collect();
    let progress = Progress::new(options.progress, &study.name, teacher_jobs.len() + pending.len(), reused);
    // Longest units first, so no core idles at the end; teachers in the order of the units
    // that own them.
    let work: BTreeMap<usize, f64> = pending.iter().map(|&(c, _)| (c, resources::unit_work(study, &study.cells[c]))).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.max(1)).build()?;
    let compute_start = Instant::now();
    let (teachers, oracles) = pool.install(|| {
        let jobs: Vec<(&String, &(usize, usize))> = teacher_jobs.iter().collect();
        let obtained: Mutex<Vec<ObtainedTeacher>> = Mutex::new(Vec::new());
        schedule::longest_first(&jobs, |(_, (c, _))| work[c], |&(key, &(c, s))| {
            let got = obtain_teacher(study, &options.data, &teacher_cache, key, c, s, false);
            obtained.lock().expect("no panics while locked").push((key.clone(), got));
        });
        let obtained = obtained.into_inner().expect("no panics while locked");
        // Teachers that another process (an array task needing the same teacher) was fitting:
        // wait for it, holding no claim, then load its result.
        let teachers: BTreeMap<String, (Arc<TeacherOutputs>, bool)> = obtained
            .into_par_iter()
            .map(|(key, got)| {
                let (c, s) = teacher_jobs[&key];
                let (outputs, loaded) = got.or_else(|| obtain_teacher(study, &options.data, &teacher_cache, &key, c, s, true)).expect("a teacher is always obtained when waiting");
                progress.step_done(&format!("teacher of cell {} [{}], seed {s}{}", c, study.cells[c].levels.join(", "), if loaded { ", from the cache" } else { "" }));
                (key, (Arc::new(outputs), loaded))
            })
            .collect();
        let oracles: BTreeMap<usize, Option<Arc<FittedStudent>>> =
            oracle_cells.par_iter().map(|&c| (c, fit_oracle(study, &study.cells[c]).ok().map(Arc::new))).collect();
        (teachers, oracles)
    });

    // Phase 2: the units. The first unit of a teacher carries its fitting time. Each shard is
    // written atomically (temporary file, then rename), so a reader never sees half a shard.
    let execution = options.execution.clone();
    let computed: Mutex<Vec<((usize, usize), Shard)>> = Mutex::new(Vec::new());
    let write_errors: Mutex<Vec<RunError>> = Mutex::new(Vec::new());
    pool.install(|| {
        schedule::longest_first(&pending, |(c, _)| work[c], |&(c, s)| {
            let key = teacher_key(study, &study.cells[c], s, &options.code);
            let owner = teacher_jobs[&key] == (c, s);
            let (outputs, loaded) = &teachers[&key];
            let mut shard = run_unit(study, &study.cells[c], s, &options.data, outputs, owner, oracles.get(&c).cloned().flatten());
            shard.execution = execution.clone();
            shard.code = options.code.clone();
            shard.teacher_fitted = owner && !loaded;
            shard.teacher_loaded = owner && *loaded;
            let path = shard_path(&options.out, study, c, s);
            match serde_json::to_vec(&shard) {
                Ok(bytes) => {
                    if let Err(e) = fsio::write_atomic(&path, &bytes) {
                        write_errors.lock().expect("no panics while locked").push(RunError::Io { path, source: e });
                    }
                }
                Err(e) => write_errors.lock().expect("no panics while locked").push(RunError::Io { path, source: e.into() }),
            }
            progress.step_done(&format!("cell {} [{}], seed {s}", c, study.cells[c].levels.join(", ")));
            computed.lock().expect("no panics while locked").push(((c, s), shard));
        });
    });
    progress.finish();
    if let Some(e) = write_errors.into_inner().expect("no panics while locked").into_iter().next() {
        return Err(e);
    }
    let compute_seconds = compute_start.elapsed().as_secs_f64();
    let computed = computed.into_inner().expect("no panics while locked");
    let teachers = TeacherCounts::of(computed.iter().map(|(_, s)| s));
    shards.extend(computed);
    Ok(UnitsOutcome { shards, computed: pending.len(), reused, compute_seconds, teachers })
}

/// A teacher-cache key with the teacher obtained for it and whether it came from the cache
/// (`None` while another process fits it).
type ObtainedTeacher = (String, Option<(TeacherOutputs, bool)>);

/// What one array task did.
pub struct CellSummary {
    pub cell_index: usize,
    pub cell_id: String,
    pub units_computed: usize,
    pub units_reused: usize,
}

/// The stored shards of `study` (every cell, seeds `0..seeds`) that code `code` computed, by
/// unit.
fn stored_shards(study: &Study, out: &Path, code: &str) -> BTreeMap<(usize, usize), Shard> {
    let units = (0..study.cells.len()).flat_map(|c| (0..study.seeds).map(move |s| (c, s)));
    units.filter_map(|(c, s)| read_unit(study, out, code, c, s).fresh().map(|sh| ((c, s), sh))).collect()
}

/// The units a cluster run still has to compute, judged from the stored shards: every unit of
/// a fixed design without a shard; for a sequential design, the missing units of the look its
/// verdicts ask for next (none once it is decided), and that look.
pub fn pending_units(study: &Study, out: &Path, code: &str) -> (Vec<(usize, usize)>, Option<verdicts::NextLook>) {
    let stored = stored_shards(study, out, code);
    if !study.plan.is_sequential() {
        let all = (0..study.cells.len()).flat_map(|c| (0..study.seeds).map(move |s| (c, s)));
        return (all.filter(|u| !stored.contains_key(u)).collect(), None);
    }
    let rows: Vec<Row> = stored.values().flat_map(|s| s.rows.iter().cloned()).collect();
    let Some(next) = verdicts::evaluate(study, &rows).next else { return (Vec::new(), None) };
    let units = next.cells.iter().flat_map(|&c| (0..next.seeds).map(move |s| (c, s))).filter(|u| !stored.contains_key(u)).collect();
    (units, Some(next))
}

/// Computes one array task of a cluster run: every seed of cell `cell_index` that has no
/// shard yet (a finished task does nothing); for a sequential design, the seeds of this cell
/// that the next look needs (the look is replayed from the stored shards). The seeds run in
/// parallel on `options.jobs` threads, and the cell's oracle is fit once for all of them, as
/// in a local run.
///
/// Many tasks of one study run at once, so a task takes only a *shared* lock on the output
/// directory: tasks do not wait for each other, while a local `kdlab study` or a merge (which
/// take it exclusively) cannot run beside them. Tasks need no more than that: they write only
/// their own shards, and those and the teacher-cache entries are written atomically
/// (temporary file, then rename), so concurrent tasks never see half-written files.
pub fn run_cell(study: &Study, cell_index: usize, options: &RunOptions) -> Result<CellSummary, RunError> {
    let cell = study.cells.get(cell_index).ok_or_else(|| RunError::NoSuchTask { study: study.name.clone(), task: cell_index.to_string(), tasks: study.cells.len() })?;
    let dir = results_dir(&options.out, study);
    ensure_data(study, [cell_index], &options.data)?;
    let _lock = fsio::DirLock::acquire_shared(&dir).map_err(io_error(&dir))?;
    let units: Vec<(usize, usize)> = if study.plan.is_sequential() {
        pending_units(study, &options.out, &options.code).0.into_iter().filter(|u| u.0 == cell_index).collect()
    } else {
        (0..study.seeds).map(|s| (cell_index, s)).collect()
    };
    let outcome = run_units(study, &units, options)?;
    Ok(CellSummary { cell_index, cell_id: cell.id.clone(), units_computed: outcome.computed, units_reused: outcome.reused })
}

/// The index of the cell whose id is `id` (the ids `kdlab study --plan` prints).
pub fn cell_index(study: &Study, id: &str) -> Result<usize, RunError> {
    study.cells.iter().position(|c| c.id == id).ok_or_else(|| RunError::NoSuchTask { study: study.name.clone(), task: id.to_string(), tasks: study.cells.len() })
}

/// Merges the shards that the array tasks of a cluster run stored into the results files and
/// the report, exactly as the end of a local run does (the same function writes them). Holds
/// the exclusive lock, so no task or local run writes while it reads. Fails, naming them, if
/// some units have no shard.
pub fn merge(study: &Study, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let dir = results_dir(&options.out, study);
    let _lock = fsio::DirLock::acquire(&dir).map_err(io_error(&dir))?;
    if study.plan.is_sequential() {
        return merge_looks(study, options, started);
    }
    refuse_stale(study, &options.out, &options.code)?;
    let shards = stored_shards(study, &options.out, &options.code);
    let missing: Vec<String> = (0..study.cells.len())
        .flat_map(|c| (0..study.seeds).map(move |s| (c, s)))
        .filter(|u| !shards.contains_key(u))
        .map(|(c, s)| format!("cell {c} ({}) seed {s}", study.cells[c].id))
        .collect();
    if !missing.is_empty() {
        return Err(RunError::Missing { study: study.name.clone(), count: missing.len(), first: missing.into_iter().take(5).collect::<Vec<_>>().join(", ") });
    }
    // Every unit was computed by this run's array tasks; their shards say how.
    let teachers = TeacherCounts::of(shards.values());
    let computed = shards.len();
    finish(study, options, UnitsOutcome { shards, computed, reused: 0, compute_seconds: 0.0, teachers }, started)
}

/// A sequential design's merge: the report once its verdicts are decided, otherwise the look
/// still to run.
fn merge_looks(study: &Study, options: &RunOptions, started: Instant) -> Result<RunSummary, RunError> {
    refuse_stale(study, &options.out, &options.code)?;
    match pending_units(study, &options.out, &options.code) {
        // A look whose units all ran but left no rows cannot grow: report what there is.
        (units, Some(next)) if !units.is_empty() => {
            return Err(RunError::LookPending { study: study.name.clone(), look: next.index, seeds: next.seeds, cells: next.cells.into_iter().collect(), count: units.len() });
        }
        _ => {}
    }
    let shards = stored_shards(study, &options.out, &options.code);
    let teachers = TeacherCounts::of(shards.values());
    let computed = shards.len();
    finish(study, options, UnitsOutcome { shards, computed, reused: 0, compute_seconds: 0.0, teachers }, started)
}

/// Writes the results files, timings, provenance and report from every unit's shard: the end
/// of both a local run and a merge.
fn finish(study: &Study, options: &RunOptions, outcome: UnitsOutcome, started: Instant) -> Result<RunSummary, RunError> {
    let dir = results_dir(&options.out, study);
    let UnitsOutcome { shards, computed, reused, compute_seconds, teachers } = outcome;
    let rows: Vec<Row> = shards.values().flat_map(|s| s.rows.iter().cloned()).collect();
    let axes: Vec<String> = study.axes.iter().map(|a| a.key.clone()).collect();
    let mut frame = results::to_frame(&study.name, &axes, &rows, study.registry.metrics()).map_err(|e| RunError::Results(Box::new(e)))?;
    results::write(&dir, &mut frame).map_err(RunError::Results)?;
    results::write_reliability(&dir, &rows).map_err(RunError::Results)?;

    let mut stage_totals = StageTimes::default();
    let mut timing_csv = String::from("cell,cell_id,seed,data_s,teacher_s,students_s,metrics_s\n");
    for ((c, s), shard) in &shards {
        let t = &shard.times;
        stage_totals.data += t.data;
        stage_totals.teacher += t.teacher;
        stage_totals.students += t.students;
        stage_totals.metrics += t.metrics;
        timing_csv.push_str(&format!("{c},{},{s},{:.4},{:.4},{:.4},{:.4}\n", shard.cell_id, t.data, t.teacher, t.students, t.metrics));
    }
    fsio::write_atomic(&dir.join("timings.csv"), timing_csv.as_bytes()).map_err(io_error(&dir))?;
    fsio::write_atomic(&dir.join("study.toml"), study.source.as_bytes()).map_err(io_error(&dir))?;
    let surfaces: Vec<&crate::loss_surface::LossSurface> = shards.values().flat_map(|s| &s.surfaces).collect();
    if !surfaces.is_empty() {
        let json = serde_json::to_string(&surfaces).expect("serialisable");
        fsio::write_atomic(&dir.join(report::LOSS_SURFACES), json.as_bytes()).map_err(io_error(&dir))?;
    }

    let mut provenance = Provenance::collect(study, options.jobs, reused, computed, stage_totals, compute_seconds, started.elapsed().as_secs_f64());
    provenance.code_fingerprint = options.code.clone();
    provenance.teachers_fitted = teachers.fitted;
    provenance.teachers_loaded = teachers.loaded;
    provenance.teacher_uses = teachers.uses;
    let (hosts, scheduler) = SchedulerRecord::gather(shards.values().map(|s| &s.execution), &options.execution);
    provenance.hosts = hosts;
    provenance.scheduler = scheduler;
    fsio::write_atomic(&dir.join("provenance.json"), serde_json::to_string_pretty(&provenance).expect("serialisable").as_bytes()).map_err(io_error(&dir))?;
    let report = report::render_all(study, &rows, &provenance, &options.out).map_err(|e| RunError::Io { path: options.out.clone(), source: e })?;
    Ok(RunSummary {
        report,
        results_dir: dir,
        units_computed: computed,
        units_reused: reused,
        failed_rows: rows.iter().filter(|r| r.failure.is_some()).count(),
    })
}

/// Real data, and a teacher's prediction files, are read once up front, so a missing or bad
/// file stops the study before any work.
fn ensure_data(study: &Study, cells: impl IntoIterator<Item = usize>, data: &DataStore) -> Result<(), RunError> {
    let fail = |message: String| RunError::Data { study: study.name.clone(), message };
    for c in cells {
        let cell = &study.cells[c];
        cell.config.data.ensure_available(data).map_err(fail)?;
        if let TeacherSpec::Predictions(files) = &cell.config.teacher {
            for rep in 0..study.seeds {
                teacher_set(study, cell, rep, data, files).map_err(|message| RunError::TeacherFiles { study: study.name.clone(), message })?;
            }
        }
    }
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { path, source }
}

/// Directory (under a study's results directory) of the per-unit shards.
pub const SHARDS: &str = "cells";

/// Where the shard of unit (cell index, seed) is stored.
pub fn shard_path(out: &Path, study: &Study, cell: usize, seed: usize) -> PathBuf {
    results_dir(out, study).join(SHARDS).join(format!("{}-seed{}.json", study.cells[cell].id, seed))
}

/// A stale unit as an error names it.
fn stale_unit(unit: &str, code: &str) -> String {
    match code {
        "" => format!("{unit}, by a build from before code fingerprints"),
        code => format!("{unit}, by code {code}"),
    }
}

/// Refuses to merge when any stored unit of `study` was computed by other code than `code`.
fn refuse_stale(study: &Study, out: &Path, code: &str) -> Result<(), RunError> {
    let units = (0..study.cells.len()).flat_map(|c| (0..study.seeds).map(move |s| (c, s)));
    let stale: Vec<String> = units
        .filter_map(|(c, s)| match read_unit(study, out, code, c, s) {
            Stored::Stale(other) => Some(stale_unit(&format!("cell {c} ({}) seed {s}", study.cells[c].id), &other)),
            _ => None,
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    Err(RunError::Stale { study: study.name.clone(), count: stale.len(), first: stale.into_iter().take(3).collect::<Vec<_>>().join("; "), code: code.to_string() })
}

/// What is stored for one unit.
pub enum Stored {
    /// A valid shard computed by the code asked for.
    Fresh(Box<Shard>),
    /// A valid shard computed by other code (its fingerprint): never reused.
    Stale(String),
    /// No shard, or one that cannot be read.
    Absent,
}

impl Stored {
    pub fn fresh(self) -> Option<Shard> {
        match self {
            Stored::Fresh(shard) => Some(*shard),
            _ => None,
        }
    }
}

/// The stored shard of a unit, judged against the fingerprint `code` of the code running now.
pub fn read_unit(study: &Study, out: &Path, code: &str, cell: usize, seed: usize) -> Stored {
    match read_shard(&shard_path(out, study, cell, seed)) {
        Some(sh) if sh.cell_id != study.cells[cell].id || sh.seed != seed => Stored::Absent,
        Some(sh) if sh.code != code => Stored::Stale(sh.code),
        Some(sh) => Stored::Fresh(Box::new(sh)),
        None => Stored::Absent,
    }
}

fn read_shard(path: &Path) -> Option<Shard> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The outputs of teacher `key` (first needed by unit (c, s)) and whether they were loaded
/// from the teacher cache. Fits the teacher under a claim, so that concurrent processes that
/// need the same teacher fit it once; returns `None` when another process holds the claim
/// (unless `wait`, which waits for it to finish and then loads or, if it failed, fits).
fn obtain_teacher(study: &Study, data: &DataStore, cache: &Path, key: &str, c: usize, s: usize, wait: bool) -> Option<(TeacherOutputs, bool)> {
    // Fidelity units and method arms need the teacher networks themselves, which the cache
    // does not hold; a teacher of predictions is read afresh (its files may change).
    if study.cells[c].config.fidelity.is_some() || needs_teacher_network(study) || matches!(study.cells[c].config.teacher, TeacherSpec::Predictions(_)) {
        return Some((fit_teacher(study, &study.cells[c], s, data), false));
    }
    let cached = cache.join(format!("{key}.json"));
    let load = || std::fs::read(&cached).ok().and_then(|b| serde_json::from_slice::<TeacherOutputs>(&b).ok()).map(|o| (TeacherOutputs { times: StageTimes::default(), ..o }, true));
    if let Some(hit) = load() {
        return Some(hit);
    }
    let claim_path = cache.join("claims").join(key);
    let _claim = if wait {
        fsio::wait_released(&claim_path);
        if let Some(hit) = load() {
            return Some(hit);
        }
        None
    } else {
        match fsio::try_claim(&claim_path) {
            fsio::Claim::Busy => return None,
            fsio::Claim::Held(file) => {
                // The holder before us may have just finished.
                if let Some(hit) = load() {
                    return Some(hit);
                }
                Some(file)
            }
            fsio::Claim::Unsupported => None,
        }
    };
    let outputs = fit_teacher(study, &study.cells[c], s, data);
    // A failed teacher is not cached: the next run tries again.
    if outputs.failure.is_none() {
        if let Ok(bytes) = serde_json::to_vec(&outputs) {
            // Best effort: a teacher that cannot be cached is only refit next time.
            let _ = fsio::write_atomic(&cached, &bytes);
        }
    }
    Some((outputs, false))
}

/// Directory (under the output directory) of the teacher cache.
pub const TEACHER_CACHE: &str = ".teacher-cache";

/// Identifies a teacher's outputs: everything they depend on (the fingerprint `code` of the
/// code that fits it, base seed, data, teacher, the cross-fit settings when an arm cross-fits,
/// the diagnostics asked for, the replicate).
pub fn teacher_key(study: &Study, cell: &Cell, rep: usize, code: &str) -> String {
    let cfg = &cell.config;
    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold).then_some((cfg.distill.crossfit_folds, cfg.distill.stratified));
    let what = (code, study.base_seed, &cfg.data, &cfg.teacher, crossfit, &cfg.diagnostics, rep);
    seed::short_hash(&serde_json::to_string(&what).expect("serialisable"))
}

/// Writes the teacher of every seed of `study` as teacher prediction files under `dir`
/// ([`crate::teacher_files`]), loading each from the teacher cache of `options.out` (a run of
/// the study fills it) or fitting it. The study must draw a `file` data set (rows with ids) and
/// have one teacher per seed (no grid over its data or teacher). Returns the seeds written.
pub fn export_teachers(study: &Study, options: &RunOptions, dir: &Path) -> Result<usize, RunError> {
    threads::one_per_unit();
    let fail = |message: String| RunError::Export { study: study.name.clone(), message };
    let mut per_seed: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for seed in 0..study.seeds {
        for (c, cell) in study.cells.iter().enumerate() {
            let key = teacher_key(study, cell, seed, &options.code);
            match per_seed.get(&seed) {
                Some((other, _)) if *other != key => return Err(fail("the study's grid gives a seed more than one teacher (it varies the data or the teacher); export needs one teacher per seed".into())),
                _ => per_seed.insert(seed, (key, c)),
            };
        }
    }
    let cache = options.out.join(TEACHER_CACHE);
    std::fs::create_dir_all(&cache).map_err(io_error(&cache))?;
    let (mut seeds, mut failed) = (Vec::new(), Vec::new());
    let mut classes = 0;
    for (&seed, (key, c)) in &per_seed {
        let cell = &study.cells[*c];
        let (_, data_seed, teacher_seed) = unit_seeds(study, cell, seed);
        let split = match cell.config.data.row_split(data_seed, &options.data) {
            Ok(Some(split)) => split,
            Ok(None) => return Err(fail("the data set's rows have no ids; export needs `[data] kind = \"file\"`".into())),
            Err(e) => return Err(fail(format!("data: {e}"))),
        };
        let (outputs, _) = obtain_teacher(study, &options.data, &cache, key, *c, seed, true).expect("a teacher is always obtained when waiting");
        if let Some(reason) = &outputs.failure {
            failed.push((seed, reason.clone()));
            continue;
        }
        classes = outputs.train.ncols();
        let folds = match &outputs.crossfit {
            Some(Ok(_)) => {
                let train = draw_data(cell, data_seed, &options.data).map_err(fail)?.0;
                Some(distill::crossfit_folds(&train.y, &cell.config.distill, teacher_seed))
            }
            _ => None,
        };
        let out_of_fold = match (&outputs.crossfit, &folds) {
            (Some(Ok((p, _))), Some(f)) => Some((p.view(), f.as_slice())),
            _ => None,
        };
        let set = teacher_files::TeacherSet { train_rows: &split.train, test_rows: &split.test, train: outputs.train.view(), test: outputs.test.view(), out_of_fold };
        teacher_files::write_set(dir, seed, &set).map_err(io_error(dir))?;
        seeds.push(seed);
    }
    let config = &study.cells[0].config;
    let manifest = teacher_files::Manifest {
        study: study.name.clone(),
        study_sha256: study.sha256.clone(),
        kdlab_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: crate::provenance::git_state().0,
        data: serde_json::to_value(&config.data).unwrap_or_default(),
        teacher: serde_json::to_value(&config.teacher).unwrap_or_default(),
        classes,
        values: "probabilities",
        seeds: seeds.clone(),
        failed,
    };
    teacher_files::write_manifest(dir, &manifest).map_err(io_error(dir))?;
    Ok(seeds.len())
}

/// Out-of-fold targets with the `crossfit-teacher` row's metrics, or why cross-fitting failed;
/// `None` when no arm cross-fits.
type Crossfit = Option<Result<(Array2<f64>, BTreeMap<String, f64>), String>>;

/// What the students of a unit need from its teacher, computed once and shared by every cell
/// with the same [`teacher_key`] (and stored in the teacher cache).
#[derive(Serialize, Deserialize)]
struct TeacherOutputs {
    /// The teacher's probabilities on the training and test points.
    train: Array2<f64>,
    test: Array2<f64>,
    /// The `teacher` row's metrics and reliability bins.
    metrics: BTreeMap<String, f64>,
    reliability: Vec<ReliabilityBin>,
    /// Out-of-fold targets and the `crossfit-teacher` row's metrics, when an arm cross-fits.
    crossfit: Crossfit,
    /// `Err` when the data or the teacher failed: every row of the unit fails with it.
    failure: Option<String>,
    /// The rows a teacher of predictions names (its files' split), which the students use too.
    #[serde(default)]
    rows: Option<RowSplit>,
    times: StageTimes,
    /// The teacher networks of a fidelity study (kept in memory only, never cached).
    #[serde(skip)]
    networks: Option<Arc<fidelity::TeacherPair>>,
    /// The teacher network of a study with method arms (in memory only, never cached).
    #[serde(skip)]
    network: Option<Arc<NetworkEnsemble>>,
}

/// Whether an arm of the study reads the teacher network itself.
fn needs_teacher_network(study: &Study) -> bool {
    study.arms.iter().any(|a| a.needs().teacher_network)
}

fn unit_seeds(study: &Study, cell: &Cell, rep: usize) -> (String, u64, u64) {
    let cfg = &cell.config;
    let rep_label = rep.to_string();
    let data_key = seed::short_hash(&serde_json::to_string(&cfg.data).expect("serialisable"));
    let teacher_key = seed::short_hash(&serde_json::to_string(&cfg.teacher).expect("serialisable"));
    let data_seed = seed::derive(study.base_seed, &["data", &rep_label, &data_key]);
    let teacher_seed = seed::derive(study.base_seed, &["teacher", &rep_label, &data_key, &teacher_key]);
    (data_key, data_seed, teacher_seed)
}

/// One replicate's data; real data have no population sample, so an empty one makes every
/// population metric absent.
fn draw_data(cell: &Cell, data_seed: u64, data: &DataStore) -> Result<(Dataset, Dataset, Dataset), String> {
    split_data(cell, cell.config.data.draw(data_seed, data).map_err(|e| format!("data: {e}"))?)
}

/// A drawn replicate as (train, test, population), checked against the student.
fn split_data(cell: &Cell, draw: crate::data::Draw) -> Result<(Dataset, Dataset, Dataset), String> {
    let k = draw.train.n_classes;
    if matches!(cell.config.student, StudentSpec::ForestRegressor(_)) && k != 2 {
        return Err(format!("a forest-regressor student needs two classes; the data have {k}"));
    }
    let population = draw.population.unwrap_or_else(|| Dataset { x: Array2::zeros((0, draw.train.x.ncols())), y: Vec::new(), n_classes: k, p0: None, image_shape: draw.train.image_shape });
    Ok((draw.train, draw.test, population))
}

/// Fits the teacher of (cell, rep), its cross-fit teachers when an arm needs them, and scores them.
fn fit_teacher(study: &Study, cell: &Cell, rep: usize, data: &DataStore) -> TeacherOutputs {
    let cfg = &cell.config;
    let (_, data_seed, teacher_seed) = unit_seeds(study, cell, rep);
    let mut times = StageTimes::default();
    let failed = |reason: String, times: StageTimes| TeacherOutputs::failed(reason, times);
    if let TeacherSpec::Predictions(files) = &cfg.teacher {
        return read_teacher(study, cell, rep, data, files);
    }
    let t = Instant::now();
    let (train, test, population) = match draw_data(cell, data_seed, data) {
        Ok(d) => d,
        Err(e) => return failed(e, times),
    };
    let k = train.n_classes;
    times.data = t.elapsed().as_secs_f64();

    let teacher_spec = &cfg.teacher;
    let t = Instant::now();
    let mut networks = None;
    let mut network = None;
    let teacher: Box<dyn crate::models::Teacher> = match (&cfg.fidelity, teacher_spec.network()) {
        (Some(_), Some(net)) => {
            let pair = net.fit(train.rows(), &train.y, k, teacher_seed).and_then(|main| {
                let independent = net.fit(train.rows(), &train.y, k, fidelity::independent_seed(teacher_seed))?;
                Ok(fidelity::TeacherPair { main: Arc::new(main), independent: Arc::new(independent) })
            });
            match pair {
                Ok(pair) => {
                    let pair = Arc::new(pair);
                    networks = Some(pair.clone());
                    Box::new(fidelity::MainTeacher(pair))
                }
                Err(e) => return failed(format!("teacher: {e}"), times),
            }
        }
        (None, Some(net)) if needs_teacher_network(study) => {
            // RCO distils from the teacher's checkpoints, so the teacher keeps its route.
            let fitted = match study.arms.iter().any(|a| a.needs().teacher_checkpoints) {
                true => net.fit_keeping_route(train.rows(), &train.y, k, teacher_seed),
                false => net.fit(train.rows(), &train.y, k, teacher_seed),
            };
            match fitted {
                Ok(ensemble) => {
                    let ensemble = Arc::new(ensemble);
                    network = Some(ensemble.clone());
                    Box::new(SharedTeacher(ensemble))
                }
                Err(e) => return failed(format!("teacher: {e}"), times),
            }
        }
        _ => match teacher_spec.fit(train.rows(), &train.y, k, teacher_seed) {
            Ok(t) => t,
            Err(e) => return failed(format!("teacher: {e}"), times),
        },
    };
    let teacher_train = teacher.predict_proba(train.x.view());
    let teacher_test = teacher.predict_proba(test.x.view());
    let teacher_population = on_population(&population, k, |x| Ok(teacher.predict_proba(x))).unwrap_or_else(|_| Array2::zeros((0, k)));
    times.teacher = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut metrics = prediction_metrics(&study.registry, teacher_test.view(), &test, teacher_population.view(), &population, None);
    metrics.insert("chance_accuracy".into(), chance_accuracy(&test.y, k));
    if let (Some(p0_train), Some(p0_pop)) = (&train.p0, &population.p0) {
        let in_sample = metrics::squared_error_rows(teacher_train.view(), p0_train.view()).unwrap_or(f64::NAN);
        let population_error = metrics::squared_error_rows(teacher_population.view(), p0_pop.view()).unwrap_or(f64::NAN);
        metrics.insert("teacher_error_in_sample".into(), in_sample);
        metrics.insert("teacher_error_population".into(), population_error);
        metrics.insert("teacher_in_sample_excess".into(), in_sample - population_error);
        let fourth = |p: ArrayView2<f64>, q: ArrayView2<f64>| metrics::fourth_power_error_rows(p, q).unwrap_or(f64::NAN);
        metrics.insert("teacher_error4_in_sample".into(), fourth(teacher_train.view(), p0_train.view()));
        metrics.insert("teacher_error4_population".into(), fourth(teacher_population.view(), p0_pop.view()));
    }
    let mut reliability = Vec::new();
    if let Some(spec) = &cfg.diagnostics {
        let predict = |x: ArrayView2<f64>| teacher.predict_proba(x);
        let d = suite::evaluate(spec, test.x.view(), &test.y, teacher_test.view(), None, &ModelAccess::BlackBox(&predict), seed::derive(teacher_seed, &["diagnostics"]));
        metrics.extend(d.metrics.into_iter().map(|(n, v)| (n.to_string(), v)));
        reliability = d.reliability;
    }
    times.metrics += t.elapsed().as_secs_f64();

    let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold).then(|| {
        let t = Instant::now();
        let fit = distill::cross_fit(teacher_spec, train.rows(), &train.y, k, &cfg.distill, teacher_seed);
        times.teacher += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = fit.map(|cf| {
            let m = crossfit_teacher_metrics(&study.registry, &cf, &train, &test, &population);
            (cf.out_of_fold, m)
        });
        times.metrics += t.elapsed().as_secs_f64();
        out.map_err(|e| format!("cross-fit teacher: {e}"))
    });
    if let Some(gap) = oof_gap(&crossfit, teacher_train.view(), &train.y) {
        metrics.insert("teacher_oof_gap".into(), gap);
    }
    TeacherOutputs { train: teacher_train, test: teacher_test, metrics, reliability, crossfit, failure: None, rows: None, times, networks, network }
}

/// Log loss of the out-of-fold probabilities minus that of the in-sample ones, on the training
/// labels (`teacher_oof_gap`), when the teacher was cross-fitted.
fn oof_gap(crossfit: &Crossfit, in_sample: ArrayView2<f64>, y: &[usize]) -> Option<f64> {
    let Some(Ok((out_of_fold, _))) = crossfit else { return None };
    Some(metrics::log_loss(out_of_fold.view(), y).ok()? - metrics::log_loss(in_sample, y).ok()?)
}

impl TeacherOutputs {
    fn failed(reason: String, times: StageTimes) -> TeacherOutputs {
        TeacherOutputs {
            train: Array2::zeros((0, 0)),
            test: Array2::zeros((0, 0)),
            metrics: BTreeMap::new(),
            reliability: Vec::new(),
            crossfit: None,
            failure: Some(reason),
            rows: None,
            times,
            networks: None,
            network: None,
        }
    }
}

/// Replicate `rep`'s teacher files read and checked, its split, the data drawn on it, and the
/// class count.
fn teacher_set(study: &Study, cell: &Cell, rep: usize, data: &DataStore, files: &teacher_files::PredictionsTeacherSpec) -> Result<(teacher_files::ReadSet, RowSplit, crate::data::Draw, usize), String> {
    let crossfit_arms: Vec<&str> = study.arms.iter().filter(|a| a.needs().out_of_fold).map(|a| a.name()).collect();
    let arms = crossfit_arms.join(", ");
    // The class count is the data file's (its loader numbers the classes).
    let k = cell.config.data.draw(unit_seeds(study, cell, rep).1, data).map_err(|e| format!("data: {e}"))?.train.n_classes;
    let set = teacher_files::read_set(&files.set_dir(rep), k, files.values, (!crossfit_arms.is_empty()).then_some(arms.as_str()))?;
    let rows = RowSplit { train: set.train_rows.clone(), test: set.test_rows.clone() };
    let draw = cell.config.data.draw_rows(&rows, data).map_err(|e| format!("{}: {e}", files.set_dir(rep).display()))?;
    Ok((set, rows, draw, k))
}

/// A teacher of predictions: its files for replicate `rep` ([`teacher_files`]) give the split
/// and the probabilities. The teacher row's metrics are those computed from its test
/// probabilities (with the calibration diagnostics, when asked); the `crossfit-teacher` row has
/// none (they would need the fold teachers).
fn read_teacher(study: &Study, cell: &Cell, rep: usize, data: &DataStore, files: &teacher_files::PredictionsTeacherSpec) -> TeacherOutputs {
    let mut times = StageTimes::default();
    let t = Instant::now();
    let (set, rows, draw, k) = match teacher_set(study, cell, rep, data, files) {
        Ok(read) => read,
        Err(e) => return TeacherOutputs::failed(format!("teacher: {e}"), times),
    };
    times.teacher = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let population = Dataset { x: Array2::zeros((0, draw.test.x.ncols())), y: Vec::new(), n_classes: k, p0: None, image_shape: None };
    let mut metrics = prediction_metrics(&study.registry, set.test.view(), &draw.test, Array2::zeros((0, k)).view(), &population, None);
    metrics.insert("chance_accuracy".into(), chance_accuracy(&draw.test.y, k));
    // Diagnostics of its test probabilities alone (calibration); none that probe the model.
    let mut reliability = Vec::new();
    if let Some(spec) = &cell.config.diagnostics {
        let seed = seed::derive(unit_seeds(study, cell, rep).2, &["diagnostics"]);
        let d = suite::evaluate(spec, draw.test.x.view(), &draw.test.y, set.test.view(), None, &ModelAccess::TestProbabilities, seed);
        metrics.extend(d.metrics.into_iter().map(|(n, v)| (n.to_string(), v)));
        reliability = d.reliability;
    }
    let crossfit = set.out_of_fold.map(|p| Ok((p, BTreeMap::new())));
    if let Some(gap) = oof_gap(&crossfit, set.train.view(), &draw.train.y) {
        metrics.insert("teacher_oof_gap".into(), gap);
    }
    times.metrics = t.elapsed().as_secs_f64();
    TeacherOutputs { train: set.train, test: set.test, metrics, reliability, crossfit, failure: None, rows: Some(rows), times, networks: None, network: None }
}

/// A teacher network shared with the method arms.
struct SharedTeacher(Arc<NetworkEnsemble>);

impl crate::models::Teacher for SharedTeacher {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.0.predict_proba(x)
    }
}

/// Computes one (cell, seed) unit from its teacher's outputs: every arm's student and its
/// metrics. A failure (data, teacher, a diverging student) becomes failed rows with the reason;
/// the rest of the unit goes on. `owner`: this unit carries the teacher's fitting time.
fn run_unit(study: &Study, cell: &Cell, rep: usize, data: &DataStore, teacher: &TeacherOutputs, owner: bool, oracle: Option<Arc<FittedStudent>>) -> Shard {
    let cfg = &cell.config;
    let rows_of = UnitRows { cell, rep };
    let mut times = if owner { teacher.times.clone() } else { StageTimes::default() };
    let failed = |reason: String, times: StageTimes| Shard { cell_id: cell.id.clone(), seed: rep, rows: rows_of.all_failed(study, &reason), times, ..Shard::default() };
    if let Some(reason) = &teacher.failure {
        return failed(reason.clone(), times);
    }
    let t = Instant::now();
    let (data_key, data_seed, teacher_seed) = unit_seeds(study, cell, rep);
    // A teacher of predictions names the rows (its files' split); otherwise the seed draws them.
    let drawn = match &teacher.rows {
        Some(rows) => cfg.data.draw_rows(rows, data).map_err(|e| format!("data: {e}")).and_then(|d| split_data(cell, d)),
        None => draw_data(cell, data_seed, data),
    };
    let (train, test, population) = match drawn {
        Ok(d) => d,
        Err(e) => return failed(e, times),
    };
    let student_spec = &cfg.student;
    times.data += t.elapsed().as_secs_f64();

    let (mut rows, out_of_fold) = rows_of.teacher_rows(teacher);
    let split_seed = seed::derive(study.base_seed, &["split", &rep.to_string(), &data_key]);
    let (fit_idx, val_idx) = match student_spec.validation_fraction() {
        f if f > 0.0 => validation_split(train.len(), f, split_seed),
        _ => ((0..train.len()).collect(), Vec::new()),
    };
    let (fit, val) = (train.select(&fit_idx), train.select(&val_idx));
    let student_key = seed::short_hash(&serde_json::to_string(&cfg.student).expect("serialisable"));
    let student_seed = seed::derive(study.base_seed, &["student", &rep.to_string(), &data_key, &student_key]);
    let (fit, fit_idx, quiz) = match hold_out_quiz(cfg, fit, fit_idx, student_seed) {
        Ok(sets) => sets,
        Err(e) => return failed(format!("quiz rows: {e}"), times),
    };

    // The oracle student f0, where p0 is known: the student class fit to p0.
    let t = Instant::now();
    let oracle_population = oracle.as_ref().filter(|_| population.p0.is_some()).and_then(|o| o.predict_proba(population.x.view()).ok());
    if let (Some(o), Some(p_pop)) = (&oracle, &oracle_population) {
        if let Ok(p_test) = o.predict_proba(test.x.view()) {
            rows.push(finite_row(rows_of.row(RowKind::Oracle.arm(), None, prediction_metrics(&study.registry, p_test.view(), &test, p_pop.view(), &population, None))));
        }
    }
    times.students += t.elapsed().as_secs_f64();

    let sets = UnitSets { fit: &fit, val: &val, quiz: quiz.as_ref(), test: &test, population: &population, fit_idx: &fit_idx, out_of_fold, student_seed, teacher_seed };
    let protocol = unit_protocol(cell, rep, teacher, (student_spec, &cfg.teacher), &sets);
    let t = Instant::now();
    rows[0].metrics.extend(protocol.teacher_metrics());
    times.metrics += t.elapsed().as_secs_f64();

    let scoring = Scoring { registry: &study.registry, cfg, test: &test, population: &population, fit: &fit, teacher, teacher_labels: teacher.test.rows().into_iter().map(metrics::argmax).collect(), oracle_population, seed: student_seed };
    let mut surfaces = Vec::new();
    for &arm in &study.arms {
        let t = Instant::now();
        let fitted = protocol.fit_arm(arm);
        times.students += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scored = fitted.and_then(|mut f| {
            if let Some(mut surface) = f.surface.take() {
                surface.cell_index = cell.index;
                surface.seed = rep;
                surfaces.push(surface);
            }
            let (mut m, reliability) = scoring.metrics(&f.student, arm, f.chosen_c)?;
            m.extend(f.metrics);
            Ok((m, reliability))
        });
        rows.push(match scored {
            Ok((m, reliability)) => Row { reliability, ..finite_row(rows_of.row(arm.name(), None, m)) },
            Err(e) => rows_of.row(arm.name(), Some(e.to_string()), BTreeMap::new()),
        });
        times.metrics += t.elapsed().as_secs_f64();
    }
    Shard { cell_id: cell.id.clone(), seed: rep, rows, times, surfaces, ..Shard::default() }
}

/// The rows of one unit.
struct UnitRows<'a> {
    cell: &'a Cell,
    rep: usize,
}

impl UnitRows<'_> {
    fn row(&self, arm: &str, failure: Option<String>, metrics: BTreeMap<String, f64>) -> Row {
        let cell = self.cell;
        Row { cell_index: cell.index, cell_id: cell.id.clone(), levels: cell.levels.clone(), seed: self.rep, arm: arm.to_string(), failure, metrics, reliability: Vec::new() }
    }

    /// Every row of the unit, failed with `reason`.
    fn all_failed(&self, study: &Study, reason: &str) -> Vec<Row> {
        let crossfit = study.arms.iter().any(|a| a.needs().out_of_fold).then_some(RowKind::CrossfitTeacher.arm());
        let arms = std::iter::once(RowKind::Teacher.arm()).chain(crossfit).chain(study.arms.iter().map(|a| a.name()));
        arms.map(|a| self.row(a, Some(reason.to_string()), BTreeMap::new())).collect()
    }

    /// The `teacher` row (first), the `crossfit-teacher` row when an arm cross-fits, and the
    /// out-of-fold targets when cross-fitting succeeded.
    fn teacher_rows<'t>(&self, teacher: &'t TeacherOutputs) -> (Vec<Row>, Option<&'t Array2<f64>>) {
        let mut teacher_row = finite_row(self.row(RowKind::Teacher.arm(), None, teacher.metrics.clone()));
        teacher_row.reliability = teacher.reliability.clone();
        let mut rows = vec![teacher_row];
        let out_of_fold = match &teacher.crossfit {
            None => None,
            Some(Ok((out_of_fold, m))) => {
                rows.push(finite_row(self.row(RowKind::CrossfitTeacher.arm(), None, m.clone())));
                Some(out_of_fold)
            }
            Some(Err(e)) => {
                rows.push(self.row(RowKind::CrossfitTeacher.arm(), Some(e.clone()), BTreeMap::new()));
                None
            }
        };
        (rows, out_of_fold)
    }
}

/// What one unit's students train and are scored on: the student's fit and validation rows
/// (and the fit rows' indices into the training rows), the test rows, the population sample,
/// the cross-fit targets when cross-fitting succeeded, and the students' and teacher's seeds.
/// The fit rows without MetaDistil's quiz rows, and the quiz rows, when the study holds them
/// out of every arm (`quiz_for_every_arm`): the same seeded carve the arm itself makes.
fn hold_out_quiz(cfg: &crate::study::CellConfig, fit: Dataset, fit_idx: Vec<usize>, student_seed: u64) -> Result<(Dataset, Vec<usize>, Option<Dataset>), String> {
    let Some(spec) = cfg.method.as_ref().filter(|m| m.quiz_for_every_arm) else { return Ok((fit, fit_idx, None)) };
    let (keep, quiz) = crate::distill::meta::carve_quiz(fit.len(), spec.quiz_fraction, Some(&fit.y), seed::derive(student_seed, &["quiz"])).map_err(|e| e.to_string())?;
    let kept_idx = keep.iter().map(|&i| fit_idx[i]).collect();
    Ok((fit.select(&keep), kept_idx, Some(fit.select(&quiz))))
}

struct UnitSets<'a> {
    fit: &'a Dataset,
    val: &'a Dataset,
    quiz: Option<&'a Dataset>,
    test: &'a Dataset,
    population: &'a Dataset,
    fit_idx: &'a [usize],
    out_of_fold: Option<&'a Array2<f64>>,
    student_seed: u64,
    teacher_seed: u64,
}

/// The protocol that trains a unit's students: method units when the teacher network is
/// kept for method arms, the fidelity protocol for a `[fidelity]` study, otherwise the
/// semiparametric protocol. `specs`: the student's and the teacher's, for the data's images.
fn unit_protocol<'a>(cell: &'a Cell, rep: usize, teacher: &'a TeacherOutputs, specs: (&'a StudentSpec, &'a crate::models::TeacherSpec), sets: &UnitSets<'a>) -> Box<dyn Protocol + 'a> {
    let cfg = &cell.config;
    let (student_spec, teacher_spec) = specs;
    let (student_seed, teacher_seed) = (sets.student_seed, sets.teacher_seed);
    let network_student = match student_spec {
        StudentSpec::Neural(n) => Some(n),
        StudentSpec::ForestRegressor(_) => None,
    };
    let teacher_network = teacher_spec.network();
    if let (Some(ensemble), Some(student), Some(member)) = (&teacher.network, network_student, teacher_network) {
        return Box::new(crate::method::network::Unit {
            spec: cfg.method.as_ref().unwrap_or(&DEFAULT_METHOD),
            distill: &cfg.distill,
            student,
            teacher_network: member.member_spec(0),
            fit: sets.fit,
            val: sets.val,
            test: sets.test,
            quiz: sets.quiz,
            teacher: ensemble.clone(),
            seed: student_seed,
        });
    }
    if let (Some(spec), Some(teachers), Some(student)) = (&cfg.fidelity, &teacher.networks, network_student) {
        return Box::new(fidelity::Unit {
            spec,
            distill: &cfg.distill,
            student,
            fit: sets.fit,
            val: sets.val,
            test: sets.test,
            population: sets.population,
            teachers,
            seed: student_seed,
            teacher_spec: teacher_network,
            teacher_seed,
            first_seed: rep == 0,
        });
    }
    Box::new(Semiparametric {
        distill: &cfg.distill,
        student: student_spec,
        fit: sets.fit,
        val: sets.val,
        fit_idx: sets.fit_idx,
        teacher_train: &teacher.train,
        out_of_fold: sets.out_of_fold,
        seed: student_seed,
    })
}

/// The method settings of a study without a `[method]` section.
static DEFAULT_METHOD: std::sync::LazyLock<crate::method::MethodSpec> = std::sync::LazyLock::new(crate::method::MethodSpec::default);

/// What scoring a unit's students needs.
struct Scoring<'a> {
    registry: &'a Registry,
    cfg: &'a crate::study::CellConfig,
    test: &'a Dataset,
    population: &'a Dataset,
    /// The student's fit rows (the critical radius reads their number and features).
    fit: &'a Dataset,
    teacher: &'a TeacherOutputs,
    /// The teacher's predicted test labels.
    teacher_labels: Vec<usize>,
    /// The oracle student's probabilities on the population sample.
    oracle_population: Option<Array2<f64>>,
    seed: u64,
}

impl Scoring<'_> {
    /// A fitted student's metrics and reliability bins: test and population metrics, agreement
    /// with the teacher, the critical-radius terms and the `[diagnostics]` suite.
    fn metrics(&self, fitted: &FittedStudent, arm: crate::method::Arm, chosen_c: Option<f64>) -> crate::models::Result<(BTreeMap<String, f64>, Vec<ReliabilityBin>)> {
        let (cfg, test, population) = (self.cfg, self.test, self.population);
        let k = test.n_classes;
        let mut reliability = Vec::new();
        let p_test = fitted.predict_proba(test.x.view())?;
        let p_pop = on_population(population, k, |x| fitted.predict_proba(x))?;
        let mut m = prediction_metrics(self.registry, p_test.view(), test, p_pop.view(), population, Some(self.teacher.test.view()));
        if let Some(epoch) = fitted.best_epoch() {
            m.insert("best_epoch".into(), epoch as f64);
        }
        if let Some(budget) = fitted.budget() {
            m.insert("fit_rows".into(), budget.fit_rows as f64);
            m.insert("step_budget".into(), budget.steps as f64);
            if budget.validated {
                m.insert("epoch_budget".into(), budget.epochs as f64);
            }
        }
        if let Some(c) = chosen_c {
            m.insert("chosen_log10_c".into(), c.log10());
        }
        if let Some(f0) = &self.oracle_population {
            m.insert("student_error".into(), metrics::squared_error_rows(p_pop.view(), f0.view()).unwrap_or(f64::NAN));
        }
        m.insert("critical_radius_proxy".into(), complexity::critical_radius_proxy(fitted.dimension(), self.fit.len()));
        let net = fitted.mlp_layers().and_then(|layers| ReluMlp::new(layers).ok());
        if let (Some(net), true) = (&net, cfg.theory.rademacher_draws > 0) {
            let draws_seed = seed::derive(self.seed, &["rademacher", arm.name()]);
            if let Ok(r) = complexity::tangent_rademacher(net, self.fit.x.view(), cfg.theory.rademacher_draws, draws_seed) {
                m.insert("critical_radius_empirical".into(), r.critical_radius);
            }
        }
        if let Some(spec) = &cfg.diagnostics {
            let predict = |x: ArrayView2<f64>| fitted.predict_proba(x).unwrap_or_else(|_| Array2::from_elem((x.nrows(), k), f64::NAN));
            let access = match net {
                Some(net) => ModelAccess::Network(net),
                None => ModelAccess::BlackBox(&predict),
            };
            let d = suite::evaluate(spec, test.x.view(), &test.y, p_test.view(), Some(&self.teacher_labels), &access, seed::derive(self.seed, &["diagnostics", arm.name()]));
            m.extend(d.metrics.into_iter().map(|(n, v)| (n.to_string(), v)));
            reliability = d.reliability;
        }
        Ok((m, reliability))
    }
}

/// Fits the oracle student f0 of a cell: the student class trained on p0 itself over a fresh
/// sample of `theory.oracle_n` points (network students: soft targets p0 with early stopping on
/// a fresh labelled sample; forest students: the class-1 p0 on the loss's scale).
fn fit_oracle(study: &Study, cell: &Cell) -> crate::models::Result<FittedStudent> {
    let cfg = &cell.config;
    let problem = cfg.data.problem().expect("the oracle is fit only where p0 is known");
    let k = problem.n_classes();
    let base = seed::derive(study.base_seed, &["oracle", &cell.id]);
    let sample = problem.sample(cfg.theory.oracle_n, seed::derive(base, &["sample"]));
    let p0 = sample.p0.as_ref().expect("synthetic problems carry p0");
    let spec = &cfg.student;
    let targets = match spec {
        StudentSpec::Neural(_) => StudentTargets::Terms(vec![LossTerm::soft_ce(1.0, 1.0, p0.clone())]),
        StudentSpec::ForestRegressor(_) => {
            let scale = match cfg.distill.loss_for(spec) {
                distill::DistillLoss::MseLogp => TargetScale::LogProbability,
                _ => TargetScale::Probability,
            };
            let target = p0
                .column(1)
                .iter()
                .map(|&p| match scale {
                    TargetScale::LogProbability => p.max(cfg.distill.clip).ln(),
                    TargetScale::Probability => p,
                })
                .collect();
            StudentTargets::Regression { target, scale }
        }
    };
    let spec = match spec {
        // Larger batches keep the oracle's cost near a few student fits.
        StudentSpec::Neural(n) => StudentSpec::Neural(NeuralSpec { batch_size: n.batch_size.max(128), ..n.clone() }),
        other => other.clone(),
    };
    let val = problem.sample((cfg.theory.oracle_n / 5).max(100), seed::derive(base, &["validation"]));
    student::fit(&spec, sample.rows(), &targets, val.x.view(), &val.y, k, seed::derive(base, &["fit"]))
}

/// The cross-fit teachers' own scores: each metric averaged over the B fold teachers, plus the
/// out-of-fold error of the targets they produced.
fn crossfit_teacher_metrics(registry: &Registry, cf: &distill::CrossFit, train: &Dataset, test: &Dataset, population: &Dataset) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for teacher in &cf.teachers {
        let p_test = teacher.predict_proba(test.x.view());
        let p_pop = on_population(population, test.n_classes, |x| Ok(teacher.predict_proba(x))).unwrap_or_else(|_| Array2::zeros((0, test.n_classes)));
        let mut m = prediction_metrics(registry, p_test.view(), test, p_pop.view(), population, None);
        if let Some(p0) = &population.p0 {
            m.insert("teacher_error_population".into(), metrics::squared_error_rows(p_pop.view(), p0.view()).unwrap_or(f64::NAN));
        }
        for (name, v) in m {
            *sums.entry(name).or_default() += v;
        }
    }
    let b = cf.teachers.len() as f64;
    let mut out: BTreeMap<String, f64> = sums.into_iter().map(|(n, v)| (n, v / b)).collect();
    if let Some(p0) = &train.p0 {
        out.insert("teacher_error_out_of_fold".into(), metrics::squared_error_rows(cf.out_of_fold.view(), p0.view()).unwrap_or(f64::NAN));
    }
    out
}

/// Predictions on the population sample, or an empty matrix when there is none.
fn on_population(
    population: &Dataset,
    k: usize,
    predict: impl FnOnce(ArrayView2<f64>) -> crate::models::Result<Array2<f64>>,
) -> crate::models::Result<Array2<f64>> {
    if population.is_empty() {
        Ok(Array2::zeros((0, k)))
    } else {
        predict(population.x.view())
    }
}

/// A row whose metrics are not all finite is marked failed: a NaN never reaches a mean.
fn finite_row(mut row: Row) -> Row {
    if let Some((name, value)) = row.metrics.iter().find(|(_, v)| !v.is_finite()) {
        row.failure = Some(format!("metric {name} is {value}"));
        row.metrics.clear();
    }
    row
}

/// The accuracy of always predicting the most frequent of `k` classes among `y`.
fn chance_accuracy(y: &[usize], k: usize) -> f64 {
    let mut counts = vec![0usize; k.max(1)];
    for &c in y {
        if let Some(n) = counts.get_mut(c) {
            *n += 1;
        }
    }
    counts.iter().copied().max().unwrap_or(0) as f64 / y.len().max(1) as f64
}

/// The metrics computed from a model's predictions (the registry's
/// [`crate::metric::Compute::FromPredictions`] metrics).
fn prediction_metrics(
    registry: &Registry,
    p_test: ArrayView2<f64>,
    test: &Dataset,
    p_population: ArrayView2<f64>,
    population: &Dataset,
    teacher_test: Option<ArrayView2<f64>>,
) -> BTreeMap<String, f64> {
    let predictions = Predictions { test: p_test.view(), y_test: &test.y, teacher_test: teacher_test.as_ref().map(|t| t.view()), population: p_population.view(), p0: population.p0.as_ref().map(|p0| p0.view()) };
    metric::from_predictions(registry.metrics(), &predictions).into_iter().map(|(name, v)| (name.to_string(), v)).collect()
}

/// Progress on a terminal (a bar) or in logs (one line per finished unit).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: usize,
    done: AtomicUsize,
    name: String,
}

impl Progress {
    fn new(enabled: bool, name: &str, total: usize, reused: usize) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        if enabled && reused > 0 {
            eprintln!("{name}: {reused} finished units reused, {total} steps to compute");
        }
        let bar = (enabled && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps (teachers, then units), {elapsed} elapsed, eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        Progress { bar, plain: enabled && !terminal, total, done: AtomicUsize::new(0), name: name.to_string() }
    }

    fn step_done(&self, what: &str) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        } else if self.plain {
            eprintln!("{}: {done}/{} steps ({what})", self.name, self.total);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
