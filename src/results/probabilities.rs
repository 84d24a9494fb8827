//! Per-seed test-set probabilities computed anywhere, one row per (seed, arm, test row), read
//! into result rows whose metrics kdlab computes itself: every metric of the registry that is
//! a function of a model's test predictions (accuracy, log loss, Brier, ECE, AUC, and, against
//! the `teacher` rows of the same seed and cell, agreement, KL and the mutual information of
//! the predicted labels).
//!
//! Columns: `seed`, `arm`, the axes, `row` (the test row's id, any text), `label` (its class,
//! 0 to k − 1) and `p0` … `p{k-1}` (the class probabilities, each row summing to 1).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array2;

use super::table::{cell_label, design, seed_value, table_error, value_error, Columns, ResultsTable};
use super::{Row, RowKind};
use crate::datasets::{Cells, DataError, RawTable};
use crate::metric::{self, MetricInfo, Predictions};

/// How far a row's probabilities may sum from 1 (float32 probabilities written with 7 digits
/// sum within about 1e-6).
const SUM_TOLERANCE: f64 = 1e-4;

/// One model's predictions on one seed's test rows: (row id, label, probabilities, file row).
type Group = Vec<(String, usize, Vec<f64>, usize)>;

/// Reads `path` (CSV or Parquet) and computes `metrics` (those computed from predictions) for
/// every (cell, seed, arm).
pub fn read(path: &Path, columns: &Columns, metrics: &[&'static MetricInfo]) -> Result<ResultsTable, DataError> {
    let raw = RawTable::read(path)?;
    let find = |name: &str| raw.names.iter().position(|n| n == name);
    let required = ["seed", "arm", "row", "label", "p0", "p1"];
    if let Some(missing) = required.iter().find(|c| find(c).is_none()) {
        return Err(table_error(path, format!("no column `{missing}`; a probabilities table has columns `seed`, `arm`, the axes, `row`, `label` and `p0` … `p{{k-1}}`")));
    }
    let k = (0..).take_while(|j| find(&format!("p{j}")).is_some()).count();
    let known = |name: &str| ["seed", "arm", "row", "label"].contains(&name) || columns.axes.iter().any(|a| a == name) || columns.ignore.iter().any(|c| c == name) || (0..k).any(|j| name == format!("p{j}"));
    if let Some(other) = raw.names.iter().find(|n| !known(n)) {
        return Err(table_error(path, format!("column `{other}` is not `seed`, `arm`, an axis, `row`, `label` or one of p0 … p{}; name it as an axis or list it in `ignore`", k - 1)));
    }
    let cells_of = |name: &str| raw.cells(path, find(name).expect("checked above"));
    let (seeds, arms, ids, labels) = (cells_of("seed")?, cells_of("arm")?, cells_of("row")?, cells_of("label")?);
    let axes: Vec<Cells> = columns.axes.iter().map(|a| find(a).ok_or_else(|| table_error(path, format!("no column `{a}`, which the analyze file names as an axis"))).and_then(|i| raw.cells(path, i))).collect::<Result<_, _>>()?;
    let probabilities: Vec<Cells> = (0..k).map(|j| cells_of(&format!("p{j}"))).collect::<Result<_, _>>()?;
    let mut groups: BTreeMap<(Vec<String>, u64, String), Group> = BTreeMap::new();
    let mut order: Vec<(Vec<String>, u64, String)> = Vec::new();
    for i in 0..raw.height() {
        let row = i + 1;
        let seed = seed_value(path, &seeds, i)?;
        let arm = arms.label(i).ok_or_else(|| value_error(path, row, "arm", "no arm name"))?;
        let levels: Vec<String> = axes.iter().zip(columns.axes).map(|(c, a)| c.label(i).ok_or_else(|| value_error(path, row, a, "no level"))).collect::<Result<_, _>>()?;
        let id = ids.label(i).ok_or_else(|| value_error(path, row, "row", "no row id"))?;
        let label = labels.number(path, "label", i)?.ok_or_else(|| value_error(path, row, "label", "no label"))?;
        if label < 0.0 || label.fract() != 0.0 || label >= k as f64 {
            return Err(value_error(path, row, "label", format!("{label} is not a class between 0 and {} (the table has columns p0 … p{})", k - 1, k - 1)));
        }
        let p = row_probabilities(path, &probabilities, i)?;
        let key = (levels, seed, arm);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push((id, label as usize, p, row));
    }
    let mut rows = Vec::with_capacity(order.len());
    for key in &order {
        let (levels, seed, arm) = key;
        let teacher = (RowKind::of(arm) != RowKind::Teacher).then(|| groups.get(&(levels.clone(), *seed, RowKind::Teacher.arm().to_string()))).flatten();
        let where_ = format!("arm `{arm}`, seed {seed}{}", cell_label(columns.axes, levels));
        let values = group_metrics(path, &where_, &groups[key], teacher, k, metrics)?;
        rows.push(Row { cell_index: 0, cell_id: String::new(), levels: levels.clone(), seed: *seed as usize, arm: arm.clone(), failure: None, metrics: values, reliability: Vec::new() });
    }
    let names = metrics.iter().filter(|m| rows.iter().any(|r| r.metrics.contains_key(m.name))).map(|m| m.name.to_string()).collect();
    design(path, columns, rows, names)
}

/// Row `i`'s probabilities: each finite and in [0, 1], summing to 1.
fn row_probabilities(path: &Path, columns: &[Cells], i: usize) -> Result<Vec<f64>, DataError> {
    let mut p = Vec::with_capacity(columns.len());
    for (j, c) in columns.iter().enumerate() {
        let name = format!("p{j}");
        let v = c.number(path, &name, i)?.ok_or_else(|| value_error(path, i + 1, &name, "no probability"))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(value_error(path, i + 1, &name, format!("{v} is not a probability (between 0 and 1); logits are not read here")));
        }
        p.push(v);
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(value_error(path, i + 1, &format!("p0 … p{}", columns.len() - 1), format!("the probabilities sum to {sum}, not 1")));
    }
    Ok(p)
}

/// The metrics of one model's predictions, against the teacher's on the same rows when given.
fn group_metrics(path: &Path, where_: &str, group: &Group, teacher: Option<&Group>, k: usize, metrics: &[&'static MetricInfo]) -> Result<BTreeMap<String, f64>, DataError> {
    let mut sorted: Vec<&(String, usize, Vec<f64>, usize)> = group.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(value_error(path, w[1].3, "row", format!("{where_}: test row `{}` appears twice (rows {} and {})", w[0].0, w[0].3, w[1].3)));
    }
    let test = Array2::from_shape_fn((sorted.len(), k), |(i, j)| sorted[i].2[j]);
    let y: Vec<usize> = sorted.iter().map(|r| r.1).collect();
    let teacher_test = match teacher {
        None => None,
        Some(t) => {
            let by_id: BTreeMap<&str, &(String, usize, Vec<f64>, usize)> = t.iter().map(|r| (r.0.as_str(), r)).collect();
            let mut aligned = Array2::zeros((sorted.len(), k));
            for (i, r) in sorted.iter().enumerate() {
                let Some(tr) = by_id.get(r.0.as_str()) else {
                    return Err(value_error(path, r.3, "row", format!("{where_}: test row `{}` has no `teacher` row of the same seed and cell", r.0)));
                };
                if tr.1 != r.1 {
                    return Err(value_error(path, r.3, "label", format!("{where_}: test row `{}` has label {} here and {} in the teacher's row {}", r.0, r.1, tr.1, tr.3)));
                }
                aligned.row_mut(i).assign(&ndarray::ArrayView1::from(&tr.2));
            }
            if t.len() != sorted.len() {
                return Err(table_error(path, format!("{where_}: {} test rows, the teacher of the same seed and cell {}; every model is scored on the same rows", sorted.len(), t.len())));
            }
            Some(aligned)
        }
    };
    let empty = Array2::zeros((0, k));
    let predictions = Predictions { test: test.view(), y_test: &y, teacher_test: teacher_test.as_ref().map(|t| t.view()), population: empty.view(), p0: None };
    let mut values: BTreeMap<String, f64> = metric::from_predictions(metrics, &predictions).into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    // The MI of the predicted labels with the teacher's, as a study's [diagnostics] gives it
    // (without its permutation null).
    if let Some(t) = &teacher_test {
        let labels = |p: &Array2<f64>| p.rows().into_iter().map(crate::metrics::argmax).collect::<Vec<usize>>();
        if let Ok(mi) = crate::diagnostics::mi::discrete_mi(&labels(t), &labels(&test), None) {
            values.insert("mi_teacher_student".into(), mi.bits);
        }
    }
    Ok(values)
}
