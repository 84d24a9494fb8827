//! The corpus of broken study files in `tests/broken-studies/`: each one breaks a valid study in
//! one place and says in its header what the error must name:
//!
//! ```text
//! # <what is broken>
//! # expect-line: <line of the file, or - when the error has no line (a missing section)>
//! # expect-key: <dotted key path, or - for syntax errors>
//! # expect-message: <a part of the message>
//! ```
//!
//! Every file must be rejected by the parser with exactly that file, line and key, and by
//! `kdlab check` with exit code 2 and no panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use kdlab::study::{parse, LoadOptions};

struct Case {
    path: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken-studies");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let field = |name: &str| -> String {
                let prefix = format!("# {name}: ");
                text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("{}: no `{prefix}` header", path.display())).to_string()
            };
            let (line, key, message) = (field("expect-line"), field("expect-key"), field("expect-message"));
            Case { line: (line != "-").then(|| line.parse().unwrap()), key: (key != "-").then_some(key), message, path }
        })
        .collect()
}

#[test]
fn the_corpus_has_at_least_forty_broken_studies() {
    assert!(corpus().len() >= 40, "{}", corpus().len());
}

#[test]
fn every_broken_study_names_its_file_line_and_key() {
    for case in corpus() {
        let name = case.path.display();
        let source = std::fs::read_to_string(&case.path).unwrap();
        let err = parse(&case.path, &source, &LoadOptions::default()).expect_err(&format!("{name} must be rejected"));
        assert_eq!(err.file, case.path, "{name}");
        assert_eq!(err.line, case.line, "{name}: {err}");
        assert_eq!(err.key, case.key, "{name}: {err}");
        assert!(err.to_string().contains(&case.message), "{name}: `{err}` lacks `{}`", case.message);
    }
}

#[test]
fn kdlab_check_exits_with_2_on_every_broken_study() {
    for case in corpus() {
        let out = Command::new(env!("CARGO_BIN_EXE_kdlab")).arg("check").arg(&case.path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", case.path.display());
        assert!(stderr.starts_with("error: ") && stderr.contains(&case.message) && !stderr.contains("panicked"), "{}: {stderr}", case.path.display());
    }
}
