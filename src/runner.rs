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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::data::{validation_split, Dataset};
use crate::fsio;
use crate::metrics;
use crate::models::student::{self, FittedStudent, LossTerm, NeuralSpec, StudentSpec, StudentTargets, TargetScale};
use crate::provenance::Provenance;
use crate::report;
use crate::distill::{self, Gamma, GammaRule};
use crate::results::{self, Row, Shard, StageTimes, CROSSFIT_TEACHER_ARM, ORACLE_ARM, TEACHER_ARM};
use crate::seed;
use crate::study::{Cell, Study};

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

/// Runs every pending unit of `study`, then writes results and the report.
pub fn run(study: &Study, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let dir = results_dir(&options.out, study);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    // Real data are read once up front, so a missing or bad file stops the study before any work.
    for cell in &study.cells {
        cell.config.data.ensure_available().map_err(|message| RunError::Data { study: study.name.clone(), message })?;
    }
    let _lock = fsio::DirLock::acquire(&dir).map_err(io(&dir))?;
    let shard_dir = dir.join("cells");
    std::fs::create_dir_all(&shard_dir).map_err(io(&shard_dir))?;

    let units: Vec<(usize, usize)> = (0..study.cells.len()).flat_map(|c| (0..study.seeds).map(move |s| (c, s))).collect();
    let shard_path = |c: usize, s: usize| shard_dir.join(format!("{}-seed{}.json", study.cells[c].id, s));
    let mut shards: BTreeMap<(usize, usize), Shard> = BTreeMap::new();
    for &(c, s) in &units {
        if let Some(shard) = read_shard(&shard_path(c, s)).filter(|sh| sh.cell_id == study.cells[c].id && sh.seed == s) {
            shards.insert((c, s), shard);
        }
    }
    let reused = shards.len();
    let pending: Vec<(usize, usize)> = units.iter().copied().filter(|u| !shards.contains_key(u)).collect();

    let progress = Progress::new(options.progress, &study.name, pending.len(), reused);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.max(1)).build()?;
    let computed: Mutex<Vec<((usize, usize), Shard)>> = Mutex::new(Vec::new());
    let write_errors: Mutex<Vec<RunError>> = Mutex::new(Vec::new());
    let compute_start = Instant::now();
    // The oracle student of a cell does not depend on the seed: fit once, by the first unit.
    let oracles: Vec<OnceLock<Option<Arc<FittedStudent>>>> = study.cells.iter().map(|_| OnceLock::new()).collect();
    pool.install(|| {
        pending.par_iter().for_each(|&(c, s)| {
            let shard = run_unit(study, &study.cells[c], s, &oracles[c]);
            let path = shard_path(c, s);
            match serde_json::to_vec(&shard) {
                Ok(bytes) => {
                    if let Err(e) = fsio::write_atomic(&path, &bytes) {
                        write_errors.lock().expect("no panics while locked").push(RunError::Io { path, source: e });
                    }
                }
                Err(e) => write_errors.lock().expect("no panics while locked").push(RunError::Io { path, source: e.into() }),
            }
            progress.unit_done(&study.cells[c], s);
            computed.lock().expect("no panics while locked").push(((c, s), shard));
        });
    });
    progress.finish();
    if let Some(e) = write_errors.into_inner().expect("no panics while locked").into_iter().next() {
        return Err(e);
    }
    let compute_seconds = compute_start.elapsed().as_secs_f64();
    shards.extend(computed.into_inner().expect("no panics while locked"));

    let rows: Vec<Row> = shards.values().flat_map(|s| s.rows.iter().cloned()).collect();
    let axes: Vec<String> = study.axes.iter().map(|a| a.key.clone()).collect();
    let mut frame = results::to_frame(&study.name, &axes, &rows).map_err(|e| RunError::Results(Box::new(e)))?;
    results::write(&dir, &mut frame).map_err(RunError::Results)?;

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
    fsio::write_atomic(&dir.join("timings.csv"), timing_csv.as_bytes()).map_err(io(&dir))?;
    fsio::write_atomic(&dir.join("study.toml"), study.source.as_bytes()).map_err(io(&dir))?;

    let provenance = Provenance::collect(study, options.jobs, reused, pending.len(), stage_totals, compute_seconds, started.elapsed().as_secs_f64());
    fsio::write_atomic(&dir.join("provenance.json"), serde_json::to_string_pretty(&provenance).expect("serialisable").as_bytes()).map_err(io(&dir))?;
    let report = report::render_all(study, &rows, &provenance, &options.out).map_err(|e| RunError::Io { path: options.out.clone(), source: e })?;
    Ok(RunSummary {
        report,
        results_dir: dir,
        units_computed: pending.len(),
        units_reused: reused,
        failed_rows: rows.iter().filter(|r| r.failure.is_some()).count(),
    })
}

fn read_shard(path: &Path) -> Option<Shard> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Computes one (cell, seed) unit: data, teacher, every arm's student, metrics. A failure
/// (a teacher that cannot fit, a student that diverges) becomes a failed row with its reason.
pub fn run_unit(study: &Study, cell: &Cell, rep: usize, oracle: &OnceLock<Option<Arc<FittedStudent>>>) -> Shard {
    let cfg = &cell.config;
    let rep_label = rep.to_string();
    let data_key = seed::short_hash(&serde_json::to_string(&cfg.data).expect("serialisable"));
    let teacher_key = seed::short_hash(&serde_json::to_string(&cfg.teacher).expect("serialisable"));
    let student_key = seed::short_hash(&serde_json::to_string(&cfg.student).expect("serialisable"));
    let base = study.base_seed;
    let mut times = StageTimes::default();
    let row = |arm: &str, failure: Option<String>, metrics: BTreeMap<String, f64>| Row {
        cell_index: cell.index,
        cell_id: cell.id.clone(),
        levels: cell.levels.clone(),
        seed: rep,
        arm: arm.to_string(),
        failure,
        metrics,
    };
    let fail_all = |reason: String| -> Vec<Row> {
        let crossfit = study.arms.iter().any(|a| a.uses_crossfit()).then_some(CROSSFIT_TEACHER_ARM);
        std::iter::once(TEACHER_ARM).chain(crossfit).chain(study.arms.iter().map(|a| a.name())).map(|a| row(a, Some(reason.clone()), BTreeMap::new())).collect()
    };

    let t = Instant::now();
    let data_seed = seed::derive(base, &["data", &rep_label, &data_key]);
    let draw = match cfg.data.draw(data_seed) {
        Ok(d) => d,
        Err(e) => return Shard { cell_id: cell.id.clone(), seed: rep, rows: fail_all(format!("data: {e}")), times },
    };
    let (train, test) = (draw.train, draw.test);
    let k = train.n_classes;
    // Real data have no population sample: an empty one makes every population metric absent.
    let population = draw.population.unwrap_or_else(|| Dataset { x: Array2::zeros((0, train.x.ncols())), y: Vec::new(), n_classes: k, p0: None, image_shape: train.image_shape });
    // CNNs read the image shape from the data; the study's specs (and their hashes) do not hold it.
    let teacher_spec = cfg.teacher.for_images(train.image_shape);
    let student_spec = cfg.student.for_images(train.image_shape);
    times.data = t.elapsed().as_secs_f64();
    if matches!(cfg.student, StudentSpec::ForestRegressor(_)) && k != 2 {
        return Shard { cell_id: cell.id.clone(), seed: rep, rows: fail_all(format!("a forest-regressor student needs two classes; the data have {k}")), times };
    }

    let t = Instant::now();
    let teacher_seed = seed::derive(base, &["teacher", &rep_label, &data_key, &teacher_key]);
    let teacher = match teacher_spec.fit(train.x.view(), &train.y, k, teacher_seed) {
        Ok(t) => t,
        Err(e) => return Shard { cell_id: cell.id.clone(), seed: rep, rows: fail_all(format!("teacher: {e}")), times },
    };
    let teacher_train = teacher.predict_proba(train.x.view());
    let teacher_test = teacher.predict_proba(test.x.view());
    let teacher_population = on_population(&population, k, |x| Ok(teacher.predict_proba(x))).unwrap_or_else(|_| Array2::zeros((0, k)));
    times.teacher = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut rows = Vec::new();
    let mut teacher_metrics = prediction_metrics(teacher_test.view(), &test, teacher_population.view(), &population, None);
    if let (Some(p0_train), Some(p0_pop)) = (&train.p0, &population.p0) {
        let in_sample = metrics::squared_error_rows(teacher_train.view(), p0_train.view()).unwrap_or(f64::NAN);
        let population_error = metrics::squared_error_rows(teacher_population.view(), p0_pop.view()).unwrap_or(f64::NAN);
        teacher_metrics.insert("teacher_error_in_sample".into(), in_sample);
        teacher_metrics.insert("teacher_error_population".into(), population_error);
        teacher_metrics.insert("teacher_in_sample_excess".into(), in_sample - population_error);
        let fourth = |p: ArrayView2<f64>, q: ArrayView2<f64>| metrics::fourth_power_error_rows(p, q).unwrap_or(f64::NAN);
        teacher_metrics.insert("teacher_error4_in_sample".into(), fourth(teacher_train.view(), p0_train.view()));
        teacher_metrics.insert("teacher_error4_population".into(), fourth(teacher_population.view(), p0_pop.view()));
    }
    rows.push(finite_row(row(TEACHER_ARM, None, teacher_metrics)));
    times.metrics += t.elapsed().as_secs_f64();

    // Cross-fitting, when an arm needs it: out-of-fold targets and the fold teachers' own scores.
    let mut crossfit = None;
    if study.arms.iter().any(|a| a.uses_crossfit()) {
        let t = Instant::now();
        let fit = distill::cross_fit(&teacher_spec, train.x.view(), &train.y, k, &cfg.distill, teacher_seed);
        times.teacher += t.elapsed().as_secs_f64();
        match fit {
            Ok(cf) => {
                let t = Instant::now();
                rows.push(finite_row(row(CROSSFIT_TEACHER_ARM, None, crossfit_teacher_metrics(&cf, &train, &test, &population))));
                times.metrics += t.elapsed().as_secs_f64();
                crossfit = Some(cf);
            }
            Err(e) => rows.push(row(CROSSFIT_TEACHER_ARM, Some(format!("cross-fit teacher: {e}")), BTreeMap::new())),
        }
    }

    let split_seed = seed::derive(base, &["split", &rep_label, &data_key]);
    let (fit_idx, val_idx) = match student_spec.validation_fraction() {
        f if f > 0.0 => validation_split(train.len(), f, split_seed),
        _ => ((0..train.len()).collect(), Vec::new()),
    };
    let fit = train.select(&fit_idx);
    let val = train.select(&val_idx);
    let student_seed = seed::derive(base, &["student", &rep_label, &data_key, &student_key]);

    // The oracle student f0, where p0 is known: the student class fit to p0.
    let t = Instant::now();
    let oracle = if cfg.theory.oracle_n > 0 && population.p0.is_some() {
        oracle.get_or_init(|| fit_oracle(study, cell).ok().map(Arc::new)).clone()
    } else {
        None
    };
    let oracle_population = oracle.as_ref().and_then(|o| o.predict_proba(population.x.view()).ok());
    if let (Some(o), Some(p_pop)) = (&oracle, &oracle_population) {
        if let Ok(p_test) = o.predict_proba(test.x.view()) {
            rows.push(finite_row(row(ORACLE_ARM, None, prediction_metrics(p_test.view(), &test, p_pop.view(), &population, None))));
        }
    }
    times.students += t.elapsed().as_secs_f64();

    for &arm in &study.arms {
        let t = Instant::now();
        let source = if arm.uses_crossfit() { crossfit.as_ref().map(|c| &c.out_of_fold) } else { Some(&teacher_train) };
        let Some(source) = source else {
            rows.push(row(arm.name(), Some("cross-fit teacher failed".into()), BTreeMap::new()));
            continue;
        };
        let teacher_fit = source.select(ndarray::Axis(0), &fit_idx);
        let result = (|| -> crate::models::Result<(crate::models::student::FittedStudent, Option<f64>)> {
            let (gamma, chosen_c) = match arm.gamma_rule() {
                GammaRule::Zero => (Gamma::Zero, None),
                GammaRule::Constant => (Gamma::Constant(cfg.distill.gamma), None),
                GammaRule::Full => (Gamma::Full, None),
                GammaRule::VarianceAware => {
                    let (c, _) = distill::select_c(&cfg.distill, &student_spec, fit.x.view(), &fit.y, teacher_fit.view(), val.x.view(), &val.y, k, student_seed)?;
                    (Gamma::VarianceAware { c }, Some(c))
                }
            };
            let targets = distill::student_targets(&fit.y, arm.uses_teacher().then(|| teacher_fit.view()), gamma, k, &cfg.distill, &student_spec);
            let fitted = student::fit(&student_spec, fit.x.view(), &targets, val.x.view(), &val.y, k, student_seed)?;
            Ok((fitted, chosen_c))
        })();
        times.students += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let result = result.and_then(|(fitted, chosen_c)| {
            let p_test = fitted.predict_proba(test.x.view())?;
            let p_pop = on_population(&population, k, |x| fitted.predict_proba(x))?;
            let mut m = prediction_metrics(p_test.view(), &test, p_pop.view(), &population, Some(teacher_test.view()));
            if let Some(epoch) = fitted.best_epoch() {
                m.insert("best_epoch".into(), epoch as f64);
            }
            if let Some(c) = chosen_c {
                m.insert("chosen_log10_c".into(), c.log10());
            }
            if let Some(f0) = &oracle_population {
                m.insert("student_error".into(), metrics::squared_error_rows(p_pop.view(), f0.view()).unwrap_or(f64::NAN));
            }
            Ok(m)
        });
        rows.push(match result {
            Ok(m) => finite_row(row(arm.name(), None, m)),
            Err(e) => row(arm.name(), Some(format!("student: {e}")), BTreeMap::new()),
        });
        times.metrics += t.elapsed().as_secs_f64();
    }
    Shard { cell_id: cell.id.clone(), seed: rep, rows, times }
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
    let spec = &cfg.student.for_images(sample.image_shape);
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
    student::fit(&spec, sample.x.view(), &targets, val.x.view(), &val.y, k, seed::derive(base, &["fit"]))
}

/// The cross-fit teachers' own scores: each metric averaged over the B fold teachers, plus the
/// out-of-fold error of the targets they produced.
fn crossfit_teacher_metrics(cf: &distill::CrossFit, train: &Dataset, test: &Dataset, population: &Dataset) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for teacher in &cf.teachers {
        let p_test = teacher.predict_proba(test.x.view());
        let p_pop = on_population(population, test.n_classes, |x| Ok(teacher.predict_proba(x))).unwrap_or_else(|_| Array2::zeros((0, test.n_classes)));
        let mut m = prediction_metrics(p_test.view(), test, p_pop.view(), population, None);
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

/// Test and population metrics of probabilities `p_test` / `p_population`.
fn prediction_metrics(
    p_test: ArrayView2<f64>,
    test: &Dataset,
    p_population: ArrayView2<f64>,
    population: &Dataset,
    teacher_test: Option<ArrayView2<f64>>,
) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |name: &str, value: Option<f64>| {
        if let Some(v) = value {
            m.insert(name.to_string(), v);
        }
    };
    put("accuracy", metrics::accuracy(p_test, &test.y).ok());
    put("log_loss", metrics::log_loss(p_test, &test.y).ok());
    put("brier", metrics::brier(p_test, &test.y).ok());
    put("ece", metrics::ece(p_test, &test.y, 10).ok());
    if test.n_classes == 2 {
        let scores: Vec<f64> = p_test.column(1).to_vec();
        put("auc", metrics::auc_binary(&scores, &test.y).ok());
    }
    if let Some(t) = teacher_test {
        put("agreement", metrics::agreement(p_test, t).ok());
        put("kl_teacher_student", metrics::kl_rows(t, p_test).ok());
    }
    if let Some(p0) = &population.p0 {
        put("excess_risk", metrics::kl_rows(p0.view(), p_population).ok());
        put("bayes_sq_error", metrics::squared_error_rows(p_population, p0.view()).ok());
    }
    m
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
            eprintln!("{name}: {reused} finished units reused, {total} to compute");
        }
        let bar = (enabled && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} units, {elapsed} elapsed, eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        Progress { bar, plain: enabled && !terminal, total, done: AtomicUsize::new(0), name: name.to_string() }
    }

    fn unit_done(&self, cell: &Cell, seed: usize) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        } else if self.plain {
            eprintln!("{}: {done}/{} units (cell {} [{}], seed {seed})", self.name, self.total, cell.index, cell.levels.join(", "));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
