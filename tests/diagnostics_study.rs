//! A study with a `[diagnostics]` section: every diagnostic reaches the rows, the invariants
//! between them hold on real fits, and the report shows them with a reliability diagram.

mod common;

use kdlab::results::Row;

const STUDY: &str = r#"name = "diagnostics-wiring"
claim = "Diagnostics reach the results and the report."
seeds = 2
seed = 11
arms = ["labels", "kd"]

[data]
kind = "multiclass-synthetic"
dim = 4
n_classes = 3
n_train = 300
n_test = 400
n_population = 2000

[teacher]
kind = "forest"
n_trees = 20

[student]
kind = "mlp"
hidden = [8]
epochs = 30

[theory]
oracle_n = 1000
rademacher_draws = 100

[diagnostics]
bootstrap = 50
permutations = 50
lipschitz_points = 50
"#;

fn get(r: &Row, m: &str) -> f64 {
    r.get(m).unwrap_or_else(|| panic!("{} lacks {m}", r.arm))
}

#[test]
fn diagnostics_reach_rows_and_respect_their_invariants() {
    let (_, rows) = common::run_study(STUDY);
    let teacher: Vec<&Row> = rows.iter().filter(|r| r.arm == "teacher").collect();
    let students: Vec<&Row> = rows.iter().filter(|r| r.arm == "labels" || r.arm == "kd").collect();
    assert_eq!((teacher.len(), students.len()), (2, 4));
    for t in &teacher {
        // A forest has no certified bounds, only the labelled heuristic, and no MI with itself.
        assert!(t.get("lipschitz_lower").is_none() && t.get("lipschitz_upper").is_none() && t.get("mi_teacher_student").is_none());
        assert!(get(t, "lipschitz_local_fd") > 0.0);
        assert!(!t.reliability.is_empty());
    }
    for s in &students {
        // Certified bounds bracket the constant, and SeqLip never exceeds the product bound.
        let (lo, up, prod) = (get(s, "lipschitz_lower"), get(s, "lipschitz_upper"), get(s, "lipschitz_upper_product"));
        assert!(0.0 < lo && lo <= up * (1.0 + 1e-9) && up <= prod * (1.0 + 1e-9), "{lo} {up} {prod}");
        // Plug-in MI of labels never exceeds the entropy of three classes.
        let mi = get(s, "mi_teacher_student");
        assert!((0.0..=3f64.log2()).contains(&mi), "{mi}");
        assert!(get(s, "mi_p_value") > 0.0 && get(s, "mi_p_value") <= 1.0);
        assert!(get(s, "ece_ci_low") <= get(s, "ece_ci_high"));
        // The bins hold every test point once.
        assert_eq!(s.reliability.iter().map(|b| b.count).sum::<usize>(), 400);
        // δ̂_n ≈ √(rank/n) is at most √(P/n) (P = 4·8 + 8 + 8·3 + 3 = 67 parameters, n = 240
        // fit points after the 20% validation split) plus Monte-Carlo slack, and below the
        // √(P log n / n) proxy.
        let (empirical, proxy) = (get(s, "critical_radius_empirical"), get(s, "critical_radius_proxy"));
        assert!(empirical > 0.0 && empirical <= (67.0f64 / 240.0).sqrt() * 1.05, "{empirical}");
        assert!((proxy - (67.0 * 240f64.ln() / 240.0).sqrt()).abs() < 1e-12 && empirical < proxy);
    }
}

#[test]
fn the_report_shows_diagnostics_and_reliability_diagrams() {
    let study = kdlab::study::parse(std::path::Path::new("d.toml"), STUDY, &Default::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    kdlab::runner::run(&study, &kdlab::runner::RunOptions { jobs: 2, ..kdlab::runner::RunOptions::new(out.path()) }).unwrap();
    let report = std::fs::read_to_string(out.path().join("diagnostics-wiring.md")).unwrap();
    for needle in ["## Diagnostics", "`lipschitz_lower`: certified LOWER bound", "HEURISTIC", "Lipschitz gap", "fig-reliability-cell0.svg", "critical_radius_empirical"] {
        assert!(report.contains(needle), "report lacks {needle}");
    }
    let dir = out.path().join("diagnostics-wiring");
    assert!(dir.join("fig-reliability-cell0.svg").exists() && dir.join("reliability.csv").exists());
    // Re-rendering from the files alone gives the same report (reliability bins included).
    kdlab::report::rerender(&dir, &kdlab::registry::Registry::builtin()).unwrap();
    assert_eq!(std::fs::read_to_string(out.path().join("diagnostics-wiring.md")).unwrap(), report);
}
