//! A wrong study file gives one clear error naming the file, the line and the key, and the
//! likely intended key where there is one. Each case edits one line of a valid study.

use std::path::Path;

use kdlab::study::{parse, LoadOptions, StudyError};

const VALID: &str = r#"name = "errors"
claim = "a valid study to break"
seeds = 3
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = [100, 200]
dim = 3

[teacher]
kind = "forest"
n_trees = 10

[student]
kind = "mlp"
hidden = [8]

[distill]
temperature = 2.0
alpha = 0.5

[[predictions]]
id = "p1"
metric = "excess_risk"
compare = ["kd", "labels"]
expect = "lower"
"#;

/// Parses `VALID` with `from` replaced by `to`; the edit must apply.
fn broken(from: &str, to: &str) -> StudyError {
    assert!(VALID.contains(from), "test edit `{from}` does not apply");
    let source = VALID.replacen(from, to, 1);
    let err = parse(Path::new("studies/errors.toml"), &source, &LoadOptions::default()).expect_err("the broken study must be rejected");
    assert_eq!(err.file, Path::new("studies/errors.toml"));
    assert!(err.to_string().starts_with("studies/errors.toml:"), "{err}");
    err
}

#[track_caller]
fn check(err: &StudyError, line: usize, key: &str, message_part: &str) {
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    assert!(err.to_string().contains(message_part), "`{err}` lacks `{message_part}`");
}

#[test]
fn the_valid_study_parses() {
    let s = parse(Path::new("s.toml"), VALID, &LoadOptions::default()).unwrap();
    assert_eq!((s.cells.len(), s.seeds, s.predictions.len()), (2, 3, 1));
}

#[test]
fn unknown_top_level_key_suggests_the_right_one() {
    let e = broken("seeds = 3", "sedes = 3");
    check(&e, 3, "sedes", "unknown top-level key `sedes`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `seeds`?"));
}

#[test]
fn unknown_section_key_suggests_the_right_one() {
    let e = broken("n_trees = 10", "n_tree = 10");
    check(&e, 13, "teacher.n_tree", "unknown [teacher] key `n_tree`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `n_trees`?"));
}

#[test]
fn unknown_kind_suggests_the_right_one() {
    let e = broken("kind = \"gaussian-mixture\"", "kind = \"gaussian-mixtur\"");
    check(&e, 7, "data.kind", "unknown data kind");
    assert_eq!(e.hint.as_deref(), Some("did you mean `gaussian-mixture`?"));
}

#[test]
fn wrong_type_names_the_key() {
    check(&broken("dim = 3", "dim = \"three\""), 9, "data.dim", "invalid type");
    check(&broken("seeds = 3", "seeds = 2.5"), 3, "seeds", "must be an integer");
    check(&broken("temperature = 2.0", "temperature = \"hot\""), 20, "distill.temperature", "invalid type");
}

#[test]
fn empty_grid_is_rejected() {
    check(&broken("n_train = [100, 200]", "n_train = []"), 8, "data.n_train", "empty grid");
}

#[test]
fn duplicated_grid_level_is_rejected() {
    check(&broken("n_train = [100, 200]", "n_train = [100, 100]"), 8, "data.n_train[1]", "appears twice");
}

#[test]
fn negative_and_absurd_sizes_are_rejected() {
    check(&broken("n_train = [100, 200]", "n_train = -5"), 8, "data.n_train", "invalid value");
    check(&broken("n_train = [100, 200]", "n_train = 1000000000000"), 8, "data.n_train", "between 10 and");
    check(&broken("seeds = 3", "seeds = 0"), 3, "seeds", "between 1 and");
}

#[test]
fn weights_outside_zero_one_are_rejected() {
    check(&broken("alpha = 0.5", "alpha = 1.5"), 21, "distill.alpha", "must be in [0, 1]");
    check(&broken("hidden = [8]", "hidden = [8]\nvalidation_fraction = 1.2"), 18, "student.validation_fraction", "must be in [0, 1)");
}

#[test]
fn a_bad_level_of_a_grid_names_the_level() {
    let e = broken("n_train = [100, 200]", "n_train = [100, 2]");
    check(&e, 8, "data.n_train", "grid level 2");
}

#[test]
fn prediction_naming_an_unknown_arm_or_metric() {
    let e = broken("compare = [\"kd\", \"labels\"]", "compare = [\"kdd\", \"labels\"]");
    check(&e, 26, "predictions[0].compare[0]", "unknown arm `kdd`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `kd`?"));
    let e = broken("metric = \"excess_risk\"", "metric = \"excess_rsk\"");
    check(&e, 25, "predictions[0].metric", "unknown metric");
    assert_eq!(e.hint.as_deref(), Some("did you mean `excess_risk`?"));
}

#[test]
fn prediction_naming_an_arm_the_study_does_not_run() {
    let e = broken("arms = [\"labels\", \"kd\"]", "arms = [\"labels\"]");
    check(&e, 26, "predictions[0].compare[0]", "not among the study's arms");
}

#[test]
fn prediction_filter_on_an_unknown_axis_or_level() {
    let e = broken("expect = \"lower\"", "expect = \"lower\"\nwhere = { \"data.n_trian\" = 100 }");
    check(&e, 28, "predictions[0].where.data.n_trian", "unknown grid axis");
    assert_eq!(e.hint.as_deref(), Some("did you mean `data.n_train`?"));
    let e = broken("expect = \"lower\"", "expect = \"lower\"\nwhere = { \"data.n_train\" = 300 }");
    check(&e, 28, "predictions[0].where.data.n_train", "300 is not a level");
}

#[test]
fn bad_margin_and_best_of_lists_are_rejected() {
    check(&broken("expect = \"lower\"", "expect = \"lower\"\nmargin = -0.1"), 28, "predictions[0].margin", "must be a number >= 0");
    let e = broken("compare = [\"kd\", \"labels\"]", "compare = [\"kd\", [\"labels\", \"kd\"]]");
    check(&e, 26, "predictions[0].compare[1]", "contains the arm it is compared with");
    let e = broken("expect = \"lower\"", "expect = \"lower\"\ntest = \"pitman-morgan\"\nmargin = 0.1");
    check(&e, 29, "predictions[0].margin", "not to a variance test");
}

#[test]
fn unknown_arm_in_arms() {
    let e = broken("arms = [\"labels\", \"kd\"]", "arms = [\"label\", \"kd\"]");
    check(&e, 4, "arms[0]", "unknown arm `label`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `labels`?"));
}

#[test]
fn toml_syntax_error_names_the_line() {
    let e = broken("dim = 3", "dim = = 3");
    assert_eq!(e.line, Some(9), "{e}");
    assert!(e.message.starts_with("invalid TOML"), "{e}");
}

#[test]
fn a_name_that_could_escape_the_report_directory_is_rejected() {
    check(&broken("name = \"errors\"", "name = \"../errors\""), 1, "name", "plain name");
}

#[test]
fn missing_section_is_named() {
    let e = broken("[teacher]\nkind = \"forest\"\nn_trees = 10\n", "");
    assert!(e.to_string().contains("no [teacher] section"), "{e}");
}

#[test]
fn diagnostics_keys_are_checked_and_suggested() {
    let e = broken("alpha = 0.5\n", "alpha = 0.5\n\n[diagnostics]\npermutation = 100\n");
    check(&e, 24, "diagnostics.permutation", "unknown [diagnostics] key `permutation`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `permutations`?"));
    let e = broken("alpha = 0.5\n", "alpha = 0.5\n\n[diagnostics]\nbootstrap = 5\n");
    check(&e, 24, "diagnostics.bootstrap", "must be between 20 and 100000");
}

#[test]
fn image_data_kinds_parse_and_name_bad_keys() {
    let digits = VALID.replacen("kind = \"gaussian-mixture\"\nn_train = [100, 200]\ndim = 3", "kind = \"digits\"\nsmall = true\nn_train = [100, 200]", 1);
    let s = parse(Path::new("s.toml"), &digits, &LoadOptions::default()).unwrap();
    assert_eq!(s.cells.len(), 2);
    let e = parse(Path::new("s.toml"), &digits.replacen("n_train = [100, 200]", "n_train = [100, 600]", 1), &LoadOptions::default()).unwrap_err();
    check(&e, 9, "data.n_train", "between 10 and 500");
    let e = parse(Path::new("s.toml"), &digits.replacen("small = true", "smal = true", 1), &LoadOptions::default()).unwrap_err();
    check(&e, 8, "data.smal", "small");
    let synthetic = VALID.replacen("kind = \"gaussian-mixture\"\nn_train = [100, 200]\ndim = 3", "kind = \"synthetic-images\"\nn_train = 100\nsigma = -1.0", 1);
    let e = parse(Path::new("s.toml"), &synthetic, &LoadOptions::default()).unwrap_err();
    check(&e, 9, "data.sigma", "must be finite and > 0");
}

#[test]
fn a_prediction_key_of_the_wrong_type_or_name_is_located() {
    let e = broken("metric = \"excess_risk\"", "metric = 3");
    check(&e, 25, "predictions[0].metric", "expected a string");
    let e = broken("expect = \"lower\"", "expect = \"lower\"\nmargn = 0.1");
    check(&e, 28, "predictions[0].margn", "unknown prediction key");
    assert_eq!(e.hint.as_deref(), Some("did you mean `margin`?"));
}

#[test]
fn a_method_key_for_an_arm_the_study_does_not_run_is_refused() {
    let source = r#"
name = "m"
claim = "c"
arms = ["kd", "rkd"]
[data]
kind = "digits"
small = true
[teacher]
kind = "mlp"
hidden = [16]
[student]
kind = "mlp"
hidden = [8]
[method]
rkd_angle_weight = 50.0
gkd_weight = 2.0
"#;
    let e = parse(Path::new("studies/m.toml"), source, &LoadOptions::default()).unwrap_err();
    check(&e, 16, "method.gkd_weight", "read only by `gkd`, which the study does not run");
    let with_gkd = source.replace("arms = [\"kd\", \"rkd\"]", "arms = [\"kd\", \"rkd\", \"gkd\"]");
    parse(Path::new("studies/m.toml"), &with_gkd, &LoadOptions::default()).unwrap();
}
