//! UCI tabular sets from the data cache: Adult (census income) and MAGIC gamma telescope, the
//! two real sets of Dao et al. (2021) that registries carry (shared reference: datasets.md §0,
//! semiparametric-kd.md §5.2). Features are returned raw (not standardised).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ndarray::Array2;

use super::{cache_file, read_text, DataError, Result, Split, Table};

/// Adult columns in file order; `true` marks the 8 categorical ones.
const ADULT_COLUMNS: [(&str, bool); 14] = [
    ("age", false),
    ("workclass", true),
    ("fnlwgt", false),
    ("education", true),
    ("education-num", false),
    ("marital-status", true),
    ("occupation", true),
    ("relationship", true),
    ("race", true),
    ("sex", true),
    ("capital-gain", false),
    ("capital-loss", false),
    ("hours-per-week", false),
    ("native-country", true),
];
const ADULT_CLASSES: [&str; 2] = ["<=50K", ">50K"];

/// One parsed Adult row: 14 trimmed fields and the class index.
struct AdultRow<'a> {
    row: usize,
    fields: Vec<&'a str>,
    class: usize,
}

/// Parses `adult.data` or `adult.test`: fields separated by `", "`, blank lines and the junk
/// first line of `adult.test` (`|1x3 Cross validator`) skipped, the trailing `.` of its labels
/// (`>50K.`) removed.
fn parse_adult<'a>(path: &Path, text: &'a str) -> Result<Vec<AdultRow<'a>>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('|') {
            continue;
        }
        let row = rows.len() + 1;
        let mut fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 15 {
            return Err(DataError::Row {
                path: path.to_path_buf(),
                row,
                message: format!("expected 15 comma-separated fields, found {}", fields.len()),
            });
        }
        let label = fields.pop().unwrap_or_default();
        let label = label.strip_suffix('.').unwrap_or(label);
        let class = ADULT_CLASSES.iter().position(|c| *c == label).ok_or_else(|| DataError::Value {
            path: path.to_path_buf(),
            row,
            column: "income".into(),
            message: format!("\"{label}\" is neither <=50K nor >50K"),
        })?;
        rows.push(AdultRow { row, fields, class });
    }
    Ok(rows)
}

/// UCI Adult from `<cache>/adult/adult.{data,test}`: 32,561 training and 16,281 test rows.
///
/// - Features: the 6 numeric columns as they are, and the 8 categorical ones one-hot encoded as
///   `column=category`, with the categories (sorted) fixed from `adult.data` for both splits;
///   108 columns in file order.
/// - **Missing values** (`?`, only in workclass, occupation and native-country: 2,399 training
///   rows) are kept as a category of their own, `workclass=?` etc., so no row is dropped and
///   the row counts match UCI. Drop or impute later if a study needs it.
/// - Classes: `["<=50K", ">50K"]` (24 % positive); the test file's `>50K.` is read as `>50K`.
pub fn adult(cache: &Path, split: Split) -> Result<Table> {
    let train_path = cache_file(cache, "adult/adult.data")?;
    let train_text = read_text(&train_path)?;
    let train = parse_adult(&train_path, &train_text)?;

    let cat_cols: Vec<usize> = (0..14).filter(|&j| ADULT_COLUMNS[j].1).collect();
    let categories: HashMap<usize, Vec<String>> = cat_cols
        .iter()
        .map(|&j| {
            let set: BTreeSet<&str> = train.iter().map(|r| r.fields[j]).collect();
            (j, set.into_iter().map(String::from).collect())
        })
        .collect();
    let mut feature_names = Vec::new();
    for (j, (name, categorical)) in ADULT_COLUMNS.iter().enumerate() {
        if *categorical {
            feature_names.extend(categories[&j].iter().map(|c| format!("{name}={c}")));
        } else {
            feature_names.push(name.to_string());
        }
    }

    let (path, rows) = match split {
        Split::Train => (train_path.clone(), None),
        Split::Test => {
            let p = cache_file(cache, "adult/adult.test")?;
            let text = read_text(&p)?;
            (p, Some(text))
        }
    };
    let test_rows;
    let rows: &[AdultRow] = match &rows {
        None => &train,
        Some(text) => {
            test_rows = parse_adult(&path, text)?;
            &test_rows
        }
    };

    let index: HashMap<usize, HashMap<&str, usize>> = categories
        .iter()
        .map(|(&j, cats)| (j, cats.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect()))
        .collect();
    let mut x = Array2::zeros((rows.len(), feature_names.len()));
    for (r, row) in rows.iter().enumerate() {
        let mut c = 0;
        for (j, (name, categorical)) in ADULT_COLUMNS.iter().enumerate() {
            let v = row.fields[j];
            if *categorical {
                let k = index[&j].get(v).ok_or_else(|| DataError::Value {
                    path: path.clone(),
                    row: row.row,
                    column: name.to_string(),
                    message: format!("category \"{v}\" does not occur in adult.data"),
                })?;
                x[[r, c + k]] = 1.0;
                c += categories[&j].len();
            } else {
                x[[r, c]] = v.parse::<f64>().map_err(|_| DataError::NotANumber {
                    path: path.clone(),
                    row: row.row,
                    column: name.to_string(),
                    value: v.to_string(),
                })?;
                c += 1;
            }
        }
    }
    Ok(Table {
        x,
        y: rows.iter().map(|r| r.class).collect(),
        feature_names,
        class_names: ADULT_CLASSES.iter().map(|c| c.to_string()).collect(),
    })
}

const MAGIC_FEATURES: [&str; 10] =
    ["fLength", "fWidth", "fSize", "fConc", "fConc1", "fAsym", "fM3Long", "fM3Trans", "fAlpha", "fDist"];

/// UCI MAGIC gamma telescope from `<cache>/magic/magic.dat` (the KEEL copy: headerless CSV, 10
/// numeric features, class last): 19,020 rows, classes `["g", "h"]` (gamma 12,332, hadron
/// 6,688). There is no official split; Dao et al. split 70/30 at random.
pub fn magic(cache: &Path) -> Result<Table> {
    let path = cache_file(cache, "magic/magic.dat")?;
    let text = read_text(&path)?;
    let mut values = Vec::new();
    let mut y = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('@') {
            continue; // KEEL header lines, if a copy has them
        }
        let row = y.len() + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 11 {
            return Err(DataError::Row {
                path: path.clone(),
                row,
                message: format!("expected 11 comma-separated fields, found {}", fields.len()),
            });
        }
        for (name, v) in MAGIC_FEATURES.iter().zip(&fields[..10]) {
            let x: f64 = v.parse().map_err(|_| DataError::NotANumber {
                path: path.clone(),
                row,
                column: name.to_string(),
                value: v.to_string(),
            })?;
            if !x.is_finite() {
                return Err(DataError::NonFinite { path: path.clone(), row, column: name.to_string(), value: v.to_string() });
            }
            values.push(x);
        }
        y.push(match fields[10] {
            "g" => 0,
            "h" => 1,
            other => {
                return Err(DataError::Value {
                    path: path.clone(),
                    row,
                    column: "class".into(),
                    message: format!("\"{other}\" is neither g nor h"),
                })
            }
        });
    }
    let x = Array2::from_shape_vec((y.len(), 10), values).map_err(|e| DataError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(Table {
        x,
        y,
        feature_names: MAGIC_FEATURES.iter().map(|s| s.to_string()).collect(),
        class_names: vec!["g".into(), "h".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::fetched_cache;
    use super::*;

    #[test]
    fn adult_parser_skips_junk_line_and_label_dot() {
        let text = "|1x3 Cross validator\n\
            25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, United-States, <=50K.\n\
            38, ?, 89814, HS-grad, 9, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 50, ?, >50K.\n\n";
        let rows = parse_adult(Path::new("adult.test"), text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].class, rows[1].class), (0, 1));
        assert_eq!(rows[1].fields[1], "?");
        let bad = "25, Private, 1\n";
        let msg = parse_adult(Path::new("adult.data"), bad).err().unwrap().to_string();
        assert_eq!(msg, "adult.data: row 1: expected 15 comma-separated fields, found 3");
    }

    #[test]
    fn missing_cache_file_says_how_to_fetch() {
        let msg = magic(Path::new("/nonexistent-cache")).unwrap_err().to_string();
        assert!(msg.contains("magic.dat: not found; scripts/fetch-data.sh"), "{msg}");
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_adult_counts_and_encoding() {
        let cache = fetched_cache();
        let train = adult(&cache, Split::Train).unwrap();
        let test = adult(&cache, Split::Test).unwrap();
        assert_eq!((train.len(), test.len()), (32_561, 16_281));
        assert_eq!(train.class_counts(), vec![24_720, 7_841]);
        assert_eq!(test.class_counts(), vec![12_435, 3_846]);
        assert_eq!(train.feature_names.len(), 108);
        assert_eq!(train.feature_names, test.feature_names);
        assert_eq!(train.x.ncols(), 108);
        // First training row: 39, State-gov, 77516, Bachelors, 13, ...
        assert_eq!(train.x[[0, 0]], 39.0);
        let col = |name: &str| train.feature_names.iter().position(|f| f == name).unwrap();
        assert_eq!(train.x[[0, col("workclass=State-gov")]], 1.0);
        assert_eq!(train.x[[0, col("fnlwgt")]], 77_516.0);
        // Every categorical block is one-hot: 6 numeric values + 8 ones per row.
        for t in [&train, &test] {
            let numeric: Vec<usize> = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
                .iter()
                .map(|n| col(n))
                .collect();
            for row in t.x.rows() {
                let ones: f64 = row.iter().enumerate().filter(|(j, _)| !numeric.contains(j)).map(|(_, v)| v).sum();
                assert_eq!(ones, 8.0);
            }
        }
        // 2,399 training rows carry a "?" (missing) in some column.
        let q: Vec<usize> = ["workclass=?", "occupation=?", "native-country=?"].iter().map(|n| col(n)).collect();
        let rows_with_missing = train.x.rows().into_iter().filter(|r| q.iter().any(|&j| r[j] == 1.0)).count();
        assert_eq!(rows_with_missing, 2_399);
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_magic_counts() {
        let t = magic(&fetched_cache()).unwrap();
        assert_eq!((t.len(), t.x.ncols()), (19_020, 10));
        assert_eq!(t.class_counts(), vec![12_332, 6_688]);
        assert_eq!(t.x.row(0).to_vec()[..3], [28.7967, 16.0021, 2.6449]);
    }
}
