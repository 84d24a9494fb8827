//! UCI optdigits (Alpaydin & Kaynak 1998): 8×8 images whose pixels are counts 0..16 of "on"
//! pixels in 4×4 blocks of a 32×32 bitmap. Files `.tra` / `.tes`: headerless CSV, 64 integers
//! then the label 0..9. Pixels are returned ÷16, in [0, 1].
//!
//! The full set (3,823 + 1,797; the test part is sklearn's `load_digits`) comes from the data
//! cache; [`optdigits_small`] embeds `data/optdigits-small/` (the first 500 + 200 lines,
//! CC BY 4.0, see its NOTICE) so tests and examples need no fetch.

use std::path::Path;

use ndarray::Array2;

use super::{cache_file, read_text, DataError, Images, Result, Split};

const SMALL_TRAIN: &str = include_str!("../../data/optdigits-small/optdigits-small.tra");
const SMALL_TEST: &str = include_str!("../../data/optdigits-small/optdigits-small.tes");

/// Parses optdigits text; `path` is only used in errors. Blank lines are skipped.
fn parse_optdigits(path: &Path, text: &str) -> Result<Images> {
    let mut values = Vec::new();
    let mut y = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row = y.len() + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(DataError::Row {
                path: path.to_path_buf(),
                row,
                message: format!("expected 65 comma-separated integers (64 pixels and the label), found {}", fields.len()),
            });
        }
        for (j, f) in fields.iter().enumerate() {
            let column = if j == 64 { "label".to_string() } else { format!("pixel {}", j + 1) };
            let v: u8 = f.parse().map_err(|_| DataError::NotANumber {
                path: path.to_path_buf(),
                row,
                column: column.clone(),
                value: f.to_string(),
            })?;
            let max = if j == 64 { 9 } else { 16 };
            if v > max {
                return Err(DataError::Value {
                    path: path.to_path_buf(),
                    row,
                    column,
                    message: format!("{v} is out of range 0..={max}"),
                });
            }
            if j == 64 {
                y.push(v as usize);
            } else {
                values.push(f64::from(v) / 16.0);
            }
        }
    }
    let x = Array2::from_shape_vec((y.len(), 64), values)
        .map_err(|e| DataError::Format { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(Images { x, y, height: 8, width: 8, n_classes: 10 })
}

/// Reads one optdigits `.tra`/`.tes` file (any number of rows).
pub fn read_optdigits(path: &Path) -> Result<Images> {
    parse_optdigits(path, &read_text(path)?)
}

/// The full optdigits split from `<cache>/optdigits/optdigits.{tra,tes}`: 3,823 training and
/// 1,797 test images.
pub fn optdigits(cache: &Path, split: Split) -> Result<Images> {
    let (file, n) = match split {
        Split::Train => ("optdigits/optdigits.tra", 3823),
        Split::Test => ("optdigits/optdigits.tes", 1797),
    };
    let path = cache_file(cache, file)?;
    let out = read_optdigits(&path)?;
    if out.len() != n {
        return Err(DataError::Count { path, what: "rows".into(), expected: n, found: out.len() });
    }
    Ok(out)
}

/// The committed optdigits subset (no fetch): 500 training images (the first lines of
/// `optdigits.tra`) or 200 test images (the first lines of `optdigits.tes`).
pub fn optdigits_small(split: Split) -> Images {
    let (name, text) = match split {
        Split::Train => ("data/optdigits-small/optdigits-small.tra", SMALL_TRAIN),
        Split::Test => ("data/optdigits-small/optdigits-small.tes", SMALL_TEST),
    };
    // The embedded files are fixed and checked by the tests below.
    parse_optdigits(Path::new(name), text).expect("the embedded optdigits-small files parse")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::fetched_cache;
    use super::*;

    #[test]
    fn optdigits_small_has_known_counts() {
        let train = optdigits_small(Split::Train);
        let test = optdigits_small(Split::Test);
        assert_eq!((train.len(), test.len()), (500, 200));
        assert_eq!((train.height, train.width, train.x.ncols()), (8, 8, 64));
        assert_eq!(train.class_counts(), vec![44, 53, 51, 46, 60, 48, 42, 53, 48, 55]);
        assert_eq!(test.class_counts(), vec![21, 19, 20, 21, 19, 20, 21, 20, 19, 20]);
        // First training row: 0,1,6,15,12,1,0,0,... label 0.
        assert_eq!(train.y[0], 0);
        assert_eq!(train.x.row(0).to_vec()[..4], [0.0, 1.0 / 16.0, 6.0 / 16.0, 15.0 / 16.0]);
        assert!(train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn optdigits_errors_name_row_and_column() {
        let p = Path::new("digits.tra");
        let mut line: Vec<String> = (0..64).map(|_| "0".to_string()).collect();
        line.push("3".into());
        let good = line.join(",");
        let mut bad = line.clone();
        bad[9] = "x".into();
        let msg = parse_optdigits(p, &format!("{good}\n{}\n", bad.join(","))).unwrap_err().to_string();
        assert_eq!(msg, "digits.tra: row 2, column \"pixel 10\": \"x\" is not a number");
        bad[9] = "17".into();
        let msg = parse_optdigits(p, &bad.join(",")).unwrap_err().to_string();
        assert_eq!(msg, "digits.tra: row 1, column \"pixel 10\": 17 is out of range 0..=16");
        let msg = parse_optdigits(p, "1,2,3").unwrap_err().to_string();
        assert!(msg.contains("found 3"), "{msg}");
    }

    #[test]
    #[ignore = "needs scripts/fetch-data.sh"]
    fn needs_fetch_optdigits_counts_and_small_subset_matches() {
        let cache = fetched_cache();
        let train = optdigits(&cache, Split::Train).unwrap();
        let test = optdigits(&cache, Split::Test).unwrap();
        assert_eq!((train.len(), test.len()), (3823, 1797));
        assert_eq!(train.class_counts(), vec![376, 389, 380, 389, 387, 376, 377, 387, 380, 382]);
        assert_eq!(test.class_counts(), vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        let (small_train, small_test) = (optdigits_small(Split::Train), optdigits_small(Split::Test));
        assert_eq!(train.split_at(500).0, small_train);
        assert_eq!(test.split_at(200).0, small_test);
    }
}
