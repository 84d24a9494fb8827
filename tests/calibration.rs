//! The verdict engine checked by simulation, through the code path a study uses
//! (`verdicts::evaluate` on a results table): false-positive rates under identical arms with
//! differences correlated within seed, family-wise rates under Holm and across the looks of a
//! sequential design, and power under a known effect. `kdlab calibrate` writes the same
//! designs' rates to `CALIBRATION.md`.
//!
//! Tolerances. A rule whose true rate is exactly α exceeds α + k Monte-Carlo standard errors
//! with probability about P(Z > k). About 200 designs are checked, so each uses k = 4.4
//! (P ≈ 5e-6 each, under 1e-3 for the file by Bonferroni); `CALIBRATION.md` marks which rates
//! also lie within the tighter α + 3 SE. The seeds are fixed, so a run is reproducible.

use kdlab::verdicts::calibration::{self, Design};
use kdlab::verdicts::ALPHA;

const REPS: usize = 2000;
const SEED: u64 = 2026;
const K: f64 = 4.4;

fn se(p: f64) -> f64 {
    (p * (1.0 - p) / REPS as f64).sqrt()
}

fn check_null(designs: &[Design]) {
    let mut failures = Vec::new();
    for d in designs {
        let r = calibration::simulate(d, REPS, SEED);
        if r.rate > ALPHA + K * se(ALPHA) {
            failures.push(format!("{d:?}: rate {:.4}", r.rate));
        }
    }
    assert!(failures.is_empty(), "false-positive rates above α + {K} SE:\n{}", failures.join("\n"));
}

#[test]
fn every_test_kind_holds_its_false_positive_rate_at_every_design() {
    // Paired t, Wilcoxon, non-inferiority at its margin, Pitman–Morgan, Pearson, two levels of
    // an axis, an arm against a constant, duplicated teacher rows; 1–8 cells, 3–30 seeds,
    // within-seed correlation 0, 0.5 and 0.9.
    check_null(&calibration::null_designs());
}

#[test]
fn holm_and_the_sequential_looks_hold_the_family_wise_rate() {
    // Nine null predictions of 4 cells × 3 seeds at ρ = 0.5 (where pooling cells gave a
    // family-wise rate of 0.53), and sequential designs with 3 to 8 looks.
    check_null(&calibration::family_designs());
}

#[test]
fn a_large_effect_stops_a_sequential_design_early() {
    // An effect of 1.5 per-cell sd with 2 cells at ρ = 0.5 is 1.73 per-seed sd. The first two
    // looks spend almost nothing (α 3e-8 and 9e-5); at look 3 (15 seeds, α 0.0013, Holm over
    // 3: critical t ≈ 4.6) the noncentral t has ncp 6.7, at look 4 (20 seeds, α 0.0042,
    // critical t ≈ 3.9) ncp 7.7, sd ≈ 1.2: nearly every study stops by then. Measured with 200
    // studies: all decided, all stopped before 40 seeds; failing needs the rates under 0.99 and
    // 0.9, many SE away.
    for d in calibration::early_stop_designs() {
        let r = calibration::simulate(&d, REPS, SEED);
        assert!(r.rate > 0.99, "{d:?}: {}", r.rate);
        assert!(r.stopped_early as f64 / REPS as f64 > 0.9, "{d:?}: {} stopped early", r.stopped_early);
    }
}

#[test]
fn a_known_effect_is_detected_at_the_computed_power() {
    // The power the noncentral t predicts for the per-seed sd of each design's model; the
    // detection rate must lie within 4 SE of it (P(|Z| > 4) ≈ 6e-5 for each of 5 designs).
    for (d, predicted) in calibration::power_designs() {
        let r = calibration::simulate(&d, REPS, SEED);
        assert!((r.rate - predicted).abs() <= 4.0 * se(predicted), "{d:?}: detected {:.4}, predicted {predicted:.4}", r.rate);
    }
}
