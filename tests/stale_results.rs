//! Stored results carry the fingerprint of the code that computed them: a run with other code
//! recomputes every shard and refits every teacher, and a merge refuses shards of other code.

use kdlab::runner::{self, RunOptions};
use kdlab::study::{parse, LoadOptions};

const STUDY: &str = r#"name = "stale"
claim = "Results of other code are never reused."
seeds = 2
seed = 5
arms = ["labels", "kd"]

[data]
kind = "gaussian-mixture"
n_train = 120
n_test = 100
n_population = 500
dim = 3

[teacher]
kind = "forest"
n_trees = 8

[student]
kind = "mlp"
hidden = [4]
epochs = 5

[theory]
oracle_n = 0
"#;

fn provenance(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("stale/provenance.json")).unwrap()).unwrap()
}

#[test]
fn other_code_recomputes_shards_and_refits_teachers() {
    let study = parse(std::path::Path::new("stale.toml"), STUDY, &LoadOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let with = |code: &str| RunOptions { jobs: 2, code: code.to_string(), ..RunOptions::new(out.path()) };
    let units = study.cells.len() * study.seeds;

    let first = runner::run(&study, &with("code-a")).unwrap();
    assert_eq!((first.units_computed, first.units_reused), (units, 0));
    let results_a = std::fs::read(out.path().join("stale/results.csv")).unwrap();

    // The same code resumes from everything it stored.
    let again = runner::run(&study, &with("code-a")).unwrap();
    assert_eq!((again.units_computed, again.units_reused), (0, units));

    // Other code: no shard reused, every teacher fitted again (none loaded from the cache).
    let other = runner::run(&study, &with("code-b")).unwrap();
    assert_eq!((other.units_computed, other.units_reused), (units, 0));
    let p = provenance(out.path());
    assert_eq!(p["code_fingerprint"], "code-b");
    assert_eq!(p["teachers_loaded"], 0);
    assert_eq!(p["teachers_fitted"].as_u64().unwrap() as usize, units, "one teacher per seed, each refitted");
    // Here the "other code" computes the same thing, so the bytes agree: only reuse changed.
    assert_eq!(std::fs::read(out.path().join("stale/results.csv")).unwrap(), results_a);
    let report = std::fs::read_to_string(&other.report).unwrap();
    assert!(report.contains("| code fingerprint | `code-b`"), "the report names the code");

    // A merge by code "c" refuses the shards of code "b", naming them.
    let err = runner::merge(&study, &with("code-c")).err().expect("stale shards cannot be merged");
    let message = err.to_string();
    assert!(message.contains("computed by other code") && message.contains("by code code-b") && message.contains("this build is code-c"), "{message}");
}

#[test]
fn a_sequential_merge_refuses_shards_of_other_code() {
    let source = STUDY.replace("seeds = 2", "seeds = { min = 2, max = 4, step = 2 }")
        + "\n[[predictions]]\nid = \"kd-vs-labels\"\nmetric = \"log_loss\"\ncompare = [\"kd\", \"labels\"]\nexpect = \"lower\"\n";
    let study = parse(std::path::Path::new("stale.toml"), &source, &LoadOptions::default()).unwrap();
    assert!(study.plan.is_sequential());
    let out = tempfile::tempdir().unwrap();
    let with = |code: &str| RunOptions { jobs: 2, code: code.to_string(), ..RunOptions::new(out.path()) };
    runner::run(&study, &with("code-a")).unwrap();
    let err = runner::merge(&study, &with("code-b")).err().expect("stale shards cannot be merged");
    let message = err.to_string();
    assert!(message.contains("computed by other code") && message.contains("by code code-a"), "{message}");
    // The code that computed them merges them.
    runner::merge(&study, &with("code-a")).unwrap();
}
