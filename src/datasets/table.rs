//! Bring-your-own tables: [`load_table`] reads a CSV or Parquet file through polars into a
//! [`Table`] and says what it did in a [`LoadReport`].
//!
//! Rules, in the order they are applied:
//! 1. **Format** by extension (`.csv`; `.parquet` or `.pq`), checked against the first bytes: a
//!    Parquet file starts with `PAR1`; gzip, zip (xlsx) and other binary content is refused.
//!    CSV is comma-separated with a header line; every cell is read as text and parsed here, so
//!    errors can name the row.
//!    Rows are numbered from 1 after the header and blank lines keep their number (they are
//!    skipped), so row r is line r + 1 of the file unless a quoted field spans lines.
//! 2. **Missing values**: an empty cell or one of [`MISSING_MARKERS`] (CSV or Parquet text), or a
//!    Parquet null. `NaN` and infinities are not missing values: they are errors. What happens to
//!    missing values is the [`MissingPolicy`].
//! 3. **Label**: the named column; its values become classes `0..k` in sorted order (numeric
//!    order when every label is a number, e.g. `2 < 10`, else byte order). At least two classes.
//! 4. **Features**: every other column. A column is numeric when its (non-missing) cells are
//!    numbers; when most but not all are, the first other cell is an error ("not a number").
//!    Otherwise it is categorical and one-hot encoded as `name=category` columns, categories
//!    sorted, at most [`MAX_CATEGORIES`]. Booleans in Parquet are 0/1.
//! 5. **Warnings** (in the report, not errors): constant columns (kept), columns mixing numbers
//!    and text (treated as categorical).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{closest_name, DataError, Result, Table};

/// Cell texts (after trimming) that mean "missing" in text columns.
pub const MISSING_MARKERS: &[&str] = &["", "NA", "N/A", "na", "n/a", "?", "null", "NULL", "None"];
/// Most categories a text column (or classes a label column) may have.
pub const MAX_CATEGORIES: usize = 1000;

/// What [`load_table`] does with missing feature values (see the module docs for what counts as
/// missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Refuse the file, naming the first missing cell (row and column).
    #[default]
    Error,
    /// Drop every row with a missing feature or label; the report lists the rows.
    DropRows,
    /// Replace a missing numeric cell by its column's mean over the present cells, and a
    /// missing categorical cell by the category frequencies (the mean of the one-hot columns).
    /// Labels are never imputed: a missing label is an error under this policy.
    ImputeMean,
}

impl fmt::Display for MissingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissingPolicy::Error => "error",
            MissingPolicy::DropRows => "drop_rows",
            MissingPolicy::ImputeMean => "impute_mean",
        })
    }
}

/// File format of a bring-your-own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Parquet,
}

/// How a feature column of the file became columns of [`Table::x`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ColumnKind {
    /// One column, as numbers.
    Numeric,
    /// One-hot columns `name=category`, in this (sorted) order.
    Categorical { categories: Vec<String> },
}

/// What [`load_table`] read and what its [`MissingPolicy`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub path: PathBuf,
    pub format: FileFormat,
    pub policy: MissingPolicy,
    pub label: String,
    /// Data rows in the file (blank lines not counted).
    pub rows_read: usize,
    /// Blank lines skipped (rows whose cells are all empty).
    pub blank_rows: usize,
    /// Rows in the returned table.
    pub rows_kept: usize,
    /// 1-based data rows dropped by [`MissingPolicy::DropRows`].
    pub dropped_rows: Vec<usize>,
    /// Missing cells replaced by [`MissingPolicy::ImputeMean`] (cells of the file, not one-hot
    /// columns), in total and per column (columns with none left out).
    pub cells_imputed: usize,
    pub imputed_by_column: Vec<(String, usize)>,
    /// Feature columns of the file in order (the label excluded).
    pub columns: Vec<(String, ColumnKind)>,
    pub class_counts: Vec<usize>,
    pub warnings: Vec<String>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n_cat = self.columns.iter().filter(|(_, k)| matches!(k, ColumnKind::Categorical { .. })).count();
        write!(
            f,
            "{}: {} of {} rows, {} feature columns ({} categorical), label \"{}\" with {} classes {:?}; missing values: {}",
            self.path.display(),
            self.rows_kept,
            self.rows_read,
            self.columns.len(),
            n_cat,
            self.label,
            self.class_counts.len(),
            self.class_counts,
            self.policy
        )?;
        if self.blank_rows > 0 {
            write!(f, " ({} blank lines skipped)", self.blank_rows)?;
        }
        match self.policy {
            MissingPolicy::DropRows => write!(f, ", {} rows dropped", self.dropped_rows.len())?,
            MissingPolicy::ImputeMean => write!(f, ", {} cells imputed", self.cells_imputed)?,
            MissingPolicy::Error => {}
        }
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

/// Reads a CSV or Parquet file into a [`Table`]: column `label` holds the classes, every other
/// column is a feature. See the module docs for the rules and [`DataError`] for the failures.
pub fn load_table(path: &Path, label: &str, policy: &MissingPolicy) -> Result<(Table, LoadReport)> {
    let format = detect_format(path)?;
    let (names, df) = match format {
        FileFormat::Csv => read_csv(path)?,
        FileFormat::Parquet => read_parquet(path)?,
    };
    build(path, format, names, &df, label, *policy)
}

fn format_err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Format { path: path.to_path_buf(), message: message.into() }
}

fn polars_err(path: &Path) -> impl Fn(PolarsError) -> DataError + '_ {
    move |e| DataError::Polars { path: path.to_path_buf(), message: e.to_string() }
}

/// What the first bytes of a file say it is.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"PAR1") {
        Some("a Parquet file")
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some("gzip-compressed")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("a zip archive (an .xlsx workbook?)")
    } else if head.contains(&0) {
        Some("a binary file")
    } else {
        None
    }
}

fn detect_format(path: &Path) -> Result<FileFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    let claimed = match ext.as_deref() {
        Some("csv") => FileFormat::Csv,
        Some("parquet") | Some("pq") => FileFormat::Parquet,
        _ => {
            return Err(format_err(
                path,
                "unknown table format: the extension must be .csv, .parquet or .pq",
            ))
        }
    };
    let mut head = Vec::with_capacity(1024);
    std::fs::File::open(path)
        .and_then(|f| f.take(1024).read_to_end(&mut head))
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::Empty { path: path.to_path_buf(), detail: "the file is empty".into() });
    }
    let found = sniff(&head);
    match (claimed, found) {
        (FileFormat::Csv, None) | (FileFormat::Parquet, Some("a Parquet file")) => Ok(claimed),
        (FileFormat::Csv, Some(what)) => {
            let hint = if what == "a Parquet file" { "; rename it to .parquet" } else { "" };
            Err(format_err(path, format!("named .csv but it is {what}, not CSV text{hint}")))
        }
        (FileFormat::Parquet, None) => Err(format_err(
            path,
            "named as Parquet but it does not start with the Parquet magic bytes PAR1; it looks like text (CSV? rename it to .csv)",
        )),
        (FileFormat::Parquet, Some(what)) => {
            Err(format_err(path, format!("named as Parquet but it is {what}, not Parquet")))
        }
    }
}

/// Splits one CSV record (no embedded newlines) on commas, honouring double quotes.
fn split_csv_record(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

fn check_unique(path: &Path, names: &[String]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(&first) = seen.get(n.as_str()) {
            return Err(DataError::DuplicateColumn {
                path: path.to_path_buf(),
                name: n.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
        seen.insert(n, i);
    }
    Ok(())
}

/// Explains a polars CSV error: a row with more fields than the header is located (polars does
/// not say which), and encoding errors get a hint.
fn csv_error(path: &Path, n_cols: usize, e: PolarsError) -> DataError {
    let message = e.to_string();
    if message.contains("more fields") {
        if let Ok(bytes) = std::fs::read(path) {
            let text = String::from_utf8_lossy(&bytes);
            for (k, line) in text.lines().skip(1).enumerate() {
                let found = split_csv_record(line.trim_end_matches('\r')).len();
                if found > n_cols {
                    return DataError::Row {
                        path: path.to_path_buf(),
                        row: k + 1,
                        message: format!("{found} fields, but the header has {n_cols}"),
                    };
                }
            }
        }
    }
    let hint = if message.to_lowercase().contains("utf-8") { " (the file must be UTF-8 text)" } else { "" };
    DataError::Polars { path: path.to_path_buf(), message: format!("{message}{hint}") }
}

/// The header is parsed here (polars would rename duplicates); the cells are read by polars as
/// text.
fn read_csv(path: &Path) -> Result<(Vec<String>, DataFrame)> {
    let mut first = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut first))
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let first = first.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&first);
    let end = first.iter().position(|&b| b == b'\n').unwrap_or(first.len());
    let header = std::str::from_utf8(&first[..end])
        .map_err(|_| format_err(path, "the header line is not UTF-8 text"))?
        .trim_end_matches('\r');
    let names: Vec<String> = split_csv_record(header)
        .into_iter()
        .enumerate()
        .map(|(i, n)| if n.trim().is_empty() { format!("column_{}", i + 1) } else { n.trim().to_string() })
        .collect();
    if names.len() == 1 {
        for (sep, what) in [(';', "semicolons"), ('\t', "tabs")] {
            if header.contains(sep) {
                return Err(format_err(
                    path,
                    format!("the header is one column separated by {what}; only comma-separated CSV is read"),
                ));
            }
        }
    }
    check_unique(path, &names)?;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .with_ignore_errors(false)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .map_err(polars_err(path))?
        .finish()
        .map_err(|e| csv_error(path, names.len(), e))?;
    if df.width() != names.len() {
        return Err(format_err(
            path,
            format!("the header has {} columns but polars read {}", names.len(), df.width()),
        ));
    }
    Ok((names, df))
}

fn read_parquet(path: &Path) -> Result<(Vec<String>, DataFrame)> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let df = ParquetReader::new(file).finish().map_err(polars_err(path))?;
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    check_unique(path, &names)?;
    Ok((names, df))
}

/// A table's header and cells as read, before any interpretation: for readers of other kinds
/// of tables (results tables) that want this module's format checks and row numbering.
pub struct RawTable {
    pub format: FileFormat,
    pub names: Vec<String>,
    frame: DataFrame,
}

impl RawTable {
    /// Reads a CSV or Parquet file (format rule 1 of the module docs).
    pub fn read(path: &Path) -> Result<RawTable> {
        let format = detect_format(path)?;
        let (names, frame) = match format {
            FileFormat::Csv => read_csv(path)?,
            FileFormat::Parquet => read_parquet(path)?,
        };
        Ok(RawTable { format, names, frame })
    }

    pub fn height(&self) -> usize {
        self.frame.height()
    }

    /// The cells of column `index`.
    pub fn cells(&self, path: &Path, index: usize) -> Result<Cells<'_>> {
        column_cells(path, &self.names[index], self.frame.get_columns()[index].as_materialized_series())
    }
}

/// A column's cells, borrowed from the frame.
pub enum Cells<'a> {
    /// Text cells; `None` is null.
    Text(Vec<Option<&'a str>>),
    /// Numbers (Parquet numeric or boolean); `None` is null.
    Num(Vec<Option<f64>>),
}

fn is_missing_text(s: Option<&str>) -> bool {
    match s {
        None => true,
        Some(s) => MISSING_MARKERS.contains(&s.trim()),
    }
}

impl Cells<'_> {
    /// Whether cell `i` (rows from 0) is missing (rule 2 of the module docs).
    pub fn missing(&self, i: usize) -> bool {
        match self {
            Cells::Text(v) => is_missing_text(v[i]),
            Cells::Num(v) => v[i].is_none(),
        }
    }

    /// Cell `i` as trimmed text (a number as [`number_name`] writes it), `None` when missing.
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            _ if self.missing(i) => None,
            Cells::Text(v) => v[i].map(|s| s.trim().to_string()),
            Cells::Num(v) => v[i].map(number_name),
        }
    }

    /// Cell `i` as trimmed text, `None` only when it is empty or null: for names and levels,
    /// where a missing-value marker such as `None` or `NA` is a value.
    pub fn label(&self, i: usize) -> Option<String> {
        match self {
            Cells::Text(v) => v[i].map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
            Cells::Num(v) => v[i].map(number_name),
        }
    }

    /// Cell `i` of `column` as a finite number, `None` when missing; text that is not a number
    /// and non-finite values are errors naming the row (from 1) and the column.
    pub fn number(&self, path: &Path, column: &str, i: usize) -> Result<Option<f64>> {
        let (value, text) = match self {
            _ if self.missing(i) => return Ok(None),
            Cells::Num(v) => (v[i], None),
            Cells::Text(v) => {
                let s = v[i].unwrap_or_default();
                (parse_number(s), Some(s))
            }
        };
        match (value, text) {
            (Some(x), _) if x.is_finite() => Ok(Some(x)),
            (Some(x), _) => Err(DataError::NonFinite { path: path.to_path_buf(), row: i + 1, column: column.to_string(), value: text.map_or_else(|| x.to_string(), str::to_string) }),
            (None, t) => Err(DataError::NotANumber { path: path.to_path_buf(), row: i + 1, column: column.to_string(), value: t.unwrap_or_default().trim().to_string() }),
        }
    }
}

/// A column's cells: text is borrowed from the frame, numbers and booleans are cast to f64.
fn column_cells<'a>(path: &Path, name: &str, s: &'a Series) -> Result<Cells<'a>> {
    let dtype = s.dtype();
    if dtype == &DataType::String {
        let ca = s.str().map_err(polars_err(path))?;
        Ok(Cells::Text(ca.iter().collect()))
    } else if dtype.is_primitive_numeric() || dtype.is_bool() {
        let f = s.cast(&DataType::Float64).map_err(polars_err(path))?;
        let ca = f.f64().map_err(polars_err(path))?;
        Ok(Cells::Num(ca.iter().collect()))
    } else {
        Err(DataError::UnsupportedType { path: path.to_path_buf(), column: name.to_string(), dtype: dtype.to_string() })
    }
}

/// Formats a number as a class name: `1.0` → "1", `0.5` → "0.5".
fn number_name(v: f64) -> String {
    format!("{v}")
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

fn build(
    path: &Path,
    format: FileFormat,
    names: Vec<String>,
    df: &DataFrame,
    label: &str,
    policy: MissingPolicy,
) -> Result<(Table, LoadReport)> {
    let pathbuf = path.to_path_buf();
    let n = df.height();
    if n == 0 {
        return Err(DataError::Empty { path: pathbuf, detail: "the file has a header but no data rows".into() });
    }
    let label_idx = match names.iter().position(|c| c == label) {
        Some(i) => i,
        None => {
            return Err(DataError::MissingLabel {
                path: pathbuf,
                label: label.to_string(),
                suggestion: closest_name(label, &names),
                available: names.clone(),
            })
        }
    };
    let series: Vec<&Series> = df.get_columns().iter().map(|c| c.as_materialized_series()).collect();
    let cells: Vec<Cells> = names
        .iter()
        .zip(&series)
        .map(|(name, s)| column_cells(path, name, s))
        .collect::<Result<_>>()?;

    let blank = blank_rows(format, &cells, n);
    let blank_rows = blank.iter().filter(|&&b| b).count();
    if blank_rows == n {
        return Err(DataError::Empty { path: pathbuf, detail: "the file has a header but no data rows".into() });
    }
    let (rows, dropped_rows) = kept_rows(path, &names, &cells, label_idx, policy, &blank)?;
    if rows.is_empty() {
        return Err(DataError::Empty {
            path: pathbuf,
            detail: format!("all {} rows have a missing value, so DropRows left none", n - blank_rows),
        });
    }
    if names.len() == 1 {
        return Err(DataError::Empty { path: pathbuf, detail: format!("no feature columns besides the label \"{label}\"") });
    }

    let (y, class_names) = labels(path, &names[label_idx], &cells[label_idx], &rows)?;

    let mut warnings = Vec::new();
    let mut columns = Vec::new();
    let mut blocks: Vec<Vec<Vec<f64>>> = Vec::new(); // per column: output columns, each over `rows`
    let mut imputed_by_column = Vec::new();
    for (j, col) in cells.iter().enumerate() {
        if j == label_idx {
            continue;
        }
        let name = &names[j];
        let (kind, block, imputed) = feature(path, name, col, &rows, &mut warnings)?;
        if imputed > 0 {
            imputed_by_column.push((name.clone(), imputed));
        }
        columns.push((name.clone(), kind));
        blocks.push(block);
    }

    let (x, feature_names) = feature_matrix(&columns, &blocks, rows.len());
    let table = Table { x, y, feature_names, class_names };
    let report = LoadReport {
        path: pathbuf,
        format,
        policy,
        label: label.to_string(),
        rows_read: n - blank_rows,
        blank_rows,
        rows_kept: rows.len(),
        dropped_rows,
        cells_imputed: imputed_by_column.iter().map(|(_, k)| k).sum(),
        imputed_by_column,
        columns,
        class_counts: table.class_counts(),
        warnings,
    };
    Ok((table, report))
}

/// Blank CSV lines (every cell empty), which are skipped; they keep their row number, so row r
/// is line r + 1 of the file.
fn blank_rows(format: FileFormat, cells: &[Cells], n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| {
            format == FileFormat::Csv
                && cells.iter().all(|c| match c {
                    Cells::Text(v) => v[i].is_none_or(|s| s.trim().is_empty()),
                    Cells::Num(v) => v[i].is_none(),
                })
        })
        .collect()
}

/// The rows that stay under the missing-value `policy` (0-based), and the 1-based rows it
/// dropped.
fn kept_rows(path: &Path, names: &[String], cells: &[Cells], label_idx: usize, policy: MissingPolicy, blank: &[bool]) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut keep: Vec<bool> = blank.iter().map(|b| !b).collect();
    let mut dropped_rows = Vec::new();
    for (i, kept) in keep.iter_mut().enumerate() {
        if !*kept {
            continue;
        }
        for (j, col) in cells.iter().enumerate() {
            if !col.missing(i) {
                continue;
            }
            let missing = |hint: &str| DataError::Missing { path: path.to_path_buf(), row: i + 1, column: names[j].clone(), hint: hint.to_string() };
            match policy {
                MissingPolicy::Error => return Err(missing("the missing-value policy is Error; choose DropRows or ImputeMean")),
                MissingPolicy::ImputeMean if j == label_idx => return Err(missing("labels are never imputed; use the DropRows policy to drop such rows")),
                MissingPolicy::ImputeMean => {}
                MissingPolicy::DropRows => {
                    *kept = false;
                    dropped_rows.push(i + 1);
                    break;
                }
            }
        }
    }
    Ok(((0..keep.len()).filter(|&i| keep[i]).collect(), dropped_rows))
}

/// The feature matrix (`n_rows` rows) and its column names from each input column's kind and
/// output columns (one for a numeric column, one per category for a categorical one).
fn feature_matrix(columns: &[(String, ColumnKind)], blocks: &[Vec<Vec<f64>>], n_rows: usize) -> (Array2<f64>, Vec<String>) {
    let d: usize = blocks.iter().map(Vec::len).sum();
    let mut x = Array2::zeros((n_rows, d));
    let mut feature_names = Vec::with_capacity(d);
    let mut c = 0;
    for ((name, kind), block) in columns.iter().zip(blocks) {
        match kind {
            ColumnKind::Numeric => feature_names.push(name.clone()),
            ColumnKind::Categorical { categories } => feature_names.extend(categories.iter().map(|cat| format!("{name}={cat}"))),
        }
        for out in block {
            for (r, &v) in out.iter().enumerate() {
                x[[r, c]] = v;
            }
            c += 1;
        }
    }
    (x, feature_names)
}

fn labels(path: &Path, name: &str, col: &Cells, rows: &[usize]) -> Result<(Vec<usize>, Vec<String>)> {
    let non_finite = |i: usize, v: &str| DataError::NonFinite {
        path: path.to_path_buf(),
        row: i + 1,
        column: name.to_string(),
        value: v.to_string(),
    };
    // (numeric value if every label is a number, name)
    let mut raw: Vec<(Option<f64>, String)> = Vec::with_capacity(rows.len());
    for &i in rows {
        match col {
            Cells::Num(v) => {
                let v = v[i].unwrap_or(f64::NAN); // missing labels were handled by the policy
                if !v.is_finite() {
                    return Err(non_finite(i, &number_name(v)));
                }
                raw.push((Some(v), number_name(v)));
            }
            Cells::Text(v) => {
                let s = v[i].unwrap_or("").trim();
                match parse_number(s) {
                    Some(x) if !x.is_finite() => return Err(non_finite(i, s)),
                    Some(x) => raw.push((Some(x), s.to_string())),
                    None => raw.push((None, s.to_string())),
                }
            }
        }
    }
    let all_numbers = raw.iter().all(|(v, _)| v.is_some());
    let key_of = |(v, s): &(Option<f64>, String)| -> String {
        if all_numbers {
            number_name(v.unwrap_or(0.0))
        } else {
            s.clone()
        }
    };
    let mut class_names: Vec<String> = raw.iter().map(key_of).collect::<BTreeSet<_>>().into_iter().collect();
    if all_numbers {
        class_names.sort_by(|a, b| {
            let (a, b) = (parse_number(a).unwrap_or(0.0), parse_number(b).unwrap_or(0.0));
            a.total_cmp(&b)
        });
    }
    if class_names.len() > MAX_CATEGORIES {
        return Err(DataError::TooManyCategories {
            path: path.to_path_buf(),
            column: name.to_string(),
            count: class_names.len(),
            limit: MAX_CATEGORIES,
        });
    }
    if class_names.len() < 2 {
        return Err(DataError::SingleClass {
            path: path.to_path_buf(),
            column: name.to_string(),
            class: class_names.into_iter().next().unwrap_or_default(),
        });
    }
    let index: HashMap<&str, usize> = class_names.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect();
    let y = raw.iter().map(|r| index[key_of(r).as_str()]).collect();
    Ok((y, class_names))
}

/// One feature column over the kept `rows`: its kind, its output columns and the number of cells
/// imputed.
fn feature(
    path: &Path,
    name: &str,
    col: &Cells,
    rows: &[usize],
    warnings: &mut Vec<String>,
) -> Result<(ColumnKind, Vec<Vec<f64>>, usize)> {
    let err_nf = |i: usize, v: String| DataError::NonFinite { path: path.to_path_buf(), row: i + 1, column: name.to_string(), value: v };
    // Numeric values (None = missing), or the text column's cells if it is categorical.
    let numeric: Option<Vec<Option<f64>>> = match col {
        Cells::Num(v) => {
            let mut out = Vec::with_capacity(rows.len());
            for &i in rows {
                match v[i] {
                    Some(x) if !x.is_finite() => return Err(err_nf(i, number_name(x))),
                    other => out.push(other),
                }
            }
            Some(out)
        }
        Cells::Text(v) => {
            let present: Vec<usize> = rows.iter().copied().filter(|&i| !is_missing_text(v[i])).collect();
            let parsed: Vec<Option<f64>> = present.iter().map(|&i| v[i].and_then(parse_number)).collect();
            let n_num = parsed.iter().filter(|p| p.is_some()).count();
            if n_num * 2 > present.len() {
                if let Some(k) = parsed.iter().position(|p| p.is_none()) {
                    let i = present[k];
                    return Err(DataError::NotANumber {
                        path: path.to_path_buf(),
                        row: i + 1,
                        column: name.to_string(),
                        value: v[i].unwrap_or("").trim().to_string(),
                    });
                }
                let mut out = Vec::with_capacity(rows.len());
                for &i in rows {
                    if is_missing_text(v[i]) {
                        out.push(None);
                    } else {
                        let x = v[i].and_then(parse_number).unwrap_or(f64::NAN);
                        if !x.is_finite() {
                            return Err(err_nf(i, v[i].unwrap_or("").trim().to_string()));
                        }
                        out.push(Some(x));
                    }
                }
                Some(out)
            } else {
                if n_num > 0 {
                    warnings.push(format!(
                        "column \"{name}\" mixes numbers ({n_num} cells) and text ({} cells); it is treated as categorical",
                        present.len() - n_num
                    ));
                }
                None
            }
        }
    };

    if let Some(values) = numeric {
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        if present.is_empty() {
            return Err(DataError::AllMissing { path: path.to_path_buf(), column: name.to_string() });
        }
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        if present.iter().all(|&v| v == present[0]) {
            warnings.push(format!("column \"{name}\" is constant ({}); it is kept", present[0]));
        }
        let imputed = values.len() - present.len();
        let out = values.into_iter().map(|v| v.unwrap_or(mean)).collect();
        return Ok((ColumnKind::Numeric, vec![out], imputed));
    }

    // Categorical (text) column.
    let Cells::Text(v) = col else { unreachable!("numeric cells always give a numeric column") };
    let mut freq: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in rows {
        if !is_missing_text(v[i]) {
            *freq.entry(v[i].unwrap_or("").trim()).or_default() += 1;
        }
    }
    if freq.is_empty() {
        return Err(DataError::AllMissing { path: path.to_path_buf(), column: name.to_string() });
    }
    if freq.len() > MAX_CATEGORIES {
        return Err(DataError::TooManyCategories {
            path: path.to_path_buf(),
            column: name.to_string(),
            count: freq.len(),
            limit: MAX_CATEGORIES,
        });
    }
    let categories: Vec<String> = freq.keys().map(|s| s.to_string()).collect();
    if categories.len() == 1 {
        warnings.push(format!("column \"{name}\" is constant (every value is \"{}\"); it is kept", categories[0]));
    }
    let total: usize = freq.values().sum();
    let means: Vec<f64> = freq.values().map(|&c| c as f64 / total as f64).collect();
    let index: HashMap<&str, usize> = freq.keys().enumerate().map(|(k, c)| (*c, k)).collect();
    let mut out = vec![vec![0.0; rows.len()]; categories.len()];
    let mut imputed = 0;
    for (r, &i) in rows.iter().enumerate() {
        if is_missing_text(v[i]) {
            imputed += 1;
            for (k, m) in means.iter().enumerate() {
                out[k][r] = *m;
            }
        } else {
            out[index[v[i].unwrap_or("").trim()]][r] = 1.0;
        }
    }
    Ok((ColumnKind::Categorical { categories }, out, imputed))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::fixture;
    use super::*;

    fn load(name: &str, label: &str, policy: MissingPolicy) -> Result<(Table, LoadReport)> {
        load_table(&fixture(name), label, &policy)
    }

    fn err(name: &str, label: &str, policy: MissingPolicy) -> String {
        match load(name, label, policy) {
            Ok(_) => panic!("{name} loaded without error"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(name), "message does not name the file: {msg}");
                msg
            }
        }
    }

    #[test]
    fn good_csv_one_hot_and_sorted_classes() {
        let (t, rep) = load("byo-good.csv", "income", MissingPolicy::Error).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(t.class_names, vec!["high", "low", "mid"]);
        assert_eq!(
            t.feature_names,
            vec!["age", "city=Lyon", "city=Oslo", "city=Paris", "height", "smoker=no", "smoker=yes"]
        );
        assert_eq!(t.x.row(0).to_vec(), vec![34.0, 0.0, 0.0, 1.0, 1.72, 0.0, 1.0]);
        assert_eq!(t.y[..3], [1, 0, 2]);
        assert_eq!(rep.rows_read, 8);
        assert_eq!(rep.class_counts, vec![3, 3, 2]);
        assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
        assert_eq!(rep.columns[1].1, ColumnKind::Categorical { categories: vec!["Lyon".into(), "Oslo".into(), "Paris".into()] });
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let (t, _) = load("byo-numeric-labels.csv", "class", MissingPolicy::Error).unwrap();
        assert_eq!(t.class_names, vec!["2", "10", "11"]);
        assert_eq!(t.y, vec![1, 0, 2, 0, 1]);
    }

    #[test]
    fn missing_values_follow_the_policy() {
        let msg = err("byo-missing.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("row 2, column \"b\": missing value"), "{msg}");

        let (t, rep) = load("byo-missing.csv", "y", MissingPolicy::DropRows).unwrap();
        assert_eq!(rep.dropped_rows, vec![2, 4, 5]);
        assert_eq!((rep.rows_read, rep.rows_kept, t.len()), (6, 3, 3));
        assert_eq!(t.x.column(0).to_vec(), vec![1.0, 3.0, 6.0]);

        // Row 5 has a missing label: never imputed.
        let msg = err("byo-missing.csv", "y", MissingPolicy::ImputeMean);
        assert!(msg.contains("row 5, column \"y\"") && msg.contains("never imputed"), "{msg}");

        let (t, rep) = load("byo-missing-features.csv", "y", MissingPolicy::ImputeMean).unwrap();
        assert_eq!(rep.cells_imputed, 3);
        assert_eq!(rep.imputed_by_column, vec![("a".to_string(), 1), ("b".to_string(), 1), ("c".to_string(), 1)]);
        // a: mean of 1, 3, 4 at row 2.
        assert!((t.x[[1, 0]] - 8.0 / 3.0).abs() < 1e-12);
        // c (categorical u, v, u, missing): frequencies 2/3, 1/3 at row 4.
        assert_eq!(t.feature_names[2..], ["c=u".to_string(), "c=v".to_string()]);
        assert!((t.x[[3, 2]] - 2.0 / 3.0).abs() < 1e-12 && (t.x[[3, 3]] - 1.0 / 3.0).abs() < 1e-12);
        assert!(rep.to_string().contains("3 cells imputed"));
    }

    #[test]
    fn wrong_label_suggests_the_closest_column() {
        let msg = err("byo-good.csv", "incom", MissingPolicy::Error);
        assert!(msg.contains("no column \"incom\"; did you mean \"income\"?"), "{msg}");
        let msg = err("byo-good.csv", "zzzzzzzz", MissingPolicy::Error);
        assert!(msg.contains("the columns are \"age\""), "{msg}");
    }

    #[test]
    fn non_numeric_cell_names_row_and_column() {
        let msg = err("byo-bad-number.csv", "y", MissingPolicy::Error);
        assert!(msg.ends_with("byo-bad-number.csv: row 17, column \"age\": \"abc\" is not a number"), "{msg}");
    }

    #[test]
    fn nan_and_inf_are_errors() {
        let msg = err("byo-nan.csv", "y", MissingPolicy::ImputeMean);
        assert!(msg.contains("row 3, column \"x\": NaN is not a finite number"), "{msg}");
        let msg = err("byo-inf.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("row 2, column \"x\": -inf is not a finite number"), "{msg}");
    }

    #[test]
    fn single_class_empty_and_header_only_files() {
        let msg = err("byo-single-class.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("single class \"yes\""), "{msg}");
        assert!(err("byo-empty.csv", "y", MissingPolicy::Error).contains("the file is empty"));
        assert!(err("byo-header-only.csv", "y", MissingPolicy::Error).contains("no data rows"));
    }

    #[test]
    fn duplicated_header_is_an_error() {
        let msg = err("byo-duplicate-header.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("column name \"a\" appears twice (columns 1 and 3)"), "{msg}");
    }

    #[test]
    fn constant_and_mixed_columns_are_warnings() {
        let (t, rep) = load("byo-constant.csv", "y", MissingPolicy::Error).unwrap();
        assert_eq!(t.x.ncols(), 1 + 1 + 3);
        assert_eq!(rep.warnings.len(), 3, "{:?}", rep.warnings);
        assert!(rep.warnings[0].contains("column \"k\" is constant (5)"));
        assert!(rep.warnings[1].contains("column \"s\" is constant (every value is \"same\")"));
        assert!(rep.warnings[2].contains("column \"m\" mixes numbers (1 cells) and text (2 cells)"));
    }

    #[test]
    fn wrong_format_for_extension_is_detected() {
        let msg = err("byo-text.parquet", "y", MissingPolicy::Error);
        assert!(msg.contains("does not start with the Parquet magic bytes"), "{msg}");
        let msg = err("byo-semicolon.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("separated by semicolons"), "{msg}");
        let msg = err("byo-good.txt", "y", MissingPolicy::Error);
        assert!(msg.contains("extension must be .csv"), "{msg}");
    }

    #[test]
    fn parquet_round_trip_and_parquet_named_csv() {
        let dir = tempfile::tempdir().unwrap();
        let mut df = df!(
            "x" => [Some(1.0), Some(2.5), None, Some(4.0)],
            "n" => [1i64, 2, 3, 4],
            "flag" => [true, false, true, true],
            "city" => ["a", "b", "a", "b"],
            "label" => [1i64, 0, 1, 0]
        )
        .unwrap();
        let pq = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&pq).unwrap()).finish(&mut df).unwrap();
        let (t, rep) = load_table(&pq, "label", &MissingPolicy::ImputeMean).unwrap();
        assert_eq!(rep.format, FileFormat::Parquet);
        assert_eq!(t.feature_names, vec!["x", "n", "flag", "city=a", "city=b"]);
        assert_eq!(t.class_names, vec!["0", "1"]);
        assert_eq!(t.y, vec![1, 0, 1, 0]);
        assert!((t.x[[2, 0]] - 2.5).abs() < 1e-12);
        assert_eq!(t.x.row(1).to_vec(), vec![2.5, 2.0, 0.0, 0.0, 1.0]);
        assert_eq!(rep.cells_imputed, 1);
        let msg = load_table(&pq, "label", &MissingPolicy::Error).unwrap_err().to_string();
        assert!(msg.contains("row 3, column \"x\": missing value"), "{msg}");

        let renamed = dir.path().join("t.csv");
        std::fs::copy(&pq, &renamed).unwrap();
        let msg = load_table(&renamed, "label", &MissingPolicy::Error).unwrap_err().to_string();
        assert!(msg.contains("named .csv but it is a Parquet file") && msg.contains("rename it to .parquet"), "{msg}");

        let mut df = df!("x" => [1.0, f64::NAN], "label" => ["a", "b"]).unwrap();
        let pq = dir.path().join("nan.parquet");
        ParquetWriter::new(std::fs::File::create(&pq).unwrap()).finish(&mut df).unwrap();
        let msg = load_table(&pq, "label", &MissingPolicy::ImputeMean).unwrap_err().to_string();
        assert!(msg.contains("row 2, column \"x\": NaN is not a finite number"), "{msg}");
    }

    #[test]
    fn csv_edge_cases() {
        let dir = tempfile::tempdir().unwrap();
        let run = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            load_table(&p, "y", &MissingPolicy::Error).map_err(|e| e.to_string())
        };
        // Blank lines are skipped but keep their number; CRLF, a BOM, a missing final newline
        // and spaces around header names are fine.
        for (name, bytes) in [
            ("blank.csv", &b"a,y\n1,p\n\n2,q\n\n"[..]),
            ("crlf.csv", b"a,y\r\n1,p\r\n2,q"),
            ("bom.csv", b"\xEF\xBB\xBFy , a\np,1\nq,2\n"),
        ] {
            let (t, rep) = run(name, bytes).unwrap();
            assert_eq!((t.feature_names.clone(), t.y.clone(), rep.rows_read), (vec!["a".to_string()], vec![0, 1], 2), "{name}");
        }
        let msg = run("blank-bad.csv", b"a,y\n1,p\n\nx,q\n3,p\n").unwrap_err();
        assert!(msg.ends_with("row 3, column \"a\": \"x\" is not a number"), "{msg}");
        let msg = run("ragged.csv", b"a,y\n1,p\n\"2,5\",q\n4,q,5\n").unwrap_err();
        assert!(msg.ends_with("ragged.csv: row 3: 3 fields, but the header has 2"), "{msg}");
        let msg = run("short.csv", b"a,b,y\n1,2,p\n2,q\n").unwrap_err();
        assert!(msg.contains("row 2, column \"y\": missing value"), "{msg}");
        let msg = run("latin1.csv", b"a,y\n1,p\xe9\n2,q\n").unwrap_err();
        assert!(msg.contains("latin1.csv") && msg.contains("UTF-8"), "{msg}");
        let msg = run("only-label.csv", b"y\np\nq\n").unwrap_err();
        assert!(msg.contains("no feature columns besides the label \"y\""), "{msg}");
        let msg = run("all-blank.csv", b"a,y\n\n\n").unwrap_err();
        assert!(msg.contains("no data rows"), "{msg}");
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_magic_through_load_table_equals_magic() {
        let cache = super::super::test_support::fetched_cache();
        let want = super::super::magic(&cache).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("magic.csv");
        let body = std::fs::read_to_string(cache.join("magic/magic.dat")).unwrap();
        std::fs::write(&p, format!("{},class\n{body}", want.feature_names.join(","))).unwrap();
        let (t, rep) = load_table(&p, "class", &MissingPolicy::Error).unwrap();
        assert_eq!(t, want);
        assert_eq!((rep.rows_read, rep.warnings.len()), (19_020, 0));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let msg = err("byo-no-such-file.csv", "y", MissingPolicy::Error);
        assert!(msg.contains("byo-no-such-file.csv"), "{msg}");
    }
}
