//! Route-constrained optimisation (RCO; Jin et al., ICCV 2019): the student is distilled in
//! stages from a sequence of the teacher's own training checkpoints ("anchors"), easiest
//! (earliest) first, always ending at the final teacher; each stage starts from the previous
//! stage's student.
//!
//! This module only schedules: [`equal_interval_anchors`] picks the anchors by the
//! equal-epoch-interval strategy (EEIS) and [`stage_epochs`] splits the student's epoch budget
//! over the stages. Checkpoints are indexed 0..n in training order (index e holds the teacher
//! after epoch e + 1 when one is saved per epoch). The greedy-search strategy (GSS) needs the
//! student's outputs during training and is not here.

use super::error::{MethodError, Result};

/// EEIS anchors: `n_anchors` checkpoint indices at equal spacing, a_i = ⌊i·n/m⌋ − 1 for
/// i = 1..=m (n = `n_checkpoints`, m = `n_anchors`), strictly increasing and ending at the final
/// checkpoint n − 1. When m divides n this is every (n/m)-th checkpoint, as in KD_Lib's RCO.
///
/// Errors: no checkpoints, no anchors, or more anchors than checkpoints.
pub fn equal_interval_anchors(n_checkpoints: usize, n_anchors: usize) -> Result<Vec<usize>> {
    const OP: &str = "equal_interval_anchors";
    if n_checkpoints == 0 {
        return Err(MethodError::TooFew { op: OP, what: "checkpoints", needed: 1, got: 0 });
    }
    if n_anchors == 0 {
        return Err(MethodError::TooFew { op: OP, what: "anchors", needed: 1, got: 0 });
    }
    if n_anchors > n_checkpoints {
        // Strictly increasing anchors need a distinct checkpoint each.
        return Err(MethodError::TooFew { op: OP, what: "checkpoints (one per anchor)", needed: n_anchors, got: n_checkpoints });
    }
    // ⌊i·n/m⌋ rises by ⌊n/m⌋ ≥ 1 or more per step, so the anchors strictly increase, the first
    // is ⌊n/m⌋ − 1 ≥ 0 and the last is n − 1. u128 keeps i·n from overflowing.
    Ok((1..=n_anchors).map(|i| ((i as u128 * n_checkpoints as u128) / n_anchors as u128) as usize - 1).collect())
}

/// Student epochs per stage: ⌊total/m⌋ each, the remainder added to the last (final-teacher)
/// stage, so the stages sum to `total_epochs` and each has at least one epoch.
///
/// Errors: no anchors, or fewer epochs than stages.
pub fn stage_epochs(total_epochs: usize, n_anchors: usize) -> Result<Vec<usize>> {
    const OP: &str = "stage_epochs";
    if n_anchors == 0 {
        return Err(MethodError::TooFew { op: OP, what: "anchors", needed: 1, got: 0 });
    }
    if total_epochs < n_anchors {
        return Err(MethodError::TooFew { op: OP, what: "epochs (one per stage)", needed: n_anchors, got: total_epochs });
    }
    let mut epochs = vec![total_epochs / n_anchors; n_anchors];
    epochs[n_anchors - 1] += total_epochs % n_anchors;
    Ok(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_on_known_cases() {
        assert_eq!(equal_interval_anchors(60, 4).unwrap(), vec![14, 29, 44, 59]);
        assert_eq!(equal_interval_anchors(10, 3).unwrap(), vec![2, 5, 9]);
        assert_eq!(equal_interval_anchors(5, 5).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(equal_interval_anchors(7, 1).unwrap(), vec![6]);
    }

    #[test]
    fn anchors_increase_strictly_and_end_at_the_final_checkpoint() {
        for n in 1..=80 {
            for m in 1..=n {
                let a = equal_interval_anchors(n, m).unwrap();
                assert_eq!(a.len(), m, "n = {n}, m = {m}");
                assert_eq!(*a.last().unwrap(), n - 1, "n = {n}, m = {m}");
                assert!(a.windows(2).all(|w| w[0] < w[1]), "n = {n}, m = {m}: {a:?}");
                // Gaps differ by at most one checkpoint (equal spacing up to rounding).
                let gaps: Vec<usize> = std::iter::once(a[0] + 1).chain(a.windows(2).map(|w| w[1] - w[0])).collect();
                assert!(gaps.iter().max().unwrap() - gaps.iter().min().unwrap() <= 1, "n = {n}, m = {m}: {gaps:?}");
            }
        }
        assert_eq!(equal_interval_anchors(usize::MAX, 3).unwrap().last(), Some(&(usize::MAX - 1)));
    }

    #[test]
    fn stage_epochs_preserve_the_total() {
        assert_eq!(stage_epochs(10, 3).unwrap(), vec![3, 3, 4]);
        assert_eq!(stage_epochs(12, 4).unwrap(), vec![3, 3, 3, 3]);
        for total in 1..=50 {
            for m in 1..=total {
                let e = stage_epochs(total, m).unwrap();
                assert_eq!(e.len(), m);
                assert_eq!(e.iter().sum::<usize>(), total);
                assert!(e.iter().all(|&s| s >= 1));
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(equal_interval_anchors(0, 1), Err(MethodError::TooFew { what: "checkpoints", .. })));
        assert!(matches!(equal_interval_anchors(5, 0), Err(MethodError::TooFew { what: "anchors", .. })));
        assert!(matches!(equal_interval_anchors(3, 4), Err(MethodError::TooFew { needed: 4, got: 3, .. })));
        assert!(matches!(stage_epochs(10, 0), Err(MethodError::TooFew { what: "anchors", .. })));
        assert!(matches!(stage_epochs(2, 3), Err(MethodError::TooFew { needed: 3, got: 2, .. })));
    }
}
