//! Analyze files: the claim, the results table and the `[[predictions]]` of an experiment run
//! elsewhere (`kdlab analyze`). Read with the study file's machinery, so errors carry the same
//! file, line, key and suggestion, and predictions are the same schema.
//!
//! ```toml
//! name = "my-experiment"
//! claim = "..."
//! results = "results.csv"          # metrics: CSV or Parquet, relative to this file
//! # probabilities = "probs.csv"    # or test probabilities per row, scored by kdlab
//! axes = ["teacher.depth"]         # grid columns (none: one cell)
//! ignore = ["wall_seconds"]        # other columns that are not metrics
//! seeds = 10                       # optional: the first 10 seeds, or a sequential design
//! [metrics]                        # directions of metrics kdlab does not know
//! top5 = "higher"
//! [[predictions]]
//! ...
//! ```

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{Comparison, Ctx, GridAxis, Prediction, RawAxis, SeedPlan, Step, StudyError};
use crate::results::probabilities;
use crate::results::table::{self, Columns, ResultsTable};
use crate::datasets::DataError;
use crate::method::{Arm, Method, Needs};
use crate::metric::{Better, Compute, MetricInfo, Section};
use crate::registry::Registry;

const KEYS: &[&str] = &["name", "claim", "description", "results", "probabilities", "axes", "ignore", "seeds", "metrics", "predictions", "health", "paper"];

/// An analyze file read, with its results table.
pub struct ExternalStudy {
    pub path: PathBuf,
    pub source: String,
    pub sha256: String,
    pub name: String,
    pub claim: String,
    pub description: Option<String>,
    /// The paper whose claim it tests, for the scoreboard.
    pub paper: Option<String>,
    /// The results table, resolved against the analyze file's directory.
    pub results: PathBuf,
    /// The results table's path as the analyze file writes it.
    pub results_as_written: String,
    /// The table holds per-row test probabilities (`probabilities`), whose metrics kdlab
    /// computed, rather than metrics (`results`).
    pub from_probabilities: bool,
    pub axes: Vec<GridAxis>,
    pub table: ResultsTable,
    pub arms: Vec<Arm>,
    pub predictions: Vec<Prediction>,
    pub plan: SeedPlan,
    /// Health checks it silences, with the reason for each.
    pub silenced: Vec<(String, String)>,
    /// kdlab's methods and metrics plus the table's arms and the declared metrics.
    pub registry: Registry,
}

/// What can be wrong with an analyze file or its table.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error(transparent)]
    File(#[from] StudyError),
    #[error(transparent)]
    Table(#[from] DataError),
}

/// An arm measured elsewhere: kdlab knows its name only.
struct ExternalArm(&'static str);

impl Method for ExternalArm {
    fn name(&self) -> &'static str {
        self.0
    }

    fn description(&self) -> &'static str {
        "an arm of an experiment run elsewhere (kdlab analyze)"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }
}

/// Reads and checks an analyze file and its results table against `registry`.
pub fn load(path: &Path, registry: Registry) -> Result<ExternalStudy, ExternalError> {
    let source = std::fs::read_to_string(path).map_err(|e| StudyError { file: path.to_path_buf(), line: None, column: None, key: None, message: format!("cannot read: {e}"), hint: None })?;
    let (spans, table) = super::parse_toml(path, &source)?;
    let ctx = Ctx { path, source: &source, spans: spans.get_ref(), registry: &registry };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(ctx.unknown_key(&[Step::Key(key)], key, KEYS, "top-level key").into());
        }
    }
    let name = ctx.plain_name(&table)?;
    let claim = ctx.required_string(&table, "claim")?;
    let description = ctx.optional_string(&table, "description")?;
    let paper = ctx.optional_string(&table, "paper")?;
    let (from_probabilities, results_key) = ctx.input(&table)?;
    let results = path.parent().unwrap_or(Path::new(".")).join(&results_key);
    let axis_keys = ctx.string_list(&table, "axes")?;
    let ignore = ctx.string_list(&table, "ignore")?;
    let mut extended = registry.clone();
    for metric in ctx.declared_metrics(&table)? {
        extended = extended.with_metric(metric);
    }
    let is_metric = |name: &str| extended.metric(name).is_some();
    let per_cell_seeds = matches!(table.get("seeds"), Some(Value::Table(_)));
    let columns = Columns { axes: &axis_keys, ignore: &ignore, is_metric: &is_metric, per_cell_seeds };
    let results_table = match from_probabilities {
        true => probabilities::read(&results, &columns, extended.metrics())?,
        false => table::read(&results, &columns)?,
    };
    for arm in &results_table.arms {
        if extended.arm(arm).is_none() {
            extended = extended.with_method(Box::leak(Box::new(ExternalArm(Box::leak(arm.clone().into_boxed_str())))));
        }
    }
    let arms: Vec<Arm> = results_table.arms.iter().map(|a| extended.arm(a).expect("every table arm is registered")).collect();
    let raw_axes: Vec<RawAxis> = axis_keys
        .iter()
        .zip(&results_table.levels)
        .map(|(key, levels)| RawAxis { section: "", key: key.clone(), field: key.clone(), values: levels.iter().cloned().map(Value::String).collect(), levels: levels.clone() })
        .collect();
    let ctx = Ctx { registry: &extended, ..ctx };
    let predictions = ctx.predictions(&table, &arms, &raw_axes)?;
    ctx.metrics_in_table(&predictions, &results_table)?;
    let axes = raw_axes.into_iter().map(|a| GridAxis { key: a.key, levels: a.levels }).collect();
    let plan = ctx.plan(&table, results_table.seeds.len())?;
    let sha256 = crate::fsio::sha256_hex(source.as_bytes());
    let silenced = ctx.silenced(&table)?;
    Ok(ExternalStudy { path: path.to_path_buf(), sha256, name, claim, description, paper, results, results_as_written: results_key, from_probabilities, axes, table: results_table, arms, predictions, plan, silenced, registry: extended, source: source.clone() })
}

impl Ctx<'_> {
    /// `results` (metrics per seed × arm) or `probabilities` (test probabilities per seed × arm
    /// × row), exactly one: whether it is probabilities, and the path as written.
    fn input(&self, table: &Table) -> Result<(bool, String), StudyError> {
        match (table.contains_key("results"), table.contains_key("probabilities")) {
            (true, true) => Err(self.err_hint(&[Step::Key("probabilities")], "the analyze file names both `results` and `probabilities`", Some("keep one: `results` for a table of metrics, `probabilities` for per-row test probabilities".into()))),
            (false, false) => Err(self.err_hint(&[], "the analyze file has no `results` or `probabilities`", Some("add results = \"results.csv\" (metrics per seed × arm) or probabilities = \"probabilities.csv\" (test probabilities per seed × arm × row)".into()))),
            (true, false) => Ok((false, self.required_string(table, "results")?)),
            (false, true) => Ok((true, self.required_string(table, "probabilities")?)),
        }
    }

    /// `seeds` as a study writes it (a number, or a sequential design's looks), default every
    /// seed of the table; a fixed design may not ask for more seeds than the table has.
    fn plan(&self, table: &Table, available: usize) -> Result<SeedPlan, StudyError> {
        if !table.contains_key("seeds") {
            return Ok(SeedPlan::fixed(available));
        }
        let plan = self.seed_plan(table)?;
        if !plan.is_sequential() && plan.max > available {
            return Err(self.err(&[Step::Key("seeds")], format!("asks for {} seeds but the results table has {available}", plan.max)));
        }
        Ok(plan)
    }

    /// Every metric a prediction reads is a column of the table (or computed from its
    /// probabilities); otherwise the prediction could only ever be "no test".
    fn metrics_in_table(&self, predictions: &[Prediction], table: &ResultsTable) -> Result<(), StudyError> {
        for (i, p) in predictions.iter().enumerate() {
            let with = match &p.comparison {
                Comparison::Correlation { with, .. } => Some((with, "correlate")),
                _ => None,
            };
            for (metric, key) in std::iter::once((&p.metric, "metric")).chain(with) {
                if !table.metrics.contains(metric) {
                    return Err(self.err_hint(&[Step::Key("predictions"), Step::Index(i), Step::Key(key)], format!("the results table has no metric `{metric}`"), Some(format!("its metrics: {}", table.metrics.join(", ")))));
                }
            }
        }
        Ok(())
    }

    /// `[metrics]`: each a metric kdlab does not know, with `"higher"` or `"lower"` is better.
    fn declared_metrics(&self, table: &Table) -> Result<Vec<&'static MetricInfo>, StudyError> {
        let Some(value) = table.get("metrics") else { return Ok(Vec::new()) };
        let Value::Table(t) = value else {
            return Err(self.err(&[Step::Key("metrics")], format!("must be a table of metric = \"higher\" | \"lower\", got {}", value.type_str())));
        };
        let mut out = Vec::new();
        for (name, direction) in t {
            let at = [Step::Key("metrics"), Step::Key(name)];
            if let Some(known) = self.registry.metric(name) {
                return Err(self.err_hint(&at, format!("kdlab knows the metric `{name}` ({} is better)", better_word(known.better)), Some("remove it from [metrics]".into())));
            }
            if name.is_empty() || name.starts_with('.') || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
                return Err(self.err(&at, format!("a metric name is letters, digits, '_', '-' and '.' (it names figure files), got {name:?}")));
            }
            let better = match direction.as_str() {
                Some("higher") => Better::Higher,
                Some("lower") => Better::Lower,
                _ => return Err(self.err(&at, format!("must be \"higher\" or \"lower\" (which is better), got {direction}"))),
            };
            let name: &'static str = Box::leak(name.clone().into_boxed_str());
            out.push(&*Box::leak(Box::new(MetricInfo { name, better, unit: "as measured", sections: &[Section::Results], description: "declared in the analyze file", compute: Compute::ByProtocol })));
        }
        Ok(out)
    }

    pub(super) fn optional_string(&self, table: &Table, key: &str) -> Result<Option<String>, StudyError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(&[Step::Key(key)], format!("must be a string, got {}", v.type_str()))),
        }
    }

    /// An optional list of strings (empty when absent).
    fn string_list(&self, table: &Table, key: &str) -> Result<Vec<String>, StudyError> {
        let Some(value) = table.get(key) else { return Ok(Vec::new()) };
        let Value::Array(items) = value else {
            return Err(self.err(&[Step::Key(key)], format!("must be a list of column names, got {}", value.type_str())));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| self.err(&[Step::Key(key), Step::Index(i)], format!("must be a column name (a string), got {}", v.type_str()))))
            .collect()
    }
}

fn better_word(better: Better) -> &'static str {
    match better {
        Better::Higher => "higher",
        Better::Lower => "lower",
        Better::Neither => "neither",
    }
}
