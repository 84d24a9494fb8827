//! The `[[predictions]]` entries of a study: each read by serde into a [`RawPrediction`] (its
//! keys and their types), then checked against the study's arms, grid axes and metrics, with
//! every error located at its key.

use serde::Deserialize;
use toml::{Table, Value};

use super::{backticked, default_statement, expected_fields, level_label, Comparison, Condition, Ctx, Expect, Operand, PaperEffect, Prediction, RawAxis, Step, StudyError, TestKind};
use crate::method::Arm;
use crate::results::RowKind;

impl Ctx<'_> {
    pub(super) fn predictions(&self, table: &Table, arms: &[Arm], axes: &[RawAxis]) -> Result<Vec<Prediction>, StudyError> {
        let Some(value) = table.get("predictions") else { return Ok(Vec::new()) };
        let Value::Array(items) = value else {
            return Err(self.err(&[Step::Key("predictions")], format!("must be an array of tables ([[predictions]]), got {}", value.type_str())));
        };
        let mut out: Vec<Prediction> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Table(p) = item else {
                return Err(self.err(&[Step::Key("predictions"), Step::Index(i)], format!("must be a table, got {}", item.type_str())));
            };
            let raw = self.raw_prediction(i, p)?;
            let prediction = Entry { ctx: self, raw, i, arms, axes }.read(&out)?;
            out.push(prediction);
        }
        Ok(out)
    }

    /// The `i`th entry's keys and their types, or the error at the offending key.
    fn raw_prediction(&self, i: usize, table: &Table) -> Result<RawPrediction, StudyError> {
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(Value::Table(table.clone()), &mut track);
        RawPrediction::deserialize(de).map_err(|e| {
            let message = e.message().trim().to_string();
            let path: Vec<String> = track.path().iter().map(|s| s.to_string()).collect();
            let nested = path.len() > 1;
            if let (Some(field), false) = (backticked(&message, "unknown field `"), nested) {
                let expected = expected_fields(&message);
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                return self.unknown_key(&[Step::Key("predictions"), Step::Index(i), Step::Key(&field)], &field, &expected, "prediction key");
            }
            let key = path.first().cloned().unwrap_or_default();
            self.err(&[Step::Key("predictions"), Step::Index(i), Step::Key(&key)], message)
        })
    }
}

/// One `[[predictions]]` table as written. `compare` and `where` hold arm names, grid levels
/// or constants, so they stay TOML values until [`Entry`] reads them against the study.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrediction {
    id: Option<String>,
    statement: Option<String>,
    metric: Option<String>,
    compare: Option<Value>,
    expect: Option<String>,
    axis: Option<String>,
    arm: Option<String>,
    minus: Option<String>,
    #[serde(rename = "where")]
    filter: Option<Value>,
    test: Option<String>,
    margin: Option<f64>,
    correlate: Option<String>,
    min_effect: Option<f64>,
    requires: Option<Value>,
    paper: Option<PaperEffect>,
}

/// Keys of one `requires` entry.
const CONDITION_KEYS: &[&str] = &["metric", "compare", "expect", "test", "where"];

/// One `[[predictions]]` table, the `i`th, of a study with `arms` and `axes`.
struct Entry<'e, 'a, 's> {
    ctx: &'e Ctx<'a>,
    raw: RawPrediction,
    i: usize,
    arms: &'e [Arm],
    axes: &'e [RawAxis<'s>],
}

impl Entry<'_, '_, '_> {
    /// The path of key `k` of this entry.
    fn at<'k>(&self, k: &'k str) -> [Step<'k>; 3] {
        [Step::Key("predictions"), Step::Index(self.i), Step::Key(k)]
    }

    /// The path of item `j` of list `k` of this entry.
    fn item<'k>(&self, k: &'k str, j: usize) -> [Step<'k>; 4] {
        [Step::Key("predictions"), Step::Index(self.i), Step::Key(k), Step::Index(j)]
    }

    fn here(&self) -> [Step<'static>; 2] {
        [Step::Key("predictions"), Step::Index(self.i)]
    }

    /// An optional number at `k`, at least 0 (`strict`: above 0); `rule` ends the error.
    fn number(&self, k: &'static str, value: Option<f64>, strict: bool, rule: &str) -> Result<Option<f64>, StudyError> {
        match value {
            Some(m) if !(m.is_finite() && (m > 0.0 || (!strict && m >= 0.0))) => Err(self.ctx.err(&self.at(k), format!("must be {rule}, got {m}"))),
            _ => Ok(value),
        }
    }

    fn read(&self, earlier: &[Prediction]) -> Result<Prediction, StudyError> {
        let (ctx, raw) = (self.ctx, &self.raw);
        let id = raw.id.clone().ok_or_else(|| ctx.err_hint(&self.here(), "prediction has no `id`", Some("add `id = \"short-name\"`".into())))?;
        if earlier.iter().any(|o| o.id == id) {
            return Err(ctx.err(&self.at("id"), format!("prediction id `{id}` is used twice")));
        }
        let metric = raw.metric.clone().ok_or_else(|| ctx.err_hint(&self.here(), "prediction has no `metric`", Some(format!("known metrics: {}", ctx.registry.metric_names().join(", ")))))?;
        if ctx.registry.metric(&metric).is_none() {
            return Err(ctx.unknown_key(&self.at("metric"), &metric, &ctx.registry.metric_names(), "metric"));
        }
        let expect = self.expect()?;
        let test = self.test_kind()?;
        let margin = self.number("margin", raw.margin, false, "a number >= 0")?;
        let min_effect = self.number("min_effect", raw.min_effect, true, "a number > 0 (the smallest effect the claim cares about)")?;
        if margin.is_some() && test == TestKind::PitmanMorgan {
            return Err(ctx.err(&self.at("margin"), "a margin applies to means, not to a variance test"));
        }
        let correlate = raw.correlate.clone();
        let compare = self.compare(&correlate)?;
        let test = self.correlation_test(&correlate, test)?;
        if correlate.is_some() && margin.is_some() {
            return Err(ctx.err(&self.at("margin"), "a margin applies to differences, not to a correlation"));
        }
        let comparison = match (raw.axis.clone(), correlate) {
            (Some(_), Some(_)) => return Err(ctx.err(&self.at("axis"), "a correlation prediction pools its arm's rows over cells; use `where` to restrict them")),
            (None, Some(with)) => self.correlation(&metric, with)?,
            (None, None) => self.arms_comparison(&compare, test)?,
            (Some(axis_key), None) => self.levels_comparison(&axis_key, &compare)?,
        };
        if raw.minus.is_some() && !matches!(comparison, Comparison::Levels { .. }) {
            return Err(ctx.err_hint(&self.at("minus"), "`minus` makes a comparison of grid levels an interaction (a difference of differences)", Some("add `axis` and compare two of its levels, or remove `minus`".into())));
        }
        let filter = self.filter(&comparison)?;
        let statement = raw.statement.clone().unwrap_or_else(|| default_statement(&metric, &comparison, expect, self.axes));
        if matches!(comparison, Comparison::Correlation { .. }) && min_effect.is_some_and(|m| m >= 1.0) {
            return Err(ctx.err(&self.at("min_effect"), "a correlation's smallest effect of interest is an r below 1"));
        }
        let requires = self.requires()?;
        let paper = raw.paper.clone();
        if let Some(p) = &paper {
            if !p.effect.is_finite() {
                return Err(ctx.err(&self.at("paper"), format!("`effect` must be a finite number, got {}", p.effect)));
            }
        }
        Ok(Prediction { id, statement, metric, comparison, expect, filter, test, margin, min_effect, requires, paper })
    }

    /// The `requires` list: each entry `{ metric, compare = [row, row or number], expect,
    /// test? }`, a row being an arm of the study or a pseudo-arm (`teacher`, `oracle`, …).
    fn requires(&self) -> Result<Vec<Condition>, StudyError> {
        let items = match &self.raw.requires {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(v) => return Err(self.ctx.err_hint(&self.at("requires"), format!("must be a list of conditions, got {}", v.type_str()), Some("e.g. requires = [{ metric = \"teacher_in_sample_excess\", compare = [\"teacher\", 0.0], expect = \"higher\" }]".into()))),
        };
        items.iter().enumerate().map(|(j, item)| self.condition(j, item)).collect()
    }

    fn condition(&self, j: usize, item: &Value) -> Result<Condition, StudyError> {
        let ctx = self.ctx;
        let here = self.item("requires", j);
        let at = |k: &'static str| [Step::Key("predictions"), Step::Index(self.i), Step::Key("requires"), Step::Index(j), Step::Key(k)];
        let Value::Table(t) = item else {
            return Err(ctx.err(&here, format!("must be a table {{ metric, compare, expect }}, got {}", item.type_str())));
        };
        if let Some(k) = t.keys().find(|k| !CONDITION_KEYS.contains(&k.as_str())) {
            let path = [Step::Key("predictions"), Step::Index(self.i), Step::Key("requires"), Step::Index(j), Step::Key(k)];
            return Err(ctx.unknown_key(&path, k, CONDITION_KEYS, "condition key"));
        }
        let text = |k: &'static str| -> Result<String, StudyError> {
            match t.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(ctx.err(&at(k), format!("must be a string, got {}", v.type_str()))),
                None => Err(ctx.err(&here, format!("condition has no `{k}`"))),
            }
        };
        let metric = text("metric")?;
        if ctx.registry.metric(&metric).is_none() {
            return Err(ctx.unknown_key(&at("metric"), &metric, &ctx.registry.metric_names(), "metric"));
        }
        let expect = match text("expect")?.as_str() {
            "lower" => Expect::Lower,
            "higher" => Expect::Higher,
            other => return Err(ctx.err_hint(&at("expect"), format!("unknown direction `{other}`"), Some("use \"lower\" or \"higher\"".into()))),
        };
        let test = match t.get("test").map(|_| text("test")).transpose()?.as_deref() {
            None | Some("paired-t") => TestKind::PairedT,
            Some("wilcoxon") => TestKind::Wilcoxon,
            Some(other) => return Err(ctx.unknown_key(&at("test"), other, &["paired-t", "wilcoxon"], "condition test")),
        };
        let pair = match t.get("compare") {
            Some(Value::Array(c)) if c.len() == 2 => c,
            Some(_) => return Err(ctx.err(&at("compare"), "must be a list of two items: [row, row or number]")),
            None => return Err(ctx.err_hint(&here, "condition has no `compare`", Some("e.g. compare = [\"teacher\", \"labels\"] or [\"teacher\", 0.0]".into()))),
        };
        let row = |v: &Value| -> Result<String, StudyError> {
            let Value::String(name) = v else { return Err(ctx.err(&at("compare"), format!("must name a row (an arm or `teacher`), got {}", v.type_str()))) };
            if RowKind::PSEUDO_ARMS.iter().any(|k| k.pseudo_arm() == Some(name.as_str())) {
                return Ok(name.clone());
            }
            Ok(self.arm(name, &at("compare"))?.name().to_string())
        };
        let lhs = row(&pair[0])?;
        let rhs = match &pair[1] {
            Value::Float(v) => Operand::Constant(*v),
            Value::Integer(v) => Operand::Constant(*v as f64),
            v => Operand::Row(row(v)?),
        };
        if rhs == Operand::Row(lhs.clone()) {
            return Err(ctx.err(&at("compare"), "compares a row with itself"));
        }
        let filter = self.condition_filter(j, t.get("where"))?;
        Ok(Condition { metric, lhs, rhs, expect, test, filter })
    }

    /// A condition's own `where`: axis levels that narrow the prediction's cells further.
    fn condition_filter(&self, j: usize, value: Option<&Value>) -> Result<Vec<(usize, String)>, StudyError> {
        let w = match value {
            None => return Ok(Vec::new()),
            Some(Value::Table(w)) => w,
            Some(v) => return Err(self.ctx.err(&[Step::Key("predictions"), Step::Index(self.i), Step::Key("requires"), Step::Index(j), Step::Key("where")], format!("must be a table of axis levels, got {}", v.type_str()))),
        };
        let keys: Vec<&str> = self.axes.iter().map(|a| a.key.as_str()).collect();
        let mut filter = Vec::new();
        for (k, v) in w {
            let path = [Step::Key("predictions"), Step::Index(self.i), Step::Key("requires"), Step::Index(j), Step::Key("where"), Step::Key(k)];
            let axis = self.axes.iter().position(|a| &a.key == k).ok_or_else(|| self.ctx.unknown_key(&path, k, &keys, "grid axis"))?;
            let label = level_label(v);
            if !self.axes[axis].levels.contains(&label) {
                return Err(self.ctx.err_hint(&path, format!("{label} is not a level of `{k}`"), Some(format!("levels: {}", self.axes[axis].levels.join(", ")))));
            }
            filter.push((axis, label));
        }
        Ok(filter)
    }

    fn expect(&self) -> Result<Expect, StudyError> {
        match self.raw.expect.as_deref() {
            Some("lower") => Ok(Expect::Lower),
            Some("higher") => Ok(Expect::Higher),
            Some(other) => Err(self.ctx.err_hint(&self.at("expect"), format!("unknown direction `{other}`"), Some("use \"lower\" or \"higher\" (lhs compared with rhs)".into()))),
            None => Err(self.ctx.err_hint(&self.here(), "prediction has no `expect`", Some("add `expect = \"lower\"` or \"higher\"".into()))),
        }
    }

    fn test_kind(&self) -> Result<TestKind, StudyError> {
        match self.raw.test.as_deref() {
            None | Some("paired-t") => Ok(TestKind::PairedT),
            Some("wilcoxon") => Ok(TestKind::Wilcoxon),
            Some("pitman-morgan") => Ok(TestKind::PitmanMorgan),
            Some("pearson") => Ok(TestKind::Pearson),
            Some(other) => Err(self.ctx.unknown_key(&self.at("test"), other, &["paired-t", "wilcoxon", "pitman-morgan", "pearson"], "test")),
        }
    }

    /// The `compare` pair (empty for a correlation, which compares nothing).
    fn compare(&self, correlate: &Option<String>) -> Result<Vec<Value>, StudyError> {
        match (&self.raw.compare, correlate) {
            (Some(_), Some(_)) => Err(self.ctx.err_hint(&self.at("compare"), "a prediction with `correlate` compares no arms or levels", Some("remove `compare`".into()))),
            (None, Some(_)) => Ok(Vec::new()),
            (Some(Value::Array(c)), None) if c.len() == 2 => Ok(c.clone()),
            (Some(_), None) => Err(self.ctx.err(&self.at("compare"), "must be a list of two items: [lhs, rhs]")),
            (None, None) => Err(self.ctx.err_hint(&self.here(), "prediction has no `compare`", Some("add `compare = [\"kd\", \"labels\"]` (two arms), two levels of `axis`, [\"kd\", 0.99] (an arm against a constant), or `correlate` (a second metric)".into()))),
        }
    }

    /// A correlation always uses the Pearson test, and the Pearson test only a correlation.
    fn correlation_test(&self, correlate: &Option<String>, test: TestKind) -> Result<TestKind, StudyError> {
        match (correlate, &self.raw.test) {
            (Some(_), None) => Ok(TestKind::Pearson),
            (Some(_), Some(_)) => Err(self.ctx.err(&self.at("test"), "a correlation prediction always uses the Pearson test; remove `test`")),
            (None, _) if test == TestKind::Pearson => Err(self.ctx.err_hint(&self.at("test"), "the Pearson test goes with `correlate`", Some("add `correlate = \"accuracy\"` (the second metric)".into()))),
            (None, _) => Ok(test),
        }
    }

    /// An arm of the study, named at `path`.
    fn arm(&self, name: &str, path: &[Step]) -> Result<Arm, StudyError> {
        let arm = self.ctx.registry.arm(name).ok_or_else(|| self.ctx.unknown_key(path, name, &self.ctx.registry.arm_names(), "arm"))?;
        if !self.arms.contains(&arm) {
            let known = self.arms.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ");
            return Err(self.ctx.err_hint(path, format!("arm `{name}` is not among the study's arms"), Some(format!("the study's arms: {known}"))));
        }
        Ok(arm)
    }

    /// The `arm` key of a correlation or a level comparison: an arm of the study or one of the
    /// pseudo-arms `pseudo` allows; `missing` is the hint when there is none.
    fn row_arm(&self, pseudo: &[RowKind], missing: (&str, &str)) -> Result<String, StudyError> {
        match self.raw.arm.clone() {
            Some(a) if pseudo.iter().any(|k| k.pseudo_arm() == Some(a.as_str())) => Ok(a),
            Some(a) => Ok(self.arm(&a, &self.at("arm"))?.name().to_string()),
            None => Err(self.ctx.err_hint(&self.here(), missing.0, Some(missing.1.into()))),
        }
    }

    fn correlation(&self, metric: &str, with: String) -> Result<Comparison, StudyError> {
        if self.ctx.registry.metric(&with).is_none() {
            return Err(self.ctx.unknown_key(&self.at("correlate"), &with, &self.ctx.registry.metric_names(), "metric"));
        }
        if with == metric {
            return Err(self.ctx.err(&self.at("correlate"), "correlates a metric with itself"));
        }
        let arm = self.row_arm(&[RowKind::Teacher], ("a correlation prediction needs `arm`", "add `arm = \"kd\"`"))?;
        Ok(Comparison::Correlation { with, arm })
    }

    /// Two arms, an arm and a constant, or an arm and the best of several arms.
    fn arms_comparison(&self, compare: &[Value], test: TestKind) -> Result<Comparison, StudyError> {
        let ctx = self.ctx;
        if self.raw.arm.is_some() {
            return Err(ctx.err_hint(&self.at("arm"), "`arm` only goes with `axis`", Some("to compare arms, list them in `compare`".into())));
        }
        let Value::String(lhs_name) = &compare[0] else {
            return Err(ctx.err(&self.item("compare", 0), format!("must be an arm name, got {}", compare[0].type_str())));
        };
        let lhs = self.arm(lhs_name, &self.item("compare", 0))?;
        let rhs_path = self.item("compare", 1);
        Ok(match &compare[1] {
            Value::Float(_) | Value::Integer(_) if test == TestKind::PitmanMorgan => {
                return Err(ctx.err(&rhs_path, "a variance test compares two arms, not an arm with a constant"));
            }
            Value::Float(v) => Comparison::Constant { arm: lhs, value: *v },
            Value::Integer(v) => Comparison::Constant { arm: lhs, value: *v as f64 },
            Value::String(rhs_name) => {
                let rhs = self.arm(rhs_name, &rhs_path)?;
                if lhs == rhs {
                    return Err(ctx.err(&self.at("compare"), "compares an arm with itself"));
                }
                Comparison::Arms { lhs, rhs }
            }
            Value::Array(list) if !list.is_empty() => Comparison::ArmVsBest { lhs, candidates: self.best_of(lhs, list)? },
            v => return Err(ctx.err_hint(&rhs_path, format!("must be an arm name or a list of arm names, got {}", v.type_str()), Some("a list compares with the best of those arms in each cell".into()))),
        })
    }

    /// The arms of a best-of list, none of them `lhs`.
    fn best_of(&self, lhs: Arm, list: &[Value]) -> Result<Vec<Arm>, StudyError> {
        let path = self.item("compare", 1);
        let mut candidates = Vec::new();
        for v in list {
            let Value::String(name) = v else {
                return Err(self.ctx.err(&path, format!("must list arm names, got {}", v.type_str())));
            };
            let arm = self.arm(name, &path)?;
            if arm == lhs {
                return Err(self.ctx.err(&path, "the best-of list contains the arm it is compared with"));
            }
            candidates.push(arm);
        }
        Ok(candidates)
    }

    /// Two levels of grid axis `axis_key`, for one arm's rows.
    fn levels_comparison(&self, axis_key: &str, compare: &[Value]) -> Result<Comparison, StudyError> {
        let axis = self.axes.iter().position(|a| a.key == axis_key).ok_or_else(|| {
            let keys: Vec<&str> = self.axes.iter().map(|a| a.key.as_str()).collect();
            self.ctx.unknown_key(&self.at("axis"), axis_key, &keys, "grid axis")
        })?;
        let arm = self.row_arm(&[RowKind::Teacher, RowKind::CrossfitTeacher], ("a comparison of grid levels needs `arm`", "add `arm = \"kd\"` (or \"teacher\")"))?;
        let mut levels = Vec::new();
        for (j, v) in compare.iter().enumerate() {
            let label = level_label(v);
            if !self.axes[axis].levels.contains(&label) {
                return Err(self.ctx.err_hint(&self.item("compare", j), format!("{label} is not a level of `{axis_key}`"), Some(format!("levels: {}", self.axes[axis].levels.join(", ")))));
            }
            levels.push(label);
        }
        if levels[0] == levels[1] {
            return Err(self.ctx.err(&self.at("compare"), "compares a level with itself"));
        }
        let minus = self.minus(&arm)?;
        Ok(Comparison::Levels { axis, lhs: levels[0].clone(), rhs: levels[1].clone(), arm, minus })
    }

    /// The `minus` row of an interaction: an arm of the study or a pseudo-arm, not `arm` itself.
    fn minus(&self, arm: &str) -> Result<Option<String>, StudyError> {
        let Some(name) = self.raw.minus.clone() else { return Ok(None) };
        let pseudo = [RowKind::Teacher, RowKind::CrossfitTeacher, RowKind::Oracle];
        let name = match pseudo.iter().any(|k| k.pseudo_arm() == Some(name.as_str())) {
            true => name,
            false => self.arm(&name, &self.at("minus"))?.name().to_string(),
        };
        if name == arm {
            return Err(self.ctx.err(&self.at("minus"), format!("subtracts `{arm}` from itself")));
        }
        Ok(Some(name))
    }

    /// The `where` filter: (axis index, level) pairs, none on the axis a level comparison
    /// compares.
    fn filter(&self, comparison: &Comparison) -> Result<Vec<(usize, String)>, StudyError> {
        let w = match &self.raw.filter {
            None => return Ok(Vec::new()),
            Some(Value::Table(w)) => w,
            Some(v) => return Err(self.ctx.err(&self.at("where"), format!("must be a table of axis levels, e.g. where = {{ \"data.n_train\" = 100 }}, got {}", v.type_str()))),
        };
        let mut filter = Vec::new();
        for (k, v) in w {
            let path = [Step::Key("predictions"), Step::Index(self.i), Step::Key("where"), Step::Key(k)];
            let keys: Vec<&str> = self.axes.iter().map(|a| a.key.as_str()).collect();
            let axis = self.axes.iter().position(|a| &a.key == k).ok_or_else(|| self.ctx.unknown_key(&path, k, &keys, "grid axis"))?;
            let label = level_label(v);
            if !self.axes[axis].levels.contains(&label) {
                return Err(self.ctx.err_hint(&path, format!("{label} is not a level of `{k}`"), Some(format!("levels: {}", self.axes[axis].levels.join(", ")))));
            }
            if matches!(comparison, Comparison::Levels { axis: a, .. } if *a == axis) {
                return Err(self.ctx.err(&path, "filters the axis that the prediction compares"));
            }
            filter.push((axis, label));
        }
        Ok(filter)
    }
}
