//! Tang et al. (2020), "Understanding and Improving Knowledge Distillation": the three levels
//! of teacher knowledge, isolated by partial teachers, and KD's per-example gradient rescaling.
//!
//! **Partial teachers.** Each function returns n × K target rows (probability vectors) for the
//! student's soft cross-entropy; the full teacher p_t carries all three levels:
//!
//! | function | knowledge kept | name in the note |
//! |---|---|---|
//! | [`label_smoothing_targets`] | universe (a uniform prior) | LS |
//! | [`instance_only_targets`] | universe + instance (p_t,y per example) | KD-pt |
//! | [`class_averaged_targets`] | universe + domain (class relations) | KD-sim (class-averaged variant) |
//!
//! [`matched_smoothing`] gives the LS ε whose non-target mass equals the teacher's mean, so LS
//! and KD put the same total weight off the label.
//!
//! **Gradient rescaling.** At T = 1 with weight λ on the teacher term,
//! L = (1 − λ)·CE(y, p_s) + λ·CE(p_t, p_s) has logit gradient ([`kd_logit_gradient`])
//! ∂L/∂z_y = p_s,y − 1 + λ(1 − p_t,y) and ∂L/∂z_j = p_s,j − λ·p_t,j for j ≠ y. Relative to the
//! label gradient p_s,y − 1, the true logit's gradient is scaled by
//! w = 1 − λ(1 − p_t,y)/(1 − p_s,y) ([`rescaling_weight`]): examples the teacher finds hard
//! (low p_t,y) are down-weighted.
//!
//! All inputs are probabilities (not logits) as f64 ndarray matrices, n × K, rows summing to 1.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::error::{check_labels, check_probabilities, ensure_parameter, MethodError, Result};

/// Label-smoothing targets (1 − ε)·onehot(y) + ε/K, n × k (probabilities).
///
/// ε may go up to K/(K − 1), where the target is uniform-minus-label; the range must reach past
/// 1 because [`matched_smoothing`] can return values above 1 for a teacher worse than uniform.
pub fn label_smoothing_targets(y: &[usize], k: usize, eps: f64) -> Result<Array2<f64>> {
    const OP: &str = "label_smoothing_targets";
    check_classes(OP, k)?;
    check_labels(OP, y, k)?;
    let max_eps = k as f64 / (k as f64 - 1.0);
    ensure_parameter(eps.is_finite() && (0.0..=max_eps).contains(&eps), OP, "eps", eps, "in [0, K/(K − 1)]")?;
    let mut out = Array2::from_elem((y.len(), k), eps / k as f64);
    for (i, &c) in y.iter().enumerate() {
        out[[i, c]] += 1.0 - eps;
    }
    Ok(out)
}

/// "KD-pt" targets: each row keeps the teacher's p_t,y and spreads 1 − p_t,y uniformly over the
/// K − 1 other classes (instance-level difficulty without class relations), n × K.
pub fn instance_only_targets(p_t: ArrayView2<f64>, y: &[usize]) -> Result<Array2<f64>> {
    const OP: &str = "instance_only_targets";
    let k = check_teacher(OP, p_t, y)?;
    let mut out = Array2::zeros(p_t.raw_dim());
    for (i, &c) in y.iter().enumerate() {
        let keep = p_t[[i, c]];
        out.row_mut(i).fill((1.0 - keep) / (k as f64 - 1.0));
        out[[i, c]] = keep;
    }
    Ok(out)
}

/// "KD-sim" targets, class-averaged variant: each row is the mean teacher distribution over the
/// examples of its label's class (class relations without instance-level difficulty), n × k.
pub fn class_averaged_targets(p_t: ArrayView2<f64>, y: &[usize], k: usize) -> Result<Array2<f64>> {
    const OP: &str = "class_averaged_targets";
    if p_t.ncols() != k {
        return Err(MethodError::Shape { op: OP, what: "p_t", expected: format!("n × {k} (one column per class)"), got: p_t.shape().to_vec() });
    }
    check_teacher(OP, p_t, y)?;
    let mut sums = Array2::<f64>::zeros((k, k));
    let mut counts = vec![0usize; k];
    for (i, &c) in y.iter().enumerate() {
        sums.row_mut(c).scaled_add(1.0, &p_t.row(i));
        counts[c] += 1;
    }
    let mut out = Array2::zeros((y.len(), k));
    for (i, &c) in y.iter().enumerate() {
        // counts[c] ≥ 1: row i itself has label c.
        out.row_mut(i).assign(&(&sums.row(c) / counts[c] as f64));
    }
    Ok(out)
}

/// The label-smoothing ε whose non-target mass ε(K − 1)/K equals the teacher's mean non-target
/// mass (1/n)Σ_i (1 − p_t,y_i): ε = K/(K − 1) · mean(1 − p_t,y). Dimensionless, in [0, K/(K − 1)].
pub fn matched_smoothing(p_t: ArrayView2<f64>, y: &[usize]) -> Result<f64> {
    const OP: &str = "matched_smoothing";
    let k = check_teacher(OP, p_t, y)?;
    if y.is_empty() {
        return Err(MethodError::TooFew { op: OP, what: "examples", needed: 1, got: 0 });
    }
    let off_label: f64 = y.iter().enumerate().map(|(i, &c)| 1.0 - p_t[[i, c]]).sum::<f64>() / y.len() as f64;
    Ok(off_label * k as f64 / (k as f64 - 1.0))
}

/// Tang's rescaling weight w = 1 − λ(1 − p_t,y)/(1 − p_s,y) of the true logit's gradient
/// relative to the label-only gradient (dimensionless). Needs p_s,y < 1 (at p_s,y = 1 the label
/// gradient is 0 and the ratio is undefined).
pub fn rescaling_weight(p_t_y: f64, p_s_y: f64, lambda: f64) -> Result<f64> {
    const OP: &str = "rescaling_weight";
    ensure_parameter(p_t_y.is_finite() && (0.0..=1.0).contains(&p_t_y), OP, "p_t_y", p_t_y, "a probability in [0, 1]")?;
    ensure_parameter(p_s_y.is_finite() && (0.0..1.0).contains(&p_s_y), OP, "p_s_y", p_s_y, "a probability in [0, 1)")?;
    ensure_parameter(lambda.is_finite() && (0.0..=1.0).contains(&lambda), OP, "lambda", lambda, "in [0, 1]")?;
    Ok(1.0 - lambda * (1.0 - p_t_y) / (1.0 - p_s_y))
}

/// [`rescaling_weight`] for every example: teacher and student probabilities n × K, labels y.
pub fn rescaling_weights(p_t: ArrayView2<f64>, p_s: ArrayView2<f64>, y: &[usize], lambda: f64) -> Result<Array1<f64>> {
    const OP: &str = "rescaling_weights";
    check_teacher(OP, p_t, y)?;
    if p_s.dim() != p_t.dim() {
        return Err(MethodError::Shape { op: OP, what: "p_s", expected: format!("{:?} (the shape of p_t)", p_t.shape()), got: p_s.shape().to_vec() });
    }
    check_probabilities(OP, p_s)?;
    y.iter().enumerate().map(|(i, &c)| rescaling_weight(p_t[[i, c]], p_s[[i, c]], lambda)).collect()
}

/// The logit gradient of L = (1 − λ)·CE(y, p_s) + λ·CE(p_t, p_s) at T = 1 for one example:
/// p_s − λ·p_t − (1 − λ)·onehot(y), i.e. p_s,y − 1 + λ(1 − p_t,y) on the label and
/// p_s,j − λ·p_t,j elsewhere (length K, per unit logit).
pub fn kd_logit_gradient(p_s: ArrayView1<f64>, p_t: ArrayView1<f64>, y: usize, lambda: f64) -> Result<Array1<f64>> {
    const OP: &str = "kd_logit_gradient";
    let k = p_s.len();
    if p_t.len() != k {
        return Err(MethodError::Shape { op: OP, what: "p_t", expected: format!("length {k} (the length of p_s)"), got: vec![p_t.len()] });
    }
    check_labels(OP, &[y], k)?;
    ensure_parameter(lambda.is_finite() && (0.0..=1.0).contains(&lambda), OP, "lambda", lambda, "in [0, 1]")?;
    let mut grad = &p_s - &(&p_t * lambda);
    grad[y] -= 1.0 - lambda;
    Ok(grad)
}

/// K ≥ 2: with one class there is nothing to smooth or spread.
fn check_classes(op: &'static str, k: usize) -> Result<()> {
    if k < 2 {
        return Err(MethodError::TooFew { op, what: "classes", needed: 2, got: k });
    }
    Ok(())
}

/// Checks teacher probabilities against labels; returns K.
fn check_teacher(op: &'static str, p_t: ArrayView2<f64>, y: &[usize]) -> Result<usize> {
    let k = p_t.ncols();
    check_classes(op, k)?;
    if p_t.nrows() != y.len() {
        return Err(MethodError::Shape { op, what: "p_t", expected: format!("{} rows (one per label)", y.len()), got: p_t.shape().to_vec() });
    }
    check_labels(op, y, k)?;
    check_probabilities(op, p_t)?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::testkit::{assert_close, normal_matrix, tensor};
    use crate::seed;
    use candle_core::{Var, D};
    use ndarray::{array, Axis};
    use rand::Rng;

    /// Row-wise softmax of a logit matrix.
    fn softmax_rows(z: &Array2<f64>) -> Array2<f64> {
        let mut p = z.clone();
        for mut row in p.rows_mut() {
            let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let s = row.sum();
            row /= s;
        }
        p
    }

    /// A seeded teacher: n × k probabilities (logits of scale 2) and labels.
    fn teacher(n: usize, k: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let p = softmax_rows(&(normal_matrix(n, k, seed) * 2.0));
        let mut rng = seed::rng(seed + 1);
        let y = (0..n).map(|_| rng.gen_range(0..k)).collect();
        (p, y)
    }

    fn assert_distributions(p: &Array2<f64>, what: &str) {
        for row in p.rows() {
            assert!(row.iter().all(|&v| v >= 0.0), "{what}: negative entry in {row}");
            // Sums of ≤ 10 terms in [0, 1]: rounding below 1e-15.
            assert!((row.sum() - 1.0).abs() < 1e-12, "{what}: row sums to {}", row.sum());
        }
    }

    #[test]
    fn partial_teachers_are_distributions() {
        let (p, y) = teacher(40, 6, 1);
        assert_distributions(&label_smoothing_targets(&y, 6, 0.1).unwrap(), "LS");
        assert_distributions(&label_smoothing_targets(&y, 6, 1.2).unwrap(), "LS with ε = K/(K − 1)");
        assert_distributions(&instance_only_targets(p.view(), &y).unwrap(), "instance-only");
        assert_distributions(&class_averaged_targets(p.view(), &y, 6).unwrap(), "class-averaged");
    }

    #[test]
    fn label_smoothing_puts_one_minus_eps_plus_eps_over_k_on_the_label() {
        let t = label_smoothing_targets(&[2, 0], 4, 0.2).unwrap();
        // 0.8 + 0.05 rounds to 0.8500000000000001: compare to one ulp-scale tolerance.
        assert_close(&t, &array![[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]], 1e-15, "LS targets");
    }

    #[test]
    fn instance_only_keeps_the_label_probability_and_flattens_the_rest() {
        let (p, y) = teacher(30, 5, 2);
        let t = instance_only_targets(p.view(), &y).unwrap();
        for (i, &c) in y.iter().enumerate() {
            assert_eq!(t[[i, c]], p[[i, c]]);
            let others: Vec<f64> = (0..5).filter(|&j| j != c).map(|j| t[[i, j]]).collect();
            assert!(others.iter().all(|&v| v == others[0]), "row {i}: {others:?}");
        }
    }

    #[test]
    fn class_averaged_targets_are_the_class_mean_and_constant_within_a_class() {
        let (p, y) = teacher(50, 4, 3);
        let t = class_averaged_targets(p.view(), &y, 4).unwrap();
        for c in 0..4 {
            let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
            assert!(!rows.is_empty(), "seed 3 draws every class");
            let mean = p.select(Axis(0), &rows).mean_axis(Axis(0)).unwrap();
            for &i in &rows {
                assert_eq!(t.row(i), t.row(rows[0]), "class {c} rows differ");
                // Same mean computed in another order: rounding ~1e-16.
                assert!(t.row(i).iter().zip(&mean).all(|(a, b)| (a - b).abs() < 1e-14));
            }
        }
    }

    #[test]
    fn matched_smoothing_gives_the_teachers_mean_non_target_mass() {
        let (p, y) = teacher(60, 5, 4);
        let eps = matched_smoothing(p.view(), &y).unwrap();
        let ls = label_smoothing_targets(&y, 5, eps).unwrap();
        let off = |q: &Array2<f64>| y.iter().enumerate().map(|(i, &c)| 1.0 - q[[i, c]]).sum::<f64>() / y.len() as f64;
        assert!((off(&ls) - off(&p)).abs() < 1e-12, "{} vs {}", off(&ls), off(&p));
    }

    /// f64 loss (1 − λ)·CE(y, softmax z) + λ·CE(p_t, softmax z) of one example.
    fn kd_loss(z: &[f64], p_t: &[f64], y: usize, lambda: f64) -> f64 {
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let log_norm = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        let log_p: Vec<f64> = z.iter().map(|v| v - log_norm).collect();
        -(1.0 - lambda) * log_p[y] - lambda * p_t.iter().zip(&log_p).map(|(t, l)| t * l).sum::<f64>()
    }

    /// The closed form of §3.2 against central differences of the f64 loss and against candle's
    /// backward pass of the same loss, over 20 seeded examples and several λ. Central
    /// differences with h = 1e-5 have truncation error h²·|L'''|/6 ≈ 1e-11 (|L'''| ≤ 1 for
    /// softmax CE) and rounding ≈ 1e-16/h ≈ 1e-11, so 1e-8 is a safe bound; candle computes the
    /// same f64 expression in another order (≈ 1e-15).
    #[test]
    fn kd_gradient_identity_matches_finite_differences_and_candle() {
        let k = 5;
        let z_all = normal_matrix(20, k, 5) * 2.0;
        let (p_t_all, y_all) = teacher(20, k, 6);
        for (i, lambda) in (0..20).zip([0.0, 0.3, 0.7, 1.0].into_iter().cycle()) {
            let z = z_all.row(i).to_vec();
            let p_t = p_t_all.row(i).to_vec();
            let y = y_all[i];
            let p_s = softmax_rows(&z_all.row(i).insert_axis(Axis(0)).to_owned()).row(0).to_owned();
            let closed = kd_logit_gradient(p_s.view(), p_t_all.row(i), y, lambda).unwrap();

            let h = 1e-5;
            for j in 0..k {
                let (mut plus, mut minus) = (z.clone(), z.clone());
                plus[j] += h;
                minus[j] -= h;
                let numeric = (kd_loss(&plus, &p_t, y, lambda) - kd_loss(&minus, &p_t, y, lambda)) / (2.0 * h);
                assert!((numeric - closed[j]).abs() < 1e-8, "example {i}, class {j}: {numeric} vs {}", closed[j]);
            }

            let z_var = Var::from_tensor(&tensor(&z_all.row(i).insert_axis(Axis(0)).to_owned())).unwrap();
            let log_q = candle_nn::ops::log_softmax(z_var.as_tensor(), D::Minus1).unwrap();
            let onehot = label_smoothing_targets(&[y], k, 0.0).unwrap();
            let target = &onehot * (1.0 - lambda) + &p_t_all.row(i).insert_axis(Axis(0)) * lambda;
            let loss = (tensor(&target) * log_q).unwrap().sum_all().unwrap().neg().unwrap();
            let grads = loss.backward().unwrap();
            let g: Vec<f64> = grads.get(&z_var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            for j in 0..k {
                assert!((g[j] - closed[j]).abs() < 1e-12, "candle, example {i}, class {j}: {} vs {}", g[j], closed[j]);
            }

            // The true logit's gradient over the label-only gradient p_s,y − 1 is Tang's weight.
            let w = rescaling_weight(p_t[y], p_s[y], lambda).unwrap();
            assert!((closed[y] / (p_s[y] - 1.0) - w).abs() < 1e-12, "example {i}: ratio vs weight {w}");
        }
    }

    #[test]
    fn the_weight_is_one_without_a_teacher_and_falls_with_teacher_doubt() {
        assert_eq!(rescaling_weight(0.3, 0.5, 0.0).unwrap(), 1.0);
        assert_eq!(rescaling_weight(1.0, 0.5, 0.9).unwrap(), 1.0);
        assert!(rescaling_weight(0.2, 0.5, 0.5).unwrap() < rescaling_weight(0.8, 0.5, 0.5).unwrap());
        let (p_t, y) = teacher(10, 3, 7);
        let w = rescaling_weights(p_t.view(), p_t.view(), &y, 0.5).unwrap();
        // With p_s = p_t the weight is 1 − λ for every example.
        assert!(w.iter().all(|v| (v - 0.5).abs() < 1e-12), "{w}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(label_smoothing_targets(&[3], 3, 0.1), Err(MethodError::LabelOutOfRange { label: 3, .. })));
        assert!(matches!(label_smoothing_targets(&[0], 3, 1.6), Err(MethodError::InvalidParameter { name: "eps", .. })));
        assert!(matches!(label_smoothing_targets(&[0], 1, 0.1), Err(MethodError::TooFew { what: "classes", .. })));
        let p = array![[0.5, 0.5], [0.7, 0.4]];
        assert!(matches!(instance_only_targets(p.view(), &[0, 1]), Err(MethodError::NotProbabilities { row: 1, .. })));
        let p = array![[0.5, 0.5]];
        assert!(matches!(instance_only_targets(p.view(), &[0, 1]), Err(MethodError::Shape { .. })));
        assert!(matches!(class_averaged_targets(p.view(), &[0], 3), Err(MethodError::Shape { .. })));
        assert!(matches!(matched_smoothing(Array2::<f64>::zeros((0, 2)).view(), &[]), Err(MethodError::TooFew { .. })));
        assert!(matches!(rescaling_weight(0.5, 1.0, 0.5), Err(MethodError::InvalidParameter { name: "p_s_y", .. })));
        assert!(matches!(rescaling_weight(0.5, 0.5, f64::NAN), Err(MethodError::InvalidParameter { name: "lambda", .. })));
        assert!(matches!(kd_logit_gradient(array![0.5, 0.5].view(), array![1.0].view(), 0, 0.5), Err(MethodError::Shape { .. })));
    }
}
