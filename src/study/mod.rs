//! Study files: parsing, validation with file/line/key errors, and grid expansion into cells.
//!
//! A study is a TOML file (see `studies/` and the README for the format). A list in place of a
//! scalar in `[data]`, `[teacher]`, `[student]` or `[distill]` makes that parameter a grid axis
//! (for `student.hidden`, itself a list, an axis is a list of lists); cells are the cartesian
//! product of the axes, first axis slowest. Only this module knows TOML.
//!
//! **API boundary:** the study file format is what users write; keep it backward compatible.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

use crate::data::DataSpec;
use crate::distill::{DistillLoss, DistillSpec};
use crate::method::{self, Arm, GammaRule, Misfit};
use crate::registry::Registry;
use crate::models::student::{StudentKind, StudentSpec};
use crate::models::TeacherSpec;
use crate::seed;
use crate::theory::TheorySpec;
use crate::diagnostics::suite::DiagnosticsSpec;
use crate::fidelity::FidelitySpec;
use crate::method::MethodSpec;

pub mod external;
mod predictions;
mod seed_plan;
mod silence;
pub use silence::HEALTH_CHECKS;

pub use seed_plan::SeedPlan;

/// A study-file error: the file, where in it, which key, what is wrong, and a likely fix.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for StudyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StudyError {}

/// Which way a prediction expects the difference lhs − rhs to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Lower,
    Higher,
}

/// The paired test a prediction uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    PairedT,
    Wilcoxon,
    /// Compares seed-to-seed variances rather than means.
    PitmanMorgan,
    /// Pearson correlation of two metrics over rows (predictions with `correlate`).
    Pearson,
}

impl TestKind {
    pub fn describe(self) -> &'static str {
        match self {
            TestKind::PairedT => "paired t-test (two-sided)",
            TestKind::Wilcoxon => "Wilcoxon signed-rank test (two-sided)",
            TestKind::PitmanMorgan => "Pitman–Morgan test of paired variances (two-sided)",
            TestKind::Pearson => "Pearson correlation, t test of ρ = 0 (two-sided)",
        }
    }
}

/// What a prediction compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// Two arms in the same cells, paired by (cell, seed).
    Arms { lhs: Arm, rhs: Arm },
    /// One arm at two levels of a grid axis, paired by (other levels, seed). With `minus`, the
    /// arm's lead over that row in each cell is compared instead: an interaction, i.e. a
    /// difference of differences, (arm − minus) at `lhs` against (arm − minus) at `rhs`.
    Levels { axis: usize, lhs: String, rhs: String, arm: String, minus: Option<String> },
    /// An arm against, in each cell, whichever candidate arm has the better mean of the metric
    /// there (chosen on the same data, which favours the candidates).
    ArmVsBest { lhs: Arm, candidates: Vec<Arm> },
    /// An arm's values against a constant (a one-sample test of metric − value).
    Constant { arm: Arm, value: f64 },
    /// The correlation of the prediction's metric with another metric of the same rows of
    /// `arm`, over cells and seeds; `expect = "higher"` predicts a positive correlation.
    Correlation { with: String, arm: String },
    /// A named row (an arm or a pseudo-arm such as `teacher`) against another row of the same
    /// cell or a constant: what a precondition compares.
    Rows { lhs: String, rhs: Operand },
}

/// The right-hand side of a precondition.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Row(String),
    Constant(f64),
}

/// A condition a prediction's claim holds under (`requires`): `metric` of row `lhs` is
/// `expect`-er than `rhs`, over the prediction's cells. It is tested with the same seed-level
/// statistics as a prediction; unless it is shown, the verdict is "not applicable".
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub metric: String,
    pub lhs: String,
    pub rhs: Operand,
    pub expect: Expect,
    pub test: TestKind,
    /// Its own `where`: axis levels narrowing the prediction's cells (its levels replace the
    /// prediction's on the same axis, e.g. the weak level of the axis a prediction compares).
    pub filter: Vec<(usize, String)>,
}

impl Condition {
    /// The condition as a prediction over `parent`'s cells, for the verdict engine.
    pub fn as_prediction(&self, parent: &Prediction, k: usize) -> Prediction {
        Prediction {
            id: format!("{}/requires-{}", parent.id, k + 1),
            statement: self.describe(),
            metric: self.metric.clone(),
            comparison: Comparison::Rows { lhs: self.lhs.clone(), rhs: self.rhs.clone() },
            expect: self.expect,
            filter: parent.filter.iter().filter(|(a, _)| !self.filter.iter().any(|(b, _)| a == b)).chain(&self.filter).cloned().collect(),
            test: self.test,
            margin: None,
            min_effect: None,
            requires: Vec::new(),
            paper: None,
        }
    }

    /// "`teacher_in_sample_excess` of `teacher` > 0".
    pub fn describe(&self) -> String {
        let op = if self.expect == Expect::Higher { ">" } else { "<" };
        let rhs = match &self.rhs {
            Operand::Row(r) => format!("that of `{r}`"),
            Operand::Constant(v) => format!("{v}"),
        };
        format!("`{}` of `{}` {op} {rhs}", self.metric, self.lhs)
    }
}

/// A stated theoretical prediction with the test that decides it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub statement: String,
    pub metric: String,
    pub comparison: Comparison,
    pub expect: Expect,
    /// Restricts the cells: (axis index, level).
    pub filter: Vec<(usize, String)>,
    pub test: TestKind,
    /// Non-inferiority margin δ: `lower` then means lhs < rhs + δ, `higher` lhs > rhs − δ.
    pub margin: Option<f64>,
    /// The smallest effect the claim cares about (on the reported effect's scale): sizes the
    /// seeds needed and tells an underpowered inconclusive verdict from a powered one.
    pub min_effect: Option<f64>,
    /// The conditions the claim holds under; all must be shown for a verdict.
    pub requires: Vec<Condition>,
    /// The effect the paper itself reports for this claim, when known.
    pub paper: Option<PaperEffect>,
}

/// A paper's own reported effect for a prediction: on the scale of kdlab's effect (lhs − rhs,
/// or mean − constant), in `unit`, reported at `source`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperEffect {
    pub effect: f64,
    pub unit: String,
    pub source: String,
}

/// Everything one cell computes with.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CellConfig {
    pub data: DataSpec,
    pub teacher: TeacherSpec,
    pub student: StudentSpec,
    pub distill: DistillSpec,
    pub theory: TheorySpec,
    /// Present only when the study has a `[diagnostics]` section (so ids of studies without
    /// one do not change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<DiagnosticsSpec>,
    /// Present only when the study has a `[fidelity]` section: the fidelity protocol
    /// (`fidelity`) replaces the semiparametric one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<FidelitySpec>,
    /// Present only when the study has a `[method]` section (settings of the method arms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<MethodSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub index: usize,
    /// Stable id: a hash of a fixed salt, the base seed and the cell's full configuration.
    pub id: String,
    /// The level of each axis, in axis order, as written in the study.
    pub levels: Vec<String>,
    pub config: CellConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GridAxis {
    /// Dotted key, e.g. `data.n_train`.
    pub key: String,
    pub levels: Vec<String>,
}

/// A parsed, validated, expanded study.
#[derive(Debug, Clone)]
pub struct Study {
    pub path: PathBuf,
    pub source: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    pub name: String,
    pub claim: String,
    pub description: Option<String>,
    /// The paper whose claim it tests (`paper = "Stanton et al. 2021"`), for the scoreboard.
    pub paper: Option<String>,
    /// The most seeds any cell runs (`plan.max`); seeds are numbered `0..seeds`.
    pub seeds: usize,
    /// A fixed number of seeds, or looks from `min` to `max` (see [`crate::verdicts::sequential`]).
    pub plan: SeedPlan,
    pub base_seed: u64,
    pub arms: Vec<Arm>,
    pub axes: Vec<GridAxis>,
    pub cells: Vec<Cell>,
    pub predictions: Vec<Prediction>,
    /// Health checks it silences, with the reason for each (`[health.silence]`).
    pub silenced: Vec<(String, String)>,
    pub quick: bool,
    /// The methods and metrics it was read against (its results columns and report follow).
    pub registry: Registry,
}

const TOP_KEYS: &[&str] = &["name", "claim", "description", "seeds", "seed", "arms", "data", "teacher", "student", "distill", "theory", "diagnostics", "fidelity", "method", "predictions", "health", "paper", "quick"];
const SECTIONS: &[&str] = &["data", "teacher", "student", "distill", "theory", "diagnostics", "fidelity", "method"];
/// Keys whose single value is already a list; a grid over them is a list of lists.
const LIST_KEYS: &[&str] = &["student.hidden", "student.widths", "teacher.widths", "teacher.hidden", "teacher.member_augment", "distill.c_grid"];

/// Salts cell ids. Kept at the first release's value so ids stay stable; which code computed a
/// stored result is the code fingerprint's job ([`crate::fingerprint`]).
const CELL_ID_SALT: &str = "0.1.0";

/// Most seeds and cells a study may declare; beyond that it is almost surely a typo.
pub const MAX_SEEDS: usize = 10_000;
pub const MAX_CELLS: usize = 100_000;
/// Seeds a `--quick` run keeps.
pub const QUICK_SEEDS: usize = 3;

/// Options that change how a study file is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Overrides the file's `seeds`.
    pub seeds: Option<usize>,
    /// The smoke version: at most [`QUICK_SEEDS`] seeds, and the file's `[quick]` overrides.
    pub quick: bool,
    /// The methods and metrics the study may name (default: kdlab's own).
    pub registry: Registry,
}

/// Reads, validates and expands a study file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Study, StudyError> {
    let source = std::fs::read_to_string(path).map_err(|e| StudyError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read the study file: {e}"),
        hint: None,
    })?;
    parse(path, &source, options)
}

/// Parses study text (`path` is only used in messages and for the name of the file).
pub fn parse(path: &Path, source: &str, options: &LoadOptions) -> Result<Study, StudyError> {
    let (spans, table) = parse_toml(path, source)?;
    let ctx = Ctx { path, source, spans: spans.get_ref(), registry: &options.registry };
    ctx.study(table, options)
}

/// The document with its spans (for locating errors) and as a plain table.
fn parse_toml<'s>(path: &Path, source: &'s str) -> Result<(toml::Spanned<DeTable<'s>>, Table), StudyError> {
    let spans = DeTable::parse(source).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(source, s.start)).unzip();
        StudyError { file: path.to_path_buf(), line, column, key: None, message: format!("invalid TOML: {}", e.message().trim()), hint: None }
    })?;
    let table: Table = toml::from_str(source).map_err(|e| StudyError { file: path.to_path_buf(), line: None, column: None, key: None, message: format!("invalid TOML: {}", e.message().trim()), hint: None })?;
    Ok((spans, table))
}

struct Ctx<'a> {
    path: &'a Path,
    source: &'a str,
    spans: &'a DeTable<'a>,
    registry: &'a Registry,
}

/// One step of a key path inside the document.
#[derive(Clone, Copy)]
enum Step<'k> {
    Key(&'k str),
    Index(usize),
}

impl<'a> Ctx<'a> {
    /// An error located at the deepest existing prefix of `path`.
    fn err(&self, path: &[Step], message: impl Into<String>) -> StudyError {
        let (line, column) = self.locate(path).map(|p| line_col(self.source, p)).unzip();
        StudyError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: Some(display_path(path)).filter(|k| !k.is_empty()),
            message: message.into(),
            hint: None,
        }
    }

    fn err_hint(&self, path: &[Step], message: impl Into<String>, hint: Option<String>) -> StudyError {
        StudyError { hint, ..self.err(path, message) }
    }

    /// Byte offset of the key (or array element) at `path`, or of its deepest existing parent.
    fn locate(&self, path: &[Step]) -> Option<usize> {
        let mut found = None;
        let mut table: Option<&DeTable> = Some(self.spans);
        let mut array: Option<&[toml::Spanned<DeValue>]> = None;
        for step in path {
            let value = match (*step, table, array) {
                (Step::Key(k), Some(t), _) => {
                    let (key, value) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                    found = Some(key.span().start);
                    value
                }
                (Step::Index(i), _, Some(a)) => {
                    let value = a.get(i)?;
                    found = Some(value.span().start);
                    value
                }
                _ => break,
            };
            table = None;
            array = None;
            let inner: &DeValue = value.get_ref();
            if let DeValue::Table(t) = inner {
                table = Some(t);
            } else if let DeValue::Array(a) = inner {
                array = Some(a.as_ref());
            }
        }
        found
    }

    fn study(&self, mut table: Table, options: &LoadOptions) -> Result<Study, StudyError> {
        for key in table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                return Err(self.unknown_key(&[Step::Key(key)], key, TOP_KEYS, "top-level key"));
            }
        }
        if options.quick {
            if let Some(quick) = table.remove("quick") {
                self.apply_quick(&mut table, quick)?;
            }
        } else if table.contains_key("quick") {
            // The smoke version must be valid too, so a bad override is caught before `--quick`.
            self.study(table.clone(), &LoadOptions { quick: true, ..options.clone() })?;
            table.remove("quick");
        }
        let name = self.plain_name(&table)?;
        let claim = self.required_string(&table, "claim")?;
        let description = match table.get("description") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(self.err(&[Step::Key("description")], format!("must be a string, got {}", v.type_str()))),
        };
        let paper = self.optional_string(&table, "paper")?;
        let mut plan = self.seed_plan(&table)?;
        if let Some(s) = options.seeds {
            if s == 0 || s > MAX_SEEDS {
                return Err(StudyError {
                    file: self.path.to_path_buf(),
                    line: None,
                    column: None,
                    key: Some("--seeds".into()),
                    message: format!("must be between 1 and {MAX_SEEDS}, got {s}"),
                    hint: None,
                });
            }
            plan = SeedPlan::fixed(s);
        }
        if options.quick {
            // The smoke version is a fixed design: it checks the pipeline, not the looks.
            plan = SeedPlan::fixed(plan.min.min(QUICK_SEEDS));
        }
        let base_seed = self.integer(&table, "seed", 0, 0, i64::MAX)? as u64;
        let arms = self.arms(&table)?;

        for section in ["data", "teacher", "student"] {
            if !table.contains_key(section) {
                return Err(self.err_hint(&[], format!("the study has no [{section}] section"), Some(format!("add a [{section}] table"))));
            }
        }
        let mut sections = Vec::new();
        for section in SECTIONS {
            if matches!(*section, "diagnostics" | "fidelity" | "method") && !table.contains_key(*section) {
                continue;
            }
            let value = table.get(*section).cloned().unwrap_or_else(|| Value::Table(Table::new()));
            match value {
                Value::Table(t) => sections.push((*section, t)),
                other => return Err(self.err(&[Step::Key(section)], format!("must be a table, got {}", other.type_str()))),
            }
        }
        let axes = self.axes(&sections)?;
        let cells = self.cells(&sections, &axes, base_seed)?;
        self.arms_fit_protocol(&table, &arms)?;
        self.arms_fit_models(&arms, &cells)?;
        self.method_keys_are_read(&table, &arms)?;
        let predictions = self.predictions(&table, &arms, &axes)?;
        let silenced = self.silenced(&table)?;
        self.one_training_length(&sections)?;

        Ok(Study {
            path: self.path.to_path_buf(),
            source: self.source.to_string(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(self.source.as_bytes())),
            name,
            claim,
            description,
            paper,
            seeds: plan.max,
            plan,
            base_seed,
            arms,
            axes: axes.into_iter().map(|a| GridAxis { key: a.key, levels: a.levels }).collect(),
            cells,
            predictions,
            silenced,
            quick: options.quick,
            registry: options.registry.clone(),
        })
    }

    fn unknown_key(&self, path: &[Step], key: &str, known: &[&str], what: &str) -> StudyError {
        let hint = match (suggest(key, known), known.is_empty()) {
            (Some(s), _) => format!("did you mean `{s}`?"),
            (None, false) => format!("known keys: {}", known.join(", ")),
            // Nothing to choose from: say why rather than list nothing.
            (None, true) if what == "grid axis" => format!("the study has no grid axes, so `{key}` is fixed; a list in place of a value makes an axis (e.g. `n_train = [100, 400]` in [data])"),
            (None, true) => format!("the study has no {what} to name here"),
        };
        let hint = Some(hint);
        self.err_hint(path, format!("unknown {what} `{key}`"), hint)
    }

    /// A network trains for `epochs` or for `steps`, at `learning_rate` or `learning_rates`.
    fn one_training_length(&self, sections: &[(&str, Table)]) -> Result<(), StudyError> {
        for (section, t) in sections.iter().filter(|(s, _)| matches!(*s, "student" | "teacher")) {
            if t.contains_key("steps") && t.contains_key("epochs") {
                return Err(self.err_hint(&[Step::Key(section), Step::Key("steps")], "`steps` and `epochs` both set the training length", Some("keep one: `steps` fixes the optimiser steps whatever the rows, `epochs` the passes over them".into())));
            }
            if t.contains_key("learning_rates") && t.contains_key("learning_rate") {
                return Err(self.err_hint(&[Step::Key(section), Step::Key("learning_rates")], "`learning_rates` and `learning_rate` both set the learning rate", Some("keep `learning_rates` (one per optimizer) or `learning_rate` (one for all)".into())));
            }
        }
        Ok(())
    }

    /// `name`: letters, digits, '-' and '_', since it names the report files.
    fn plain_name(&self, table: &Table) -> Result<String, StudyError> {
        let name = self.required_string(table, "name")?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(self.err(&[Step::Key("name")], format!("must be a plain name of letters, digits, '-' and '_' (it names the report files), got {name:?}")));
        }
        Ok(name)
    }

    fn required_string(&self, table: &Table, key: &str) -> Result<String, StudyError> {
        match table.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(&[Step::Key(key)], format!("must be a string, got {}", v.type_str()))),
            None => Err(self.err_hint(&[], format!("the study has no `{key}`"), Some(format!("add `{key} = \"...\"` at the top")))),
        }
    }

    /// `seeds = n` (a fixed design) or `seeds = { min, max, step }` (looks until decided).
    fn seed_plan(&self, table: &Table) -> Result<SeedPlan, StudyError> {
        let Some(Value::Table(t)) = table.get("seeds") else {
            return Ok(SeedPlan::fixed(self.integer(table, "seeds", 10, 1, MAX_SEEDS as i64)? as usize));
        };
        for key in t.keys() {
            if !["min", "max", "step"].contains(&key.as_str()) {
                return Err(self.unknown_key(&[Step::Key("seeds"), Step::Key(key)], key, &["min", "max", "step"], "key of a sequential design"));
            }
        }
        let at = |k: &'static str| [Step::Key("seeds"), Step::Key(k)];
        let get = |k: &'static str| -> Result<usize, StudyError> {
            match t.get(k) {
                Some(Value::Integer(i)) if (2..=MAX_SEEDS as i64).contains(i) => Ok(*i as usize),
                Some(v) => Err(self.err(&at(k), format!("must be an integer between 2 and {MAX_SEEDS}, got {v}"))),
                None => Err(self.err_hint(&[Step::Key("seeds")], format!("a sequential design needs `{k}`"), Some("write seeds = { min = 5, max = 40, step = 5 }, or a plain number for a fixed design".into()))),
            }
        };
        let (min, max) = (get("min")?, get("max")?);
        let step = match t.get("step") {
            Some(Value::Integer(i)) if (1..=MAX_SEEDS as i64).contains(i) => *i as usize,
            Some(v) => return Err(self.err(&at("step"), format!("must be a positive integer, got {v}"))),
            None => return Err(self.err_hint(&[Step::Key("seeds")], "a sequential design needs `step`", Some("write seeds = { min = 5, max = 40, step = 5 }".into()))),
        };
        if min >= max {
            return Err(self.err_hint(&at("max"), format!("must exceed `min` ({min}), got {max}"), Some(format!("for a fixed design write seeds = {min}"))));
        }
        Ok(SeedPlan { min, max, step })
    }

    fn integer(&self, table: &Table, key: &str, default: i64, min: i64, max: i64) -> Result<i64, StudyError> {
        match table.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) if (min..=max).contains(i) => Ok(*i),
            Some(Value::Integer(i)) => Err(self.err(&[Step::Key(key)], format!("must be between {min} and {max}, got {i}"))),
            Some(v) => Err(self.err(&[Step::Key(key)], format!("must be an integer, got {}", v.type_str()))),
        }
    }

    fn arms(&self, table: &Table) -> Result<Vec<Arm>, StudyError> {
        let known = self.registry.arm_names();
        let Some(value) = table.get("arms") else {
            return Err(self.err_hint(&[], "the study has no `arms`", Some(format!("add e.g. `arms = [\"labels\", \"kd\"]`; known arms: {}", known.join(", ")))));
        };
        let Value::Array(items) = value else {
            return Err(self.err(&[Step::Key("arms")], format!("must be a list of arm names, got {}", value.type_str())));
        };
        if items.is_empty() {
            return Err(self.err(&[Step::Key("arms")], format!("must name at least one arm; known arms: {}", known.join(", "))));
        }
        let mut arms = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = [Step::Key("arms"), Step::Index(i)];
            let Value::String(name) = item else {
                return Err(self.err(&path, format!("must be an arm name, got {}", item.type_str())));
            };
            let arm = self.registry.arm(name).ok_or_else(|| self.unknown_key(&path, name, &known, "arm"))?;
            if arms.contains(&arm) {
                return Err(self.err(&path, format!("arm `{name}` is listed twice")));
            }
            arms.push(arm);
        }
        Ok(arms)
    }

    /// Applies `[quick]` overrides: `"section.key" = value` (or `seeds = n`).
    fn apply_quick(&self, table: &mut Table, quick: Value) -> Result<(), StudyError> {
        let Value::Table(quick) = quick else {
            return Err(self.err(&[Step::Key("quick")], "must be a table of overrides, e.g. quick = { seeds = 3, \"data.n_population\" = 2000 }"));
        };
        for (key, value) in quick {
            match key.split_once('.') {
                None if key == "seeds" => {
                    table.insert(key, value);
                }
                Some((section, field)) if SECTIONS.contains(&section) => {
                    let entry = table.entry(section.to_string()).or_insert_with(|| Value::Table(Table::new()));
                    if let Value::Table(t) = entry {
                        t.insert(field.to_string(), value);
                    }
                }
                _ => {
                    return Err(self.err_hint(
                        &[Step::Key("quick"), Step::Key(&key)],
                        format!("unknown override `{key}`"),
                        Some("overrides are `seeds` or \"section.key\" with section data, teacher, student, distill, theory or diagnostics".into()),
                    ))
                }
            }
        }
        Ok(())
    }

    fn axes<'s>(&self, sections: &[(&'s str, Table)]) -> Result<Vec<RawAxis<'s>>, StudyError> {
        let mut axes = Vec::new();
        for (section, table) in sections {
            for (key, value) in table {
                let dotted = format!("{section}.{key}");
                let Value::Array(items) = value else { continue };
                let is_list_key = LIST_KEYS.contains(&dotted.as_str());
                if is_list_key && !items.iter().any(|v| matches!(v, Value::Array(_))) {
                    continue;
                }
                let path = [Step::Key(section), Step::Key(key)];
                if items.is_empty() {
                    return Err(self.err(&path, "empty grid: a list makes this parameter a grid axis, so it needs at least one value"));
                }
                if key == "kind" {
                    return Err(self.err(&path, "`kind` cannot be a grid axis; write one study per kind"));
                }
                let mut levels = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if is_list_key && !matches!(item, Value::Array(_)) {
                        return Err(self.err(&[Step::Key(section), Step::Key(key), Step::Index(i)], format!("a grid over `{dotted}` is a list of lists, got {}", item.type_str())));
                    }
                    let label = level_label(item);
                    if levels.contains(&label) {
                        return Err(self.err(&[Step::Key(section), Step::Key(key), Step::Index(i)], format!("grid level {label} appears twice")));
                    }
                    levels.push(label);
                }
                axes.push(RawAxis { section, key: dotted, field: key.clone(), values: items.clone(), levels });
            }
        }
        Ok(axes)
    }

    fn cells(&self, sections: &[(&str, Table)], axes: &[RawAxis], base_seed: u64) -> Result<Vec<Cell>, StudyError> {
        let n_cells = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()));
        match n_cells {
            Some(n) if n <= MAX_CELLS => {}
            _ => return Err(self.err(&[], format!("the grid has more than {MAX_CELLS} cells; shrink an axis"))),
        }
        let n_cells = n_cells.unwrap_or(0);
        let mut cells = Vec::with_capacity(n_cells);
        for index in 0..n_cells {
            // Mixed-radix digits of `index`, first axis slowest.
            let mut digits = vec![0; axes.len()];
            let mut rest = index;
            for (a, axis) in axes.iter().enumerate().rev() {
                digits[a] = rest % axis.values.len();
                rest /= axis.values.len();
            }
            let mut tables: Vec<(&str, Table)> = sections.to_vec();
            for (axis, &d) in axes.iter().zip(&digits) {
                let table = &mut tables.iter_mut().find(|(s, _)| *s == axis.section).expect("axis section exists").1;
                table.insert(axis.field.clone(), axis.values[d].clone());
            }
            let level_of = |section: &str, key: &str| -> Option<String> {
                axes.iter().zip(&digits).find(|(a, _)| a.section == section && a.field == key).map(|(a, &d)| a.levels[d].clone())
            };
            let config = self.cell_config(&tables, &level_of)?;
            let canonical = serde_json::to_string(&config).expect("config serialises");
            cells.push(Cell {
                index,
                id: seed::short_hash(&format!("{CELL_ID_SALT}:{base_seed}:{canonical}")),
                levels: axes.iter().zip(&digits).map(|(a, &d)| a.levels[d].clone()).collect(),
                config,
            });
        }
        Ok(cells)
    }

    fn cell_config(&self, tables: &[(&str, Table)], level_of: &dyn Fn(&str, &str) -> Option<String>) -> Result<CellConfig, StudyError> {
        let get = |name: &str| tables.iter().find(|(s, _)| *s == name).map(|(_, t)| t.clone()).unwrap_or_default();
        let data = self.kinded("data", get("data"), DataSpec::KINDS, |k, v| DataSpec::from_kind(k, v), level_of)?;
        self.checked("data", data.check(), level_of)?;
        let mut teacher = self.kinded("teacher", get("teacher"), TeacherSpec::KINDS, |k, v| TeacherSpec::from_kind(k, v), level_of)?;
        self.checked("teacher", teacher.check(), level_of)?;
        if let TeacherSpec::Predictions(files) = &mut teacher {
            if !matches!(data, DataSpec::File(_)) {
                return Err(self.err_hint(&[Step::Key("teacher"), Step::Key("kind")], "a teacher of predictions needs `[data] kind = \"file\"`: its files name the data file's rows", Some("export a kdlab teacher's files with `kdlab study STUDY --export-teacher DIR`".into())));
            }
            files.files_sha256 = files.hash_files().map_err(|e| self.err(&[Step::Key("teacher"), Step::Key("dir")], e))?;
        }
        let student = self.kinded("student", get("student"), StudentSpec::KINDS, |k, v| StudentSpec::from_kind(k, v), level_of)?;
        self.checked("student", student.check(), level_of)?;
        let distill: DistillSpec = self.plain("distill", get("distill"), level_of)?;
        self.checked("distill", distill.check(), level_of)?;
        let theory: TheorySpec = self.plain("theory", get("theory"), level_of)?;
        self.checked("theory", theory.check(), level_of)?;
        let diagnostics = match tables.iter().any(|(s, _)| *s == "diagnostics") {
            true => {
                let spec: DiagnosticsSpec = self.plain("diagnostics", get("diagnostics"), level_of)?;
                self.checked("diagnostics", spec.check(), level_of)?;
                Some(spec)
            }
            false => None,
        };
        let fidelity = match tables.iter().any(|(s, _)| *s == "fidelity") {
            true => {
                let spec: FidelitySpec = self.plain("fidelity", get("fidelity"), level_of)?;
                self.checked("fidelity", spec.check(), level_of)?;
                self.fidelity_fits(&spec, &teacher, &student, &distill, &data)?;
                Some(spec)
            }
            false => None,
        };
        // Augmentation must suit the data (images only; no flips for digits).
        let networks = [("student", match &student { StudentSpec::Neural(n) => Some(n), _ => None }), ("teacher", teacher.network().map(|c| &c.network))];
        for (section, net) in networks {
            if let Some(augment) = net.and_then(|n| n.augment.as_ref()) {
                if let Err((_, message)) = augment.check_for_data(data.allows_flips()) {
                    return Err(self.err(&[Step::Key(section), Step::Key("augment")], message));
                }
            }
        }
        if let StudentSpec::ForestRegressor(_) = student {
            if let Some(k) = data.n_classes().filter(|&k| k != 2) {
                return Err(self.err(&[Step::Key("student"), Step::Key("kind")], format!("a forest-regressor student needs two classes; the data have {k}")));
            }
            if distill.loss == Some(DistillLoss::Ce) {
                return Err(self.err_hint(&[Step::Key("distill"), Step::Key("loss")], "a forest-regressor student cannot use the cross-entropy loss", Some("use loss = \"mse-p\" or \"mse-logp\"".into())));
            }
        }
        if let Some(list) = teacher.network().and_then(|t| t.member_augment.as_ref()) {
            for (i, augment) in list.iter().enumerate() {
                if let Err((_, message)) = augment.check_for_data(data.allows_flips()) {
                    return Err(self.err(&[Step::Key("teacher"), Step::Key("member_augment"), Step::Index(i)], message));
                }
            }
        }
        let method = match tables.iter().any(|(s, _)| *s == "method") {
            true => {
                let spec: MethodSpec = self.plain("method", get("method"), level_of)?;
                self.checked("method", spec.check(), level_of)?;
                Some(spec)
            }
            false => None,
        };
        Ok(CellConfig { data, teacher, student, distill, theory, diagnostics, fidelity, method })
    }

    /// Arms that train a network student need one; arms that read the teacher network also a
    /// network teacher that suits them, and run outside the fidelity protocol.
    fn arms_fit_models(&self, arms: &[Arm], cells: &[Cell]) -> Result<(), StudyError> {
        // Beside a method arm every arm trains in `method::network::Unit`, which has no
        // cross-fitting, corrections or independent teacher.
        if arms.iter().any(|a| a.needs().teacher_network) {
            let plain = |a: &Arm| !a.needs().out_of_fold && !a.needs().independent_teacher && !a.needs().teacher_logits && a.gamma_rule() == GammaRule::Zero;
            if let Some(i) = arms.iter().position(|a| !plain(a)) {
                return Err(self.err_hint(
                    &[Step::Key("arms"), Step::Index(i)],
                    format!("arm `{}` cannot run beside method arms (they train every arm from the teacher network, without cross-fitting or corrections)", arms[i].name()),
                    Some("run it in a study of its own".into()),
                ));
            }
        }
        for (i, arm) in arms.iter().enumerate() {
            let at = [Step::Key("arms"), Step::Index(i)];
            if !arm.needs().network_student {
                continue;
            }
            for cell in cells {
                self.arm_fits_cell(*arm, &at, cell)?;
            }
        }
        Ok(())
    }

    /// What an arm that trains a network student needs of one cell's models.
    fn arm_fits_cell(&self, arm: Arm, at: &[Step], cell: &Cell) -> Result<(), StudyError> {
        let StudentSpec::Neural(student) = &cell.config.student else {
            return Err(self.err_hint(at, format!("arm `{}` trains a network student", arm.name()), Some("use student kind = \"mlp\", \"linear\" or \"cnn\"".into())));
        };
        if !arm.needs().teacher_network {
            return Ok(());
        }
        let Some(teacher) = cell.config.teacher.network() else {
            return Err(self.err_hint(at, format!("arm `{}` reads the teacher network's activations or weights", arm.name()), Some("use teacher kind = \"mlp\" or \"cnn\"".into())));
        };
        if cell.config.fidelity.is_some() {
            return Err(self.err(at, format!("arm `{}` is not part of the fidelity protocol", arm.name())));
        }
        let settings = cell.config.method.clone().unwrap_or_default();
        arm.fits(student, &teacher.network, &settings).map_err(|Misfit { message, hint }| self.err_hint(at, message, hint))
    }

    /// Every `[method]` key the study sets is read by one of its arms (a key for an arm the
    /// study does not run would silently change nothing).
    fn method_keys_are_read(&self, table: &Table, arms: &[Arm]) -> Result<(), StudyError> {
        let Some(Value::Table(keys)) = table.get("method") else { return Ok(()) };
        let network_unit = arms.iter().any(|a| a.needs().teacher_network);
        for key in keys.keys().map(String::as_str) {
            let read = |a: &Arm| a.settings().contains(&key);
            if arms.iter().any(read) || (network_unit && method::network::UNIT_SETTINGS.contains(&key)) {
                continue;
            }
            let readers: Vec<String> = self.registry.arms().iter().filter(|a| read(a)).map(|a| format!("`{}`", a.name())).collect();
            if !readers.is_empty() {
                return Err(self.err_hint(
                    &[Step::Key("method"), Step::Key(key)],
                    format!("`{key}` is read only by {}, which the study does not run", readers.join(" and ")),
                    Some("add the arm to `arms`, or remove the key".into()),
                ));
            }
        }
        Ok(())
    }

    /// A fidelity study names only the fidelity arms, with the independent control beside
    /// `kd`; other studies cannot name the control or logit matching.
    fn arms_fit_protocol(&self, table: &Table, arms: &[Arm]) -> Result<(), StudyError> {
        let position = |arm: Arm| arms.iter().position(|a| *a == arm).unwrap_or(0);
        if table.contains_key("fidelity") {
            if let Some(bad) = arms.iter().find(|a| !crate::fidelity::ARMS.contains(a)) {
                let names: Vec<&str> = crate::fidelity::ARMS.iter().map(|a| a.name()).collect();
                return Err(self.err_hint(&[Step::Key("arms"), Step::Index(position(*bad))], format!("arm `{}` is not part of the fidelity protocol", bad.name()), Some(format!("a [fidelity] study's arms: {}", names.join(", ")))));
            }
            if arms.contains(&method::KD) && !arms.contains(&method::KD_INDEPENDENT) {
                return Err(self.err_hint(&[Step::Key("arms")], "a fidelity study reports the independent-student control A(t, s′) beside A(t, s)", Some("add \"kd-independent\" to `arms`".into())));
            }
        } else if let Some(control) = arms.iter().find(|a| a.needs().independent_teacher) {
            return Err(self.err_hint(&[Step::Key("arms"), Step::Index(position(*control))], format!("`{}` is the control of the fidelity protocol", control.name()), Some("add a [fidelity] section, or remove the arm".into())));
        } else if let Some(logits) = arms.iter().find(|a| a.needs().teacher_logits) {
            return Err(self.err_hint(&[Step::Key("arms"), Step::Index(position(*logits))], format!("`{}` matches the teacher's logits on each batch, which only the fidelity protocol provides", logits.name()), Some("add a [fidelity] section, or remove the arm".into())));
        }
        Ok(())
    }

    /// What the fidelity protocol needs of the other sections: network teacher and student,
    /// labels for every distilled row, and equal architectures where weights are shared.
    fn fidelity_fits(&self, spec: &FidelitySpec, teacher: &TeacherSpec, student: &StudentSpec, distill: &DistillSpec, data: &DataSpec) -> Result<(), StudyError> {
        let Some(t) = teacher.network() else {
            return Err(self.err_hint(&[Step::Key("teacher"), Step::Key("kind")], "a [fidelity] study needs a network teacher", Some("use kind = \"mlp\" or \"cnn\"".into())));
        };
        let StudentSpec::Neural(s) = student else {
            return Err(self.err_hint(&[Step::Key("student"), Step::Key("kind")], "a [fidelity] study needs a network student", Some("use kind = \"mlp\", \"linear\" or \"cnn\"".into())));
        };
        if spec.extra != crate::fidelity::Extra::None && spec.n_extra > 0 && distill.alpha < 1.0 {
            return Err(self.err_hint(&[Step::Key("distill"), Step::Key("alpha")], format!("extra distillation rows carry no labels, so the label term cannot apply (alpha = {})", distill.alpha), Some("set alpha = 1 (pure distillation, as Stanton et al.)".into())));
        }
        if spec.extra == crate::fidelity::Extra::Fresh && !data.kind().fresh_rows() {
            return Err(self.err(&[Step::Key("fidelity"), Step::Key("extra")], "fresh rows need a generated data kind (mnist1d or a synthetic kind)"));
        }
        let same_architecture = t.network.kind == s.kind && t.network.hidden == s.hidden && t.network.widths == s.widths && t.network.width == s.width && t.network.depth == s.depth && t.network.downsample == s.downsample;
        for (key, on) in [("init_lambda", spec.init_lambda.is_some()), ("loss_surface", spec.loss_surface)] {
            if on && (t.members != 1 || !same_architecture) {
                return Err(self.err_hint(&[Step::Key("fidelity"), Step::Key(key)], "shares weights between teacher and student, so it needs one teacher member with the student's architecture", Some("set teacher.members = 1 and give teacher and student the same kind and layer keys".into())));
            }
        }
        if spec.attention && (t.network.kind != StudentKind::Cnn || t.members < 2) {
            return Err(self.err_hint(&[Step::Key("fidelity"), Step::Key("attention")], "compares the attention maps of a CNN teacher's members", Some("use teacher kind = \"cnn\" with members >= 2".into())));
        }
        Ok(())
    }

    fn checked(&self, section: &str, result: Result<(), (&'static str, String)>, level_of: &dyn Fn(&str, &str) -> Option<String>) -> Result<(), StudyError> {
        result.map_err(|(key, message)| {
            let at = level_of(section, key).map(|l| format!(" (grid level {l})")).unwrap_or_default();
            self.err(&[Step::Key(section), Step::Key(key)], format!("{message}{at}"))
        })
    }

    /// Deserialises a section selected by its `kind` key.
    fn kinded<T>(
        &self,
        section: &str,
        mut table: Table,
        kinds: &[&str],
        from_kind: impl Fn(&str, serde_path_to_error::Deserializer<'_, '_, Value>) -> Option<Result<T, toml::de::Error>>,
        level_of: &dyn Fn(&str, &str) -> Option<String>,
    ) -> Result<T, StudyError> {
        let kind = match table.remove("kind") {
            Some(Value::String(k)) => k,
            Some(v) => return Err(self.err(&[Step::Key(section), Step::Key("kind")], format!("must be a string, got {}", v.type_str()))),
            None => {
                return Err(self.err_hint(&[Step::Key(section)], format!("[{section}] has no `kind`"), Some(format!("known kinds: {}", kinds.join(", ")))))
            }
        };
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(Value::Table(table), &mut track);
        match from_kind(&kind, de) {
            None => Err(self.unknown_key(&[Step::Key(section), Step::Key("kind")], &kind, kinds, &format!("{section} kind"))),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(self.serde_error(section, &e, &track.path(), level_of)),
        }
    }

    fn plain<T: serde::de::DeserializeOwned>(&self, section: &str, table: Table, level_of: &dyn Fn(&str, &str) -> Option<String>) -> Result<T, StudyError> {
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(Value::Table(table), &mut track);
        T::deserialize(de).map_err(|e| self.serde_error(section, &e, &track.path(), level_of))
    }

    /// Turns a serde error into a located study error, with a suggestion for unknown fields.
    fn serde_error(&self, section: &str, error: &toml::de::Error, path: &serde_path_to_error::Path, level_of: &dyn Fn(&str, &str) -> Option<String>) -> StudyError {
        let message = error.message().trim().to_string();
        if let Some(field) = backticked(&message, "unknown field `") {
            let expected = expected_fields(&message);
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            return self.unknown_key(&[Step::Key(section), Step::Key(&field)], &field, &expected, &format!("[{section}] key"));
        }
        if let Some(field) = backticked(&message, "missing field `") {
            return self.err_hint(&[Step::Key(section)], format!("[{section}] is missing `{field}`"), Some(format!("add `{field} = ...` to [{section}]")));
        }
        let segments: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let key = segments.first().cloned().unwrap_or_default();
        let at = level_of(section, &key).map(|l| format!(" (grid level {l})")).unwrap_or_default();
        let mut steps = vec![Step::Key(section)];
        steps.extend(segments.iter().filter(|s| !s.is_empty()).map(|s| Step::Key(s.as_str())));
        self.err(&steps, format!("{message}{at}"))
    }
}

struct RawAxis<'s> {
    section: &'s str,
    key: String,
    field: String,
    values: Vec<Value>,
    levels: Vec<String>,
}

fn default_statement(metric: &str, comparison: &Comparison, expect: Expect, axes: &[RawAxis]) -> String {
    let dir = match expect {
        Expect::Lower => "lower",
        Expect::Higher => "higher",
    };
    match comparison {
        Comparison::Arms { lhs, rhs } => format!("{metric} is {dir} for `{}` than for `{}`", lhs.name(), rhs.name()),
        Comparison::Levels { axis, lhs, rhs, arm, minus: None } => format!("{metric} of `{arm}` is {dir} at {} = {lhs} than at {rhs}", axes[*axis].key),
        Comparison::Levels { axis, lhs, rhs, arm, minus: Some(m) } => format!("{metric} of `{arm}` minus that of `{m}` is {dir} at {} = {lhs} than at {rhs}", axes[*axis].key),
        Comparison::ArmVsBest { lhs, candidates } => {
            format!("{metric} is {dir} for `{}` than for the best of {}", lhs.name(), candidates.iter().map(|a| format!("`{}`", a.name())).collect::<Vec<_>>().join(", "))
        }
        Comparison::Constant { arm, value } => format!("{metric} of `{}` is {dir} than {value}", arm.name()),
        Comparison::Correlation { with, arm } => {
            let sign = if expect == Expect::Higher { "positively" } else { "negatively" };
            format!("{metric} and {with} of `{arm}` are {sign} correlated over cells and seeds")
        }
        Comparison::Rows { lhs, rhs } => match rhs {
            Operand::Row(r) => format!("{metric} is {dir} for `{lhs}` than for `{r}`"),
            Operand::Constant(v) => format!("{metric} of `{lhs}` is {dir} than {v}"),
        },
    }
}

/// How a grid level is shown in tables and matched in predictions: strings bare, the rest as TOML.
pub fn level_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Float(f) => format!("{f}"),
        Value::Array(a) => format!("[{}]", a.iter().map(level_label).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn display_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

fn expected_fields(message: &str) -> Vec<String> {
    let Some(pos) = message.find("expected") else { return Vec::new() };
    message[pos..].split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The closest known name, if it is close enough to be a likely typo.
pub fn suggest(given: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(given, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.to_string())
}

/// The studies in a directory (`*.toml`), sorted by file name.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
claim = "c"
arms = ["labels", "kd"]
[data]
kind = "gaussian-mixture"
n_train = [100, 200]
[teacher]
kind = "forest"
n_trees = 10
[student]
kind = "linear"
"#;

    fn parse_str(s: &str) -> Result<Study, StudyError> {
        parse(Path::new("s.toml"), s, &LoadOptions::default())
    }

    #[test]
    fn minimal_study_expands_its_grid() {
        let s = parse_str(MINIMAL).unwrap();
        assert_eq!(s.cells.len(), 2);
        assert_eq!(s.axes[0].key, "data.n_train");
        assert_eq!(s.cells[1].levels, vec!["200"]);
        assert_ne!(s.cells[0].id, s.cells[1].id);
        assert_eq!(s.seeds, 10);
    }

    #[test]
    fn unknown_key_names_line_key_and_suggestion() {
        let e = parse_str(&MINIMAL.replace("n_trees = 10", "n_tres = 10")).unwrap_err();
        assert_eq!(e.line, Some(10));
        assert_eq!(e.key.as_deref(), Some("teacher.n_tres"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `n_trees`?"));
    }

    #[test]
    fn cnn_teachers_and_students_parse_and_are_checked() {
        let cnn = MINIMAL
            .replace("kind = \"forest\"\nn_trees = 10", "kind = \"cnn\"\nmembers = 3\nreduction = \"mean-logits\"\nwidths = [[8, 16], [8, 16, 16]]")
            .replace("kind = \"linear\"", "kind = \"cnn\"\nwidth = 8\ndepth = [1, 2]\noptimizer = \"sgd-nesterov\"\nmomentum = 0.9\nschedule = \"cosine\"");
        let s = parse_str(&cnn).unwrap();
        assert_eq!(s.cells.len(), 8);
        match &s.cells[0].config.teacher {
            TeacherSpec::Cnn(t) => {
                assert_eq!((t.members, t.reduction), (3, crate::models::ensemble::Reduction::MeanLogits));
                assert_eq!(t.network.widths, Some(vec![8, 16]));
            }
            other => panic!("{other:?}"),
        }
        let e = parse_str(&cnn.replace("members = 3", "members = 0")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("teacher.members"));
        let e = parse_str(&cnn.replace("momentum = 0.9", "momentum = 1.5")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("student.momentum"));
        let e = parse_str(&cnn.replace("members = 3", "membres = 3")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("teacher.membres"), "{e}");
        let e = parse_str(&cnn.replace("\"sgd-nesterov\"", "\"sgd\"")).unwrap_err();
        assert!(e.to_string().contains("sgd-nesterov"), "{e}");
    }

    #[test]
    fn hidden_is_a_list_and_a_grid_is_a_list_of_lists() {
        let s = parse_str(&MINIMAL.replace("kind = \"linear\"", "kind = \"mlp\"\nhidden = [8, 8]")).unwrap();
        assert_eq!(s.cells.len(), 2);
        let s = parse_str(&MINIMAL.replace("kind = \"linear\"", "kind = \"mlp\"\nhidden = [[8], [16, 16]]")).unwrap();
        assert_eq!(s.cells.len(), 4);
        assert_eq!(s.cells[1].levels[1], "[16, 16]");
    }

    #[test]
    fn an_empty_list_of_known_keys_says_why() {
        let source = MINIMAL.replace("n_train = [100, 200]", "n_train = 100") + "\n[[predictions]]\nid = \"p\"\nmetric = \"accuracy\"\naxis = \"data.n_train\"\narm = \"kd\"\ncompare = [100, 200]\nexpect = \"higher\"\n";
        let err = parse(Path::new("t.toml"), &source, &LoadOptions::default()).unwrap_err();
        let hint = err.hint.unwrap_or_default();
        assert!(hint.contains("no grid axes") && hint.contains("`data.n_train` is fixed"), "{hint}");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest("kdd", &["kd", "labels"]).as_deref(), Some("kd"));
        assert_eq!(suggest("zzzzzz", &["kd", "labels"]), None);
    }
}
