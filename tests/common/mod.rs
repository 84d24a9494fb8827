//! Shared helpers of the integration tests.

use std::path::Path;

use kdlab::results::Row;
use kdlab::runner::{self, RunOptions};
use kdlab::study::{parse, LoadOptions, Study};

/// Parses study text, runs it on two threads into a temporary directory, and returns the study
/// and its rows read back from `results.parquet`; fails the test if any row failed.
pub fn run_study(source: &str) -> (Study, Vec<Row>) {
    let study = parse(Path::new("test-study.toml"), source, &LoadOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    runner::run(&study, &RunOptions { jobs: 2, ..kdlab::runner::RunOptions::new(out.path()) }).unwrap();
    let axes: Vec<String> = study.axes.iter().map(|a| a.key.clone()).collect();
    let rows = kdlab::results::read(&out.path().join(&study.name), &axes, study.registry.metrics()).unwrap();
    assert!(rows.iter().all(|r| r.failure.is_none()), "no row may fail");
    (study, rows)
}
