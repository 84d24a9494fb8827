//! MetaDistil (Zhou, Xu & McAuley, ACL 2022), "BERT Learns to Teach": the teacher is updated
//! from the quiz loss of a *pilot* student, one plain SGD step ahead of the real one.
//!
//! With the pilot step θ_S′ = θ_S − η′·∇_{θ_S} L_KD(θ_S, θ_T) and g_q = ∇L_quiz(θ_S′), the
//! teacher's hypergradient is dL_quiz/dθ_T = −η′·[∂²L_KD/∂θ_T∂θ_S]·g_q. Without second-order
//! autodiff, [`finite_difference_hypergradient`] takes the mixed Hessian–vector product by a
//! central difference of teacher gradients along g_q (as DARTS does):
//!
//! dL_quiz/dθ_T ≈ −η′·[∇_{θ_T} L_KD(θ_S + ε·g_q, θ_T) − ∇_{θ_T} L_KD(θ_S − ε·g_q, θ_T)] / (2ε).
//!
//! The error is O(ε²·‖g_q‖³) times L_KD's third derivatives (zero for quadratics). ε is in units
//! of θ_S per unit of g_q; DARTS takes ε = 0.01/‖g_q‖.
//!
//! [`carve_quiz`] holds a quiz set out of the training indices (the released CV code uses the
//! last samples of the training split; here a seeded, optionally stratified draw).

use ndarray::{Array1, ArrayView1};

use super::error::{ensure_parameter, MethodError, Result};
use crate::data;

/// The finite-difference hypergradient −η′·[∇_T L(θ_S + εg_q) − ∇_T L(θ_S − εg_q)]/(2ε) of the
/// quiz loss in the teacher's parameters (length of θ_T; units of L_quiz per unit θ_T).
///
/// `grad_teacher(θ_S)` returns ∇_{θ_T} L_KD(θ_S, θ_T) at the current teacher (θ_T is fixed
/// inside the closure); it is called twice. `pilot_lr` is η′ (the pilot step's learning rate),
/// `eps` > 0 the difference step.
///
/// Errors: θ_S and g_q of different lengths, non-finite inputs, a non-finite η′, ε ≤ 0, the two
/// teacher gradients of different lengths, or any error of the closure.
pub fn finite_difference_hypergradient<F>(mut grad_teacher: F, theta_s: ArrayView1<f64>, g_q: ArrayView1<f64>, pilot_lr: f64, eps: f64) -> Result<Array1<f64>>
where
    F: FnMut(ArrayView1<f64>) -> Result<Array1<f64>>,
{
    const OP: &str = "finite_difference_hypergradient";
    if g_q.len() != theta_s.len() {
        return Err(MethodError::Shape { op: OP, what: "g_q", expected: format!("length {} (the length of theta_s)", theta_s.len()), got: vec![g_q.len()] });
    }
    if theta_s.iter().chain(g_q.iter()).any(|v| !v.is_finite()) {
        return Err(MethodError::NonFinite { op: OP, what: "theta_s or g_q" });
    }
    ensure_parameter(pilot_lr.is_finite(), OP, "pilot_lr", pilot_lr, "finite")?;
    ensure_parameter(eps.is_finite() && eps > 0.0, OP, "eps", eps, "finite and > 0")?;
    let plus = grad_teacher((&theta_s + &(&g_q * eps)).view())?;
    let minus = grad_teacher((&theta_s - &(&g_q * eps)).view())?;
    if plus.len() != minus.len() {
        return Err(MethodError::Shape {
            op: OP,
            what: "teacher gradient at θ_S − εg_q",
            expected: format!("length {} (as at θ_S + εg_q)", plus.len()),
            got: vec![minus.len()],
        });
    }
    Ok((plus - minus) * (-pilot_lr / (2.0 * eps)))
}

/// Splits 0..n into (train, quiz) index lists, both sorted, disjoint and covering 0..n, with
/// about `fraction`·n quiz indices, drawn with `seed` through `seed::rng`.
///
/// Without `stratify` the quiz set has round(fraction·n) indices, clamped to 1..=n − 1. With
/// labels (`stratify`, length n) each class gives round(fraction·n_c) of its indices, clamped
/// to 1..=n_c − 1, and a class of one example stays in training (`data::stratified_split`).
///
/// Errors: n < 2, `fraction` outside (0, 1), labels of the wrong length, or a stratified split
/// with no quiz index (every class has one example).
pub fn carve_quiz(n: usize, fraction: f64, stratify: Option<&[usize]>, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    const OP: &str = "carve_quiz";
    if n < 2 {
        return Err(MethodError::TooFew { op: OP, what: "examples (one to train, one to quiz)", needed: 2, got: n });
    }
    ensure_parameter(fraction.is_finite() && fraction > 0.0 && fraction < 1.0, OP, "fraction", fraction, "in (0, 1)")?;
    let (mut train, mut quiz) = match stratify {
        Some(y) => {
            if y.len() != n {
                return Err(MethodError::Shape { op: OP, what: "stratify", expected: format!("{n} labels (one per example)"), got: vec![y.len()] });
            }
            data::stratified_split(y, fraction, seed)
        }
        None => data::validation_split(n, fraction, seed),
    };
    if quiz.is_empty() {
        return Err(MethodError::TooFew { op: OP, what: "examples in some class (each class has one)", needed: 2, got: 1 });
    }
    train.sort_unstable();
    quiz.sort_unstable();
    Ok((train, quiz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::testkit::normal_matrix;
    use ndarray::Array2;

    /// L_KD(θ_S, θ_T) = ½‖θ_S − Aθ_T‖²: ∇_T L = −Aᵀ(θ_S − Aθ_T), ∂²L/∂θ_T∂θ_S = −Aᵀ, so the
    /// exact hypergradient is −η′·(−Aᵀ)·g_q = η′·Aᵀg_q. The central difference of a function
    /// linear in θ_S is exact, so only rounding (~1e-15 relative) separates them, for any ε.
    #[test]
    fn the_hypergradient_of_a_quadratic_is_eta_a_transpose_g() {
        let a: Array2<f64> = normal_matrix(3, 4, 90); // θ_S ∈ ℝ³, θ_T ∈ ℝ⁴
        let theta_t = normal_matrix(4, 1, 91).column(0).to_owned();
        let theta_s = normal_matrix(3, 1, 92).column(0).to_owned();
        let g_q = normal_matrix(3, 1, 93).column(0).to_owned();
        let grad_teacher = |s: ArrayView1<f64>| Ok(-a.t().dot(&(&s - &a.dot(&theta_t))));
        let eta = 0.05;
        let exact = a.t().dot(&g_q) * eta;
        for eps in [1e-4, 1e-2, 1.0] {
            let fd = finite_difference_hypergradient(grad_teacher, theta_s.view(), g_q.view(), eta, eps).unwrap();
            assert!(fd.iter().zip(&exact).all(|(x, y)| (x - y).abs() < 1e-12), "eps = {eps}: {fd} vs {exact}");
        }
    }

    /// End to end: the hypergradient equals the derivative in θ_T of the quiz loss after the
    /// pilot step, L_quiz(θ_S − η′∇_S L_KD(θ_S, θ_T)) with L_quiz(θ) = ½‖θ − c‖², taken by
    /// central differences in θ_T. Both sides are exact for quadratics up to rounding and the
    /// difference step (h = 1e-5 on a quadratic: exact up to ~1e-11).
    #[test]
    fn the_hypergradient_is_the_derivative_of_the_pilot_quiz_loss() {
        let a = normal_matrix(3, 4, 94);
        let theta_t = normal_matrix(4, 1, 95).column(0).to_owned();
        let theta_s = normal_matrix(3, 1, 96).column(0).to_owned();
        let c = normal_matrix(3, 1, 97).column(0).to_owned();
        let eta = 0.1;
        let pilot = |t: &Array1<f64>| &theta_s - &((&theta_s - &a.dot(t)) * eta);
        let quiz = |t: &Array1<f64>| 0.5 * (&pilot(t) - &c).mapv(|v| v * v).sum();
        let g_q = &pilot(&theta_t) - &c;
        let grad_teacher = |s: ArrayView1<f64>| Ok(-a.t().dot(&(&s - &a.dot(&theta_t))));
        let hyper = finite_difference_hypergradient(grad_teacher, theta_s.view(), g_q.view(), eta, 1e-3).unwrap();
        let h = 1e-5;
        for j in 0..4 {
            let (mut plus, mut minus) = (theta_t.clone(), theta_t.clone());
            plus[j] += h;
            minus[j] -= h;
            let numeric = (quiz(&plus) - quiz(&minus)) / (2.0 * h);
            assert!((numeric - hyper[j]).abs() < 1e-8, "θ_T[{j}]: {numeric} vs {}", hyper[j]);
        }
    }

    /// A non-quadratic L_KD = Σ log cosh(θ_S − Aθ_T): the exact hypergradient is
    /// η′·Aᵀ(sech²(r) ⊙ g_q), r = θ_S − Aθ_T. The central difference errs by ε²·‖g‖³·|f'''|/6,
    /// ~1e-8·O(10) at ε = 1e-4, and the error shrinks ~100× when ε shrinks 10×.
    #[test]
    fn the_hypergradient_error_is_second_order_in_eps() {
        let a = normal_matrix(3, 2, 98);
        let theta_t = normal_matrix(2, 1, 99).column(0).to_owned();
        let theta_s = normal_matrix(3, 1, 100).column(0).to_owned();
        let g_q = normal_matrix(3, 1, 101).column(0).to_owned();
        let grad_teacher = |s: ArrayView1<f64>| Ok(-a.t().dot(&(&s - &a.dot(&theta_t)).mapv(f64::tanh)));
        let eta = 0.05;
        let r = &theta_s - &a.dot(&theta_t);
        let exact = a.t().dot(&(&r.mapv(|v| 1.0 / v.cosh().powi(2)) * &g_q)) * eta;
        let err = |eps: f64| {
            let fd = finite_difference_hypergradient(grad_teacher, theta_s.view(), g_q.view(), eta, eps).unwrap();
            fd.iter().zip(&exact).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        };
        assert!(err(1e-4) < 1e-7, "{}", err(1e-4));
        let (coarse, fine) = (err(1e-1), err(1e-2));
        assert!(fine < coarse / 50.0, "second order: {coarse} then {fine}");
    }

    #[test]
    fn hypergradient_bad_inputs_are_errors() {
        let ok = |s: ArrayView1<f64>| Ok(s.to_owned());
        let v = Array1::from(vec![1.0, 2.0]);
        let short = Array1::from(vec![1.0]);
        assert!(matches!(finite_difference_hypergradient(ok, v.view(), short.view(), 0.1, 1e-3), Err(MethodError::Shape { .. })));
        assert!(matches!(finite_difference_hypergradient(ok, v.view(), v.view(), 0.1, 0.0), Err(MethodError::InvalidParameter { name: "eps", .. })));
        assert!(matches!(finite_difference_hypergradient(ok, v.view(), v.view(), f64::NAN, 1e-3), Err(MethodError::InvalidParameter { name: "pilot_lr", .. })));
        let nan = Array1::from(vec![1.0, f64::NAN]);
        assert!(matches!(finite_difference_hypergradient(ok, nan.view(), v.view(), 0.1, 1e-3), Err(MethodError::NonFinite { .. })));
        let mut calls = 0;
        let ragged = |s: ArrayView1<f64>| {
            calls += 1;
            Ok(if calls == 1 { s.to_owned() } else { Array1::zeros(5) })
        };
        assert!(matches!(finite_difference_hypergradient(ragged, v.view(), v.view(), 0.1, 1e-3), Err(MethodError::Shape { .. })));
        let failing = |_: ArrayView1<f64>| -> Result<Array1<f64>> { Err(MethodError::NonFinite { op: "closure", what: "loss" }) };
        assert!(matches!(finite_difference_hypergradient(failing, v.view(), v.view(), 0.1, 1e-3), Err(MethodError::NonFinite { op: "closure", .. })));
    }

    #[test]
    fn quiz_split_is_disjoint_sized_and_seeded() {
        for (n, fraction) in [(100, 0.1), (37, 0.25), (2, 0.5), (10, 0.01), (10, 0.99)] {
            let (train, quiz) = carve_quiz(n, fraction, None, 7).unwrap();
            let expected = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
            assert_eq!(quiz.len(), expected, "n = {n}, fraction = {fraction}");
            let mut all: Vec<usize> = train.iter().chain(&quiz).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "disjoint and covering");
            assert!(train.windows(2).all(|w| w[0] < w[1]) && quiz.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(carve_quiz(n, fraction, None, 7).unwrap(), (train, quiz), "same seed, same split");
        }
        assert_ne!(carve_quiz(100, 0.2, None, 1).unwrap().1, carve_quiz(100, 0.2, None, 2).unwrap().1);
    }

    #[test]
    fn stratified_quiz_keeps_class_proportions() {
        let y: Vec<usize> = (0..90)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 80 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let (train, quiz) = carve_quiz(90, 0.2, Some(&y), 3).unwrap();
        let count = |idx: &[usize], c: usize| idx.iter().filter(|&&i| y[i] == c).count();
        assert_eq!((count(&quiz, 0), count(&quiz, 1), count(&quiz, 2)), (12, 4, 2));
        assert_eq!(train.len() + quiz.len(), 90);
        assert!(quiz.iter().all(|i| train.binary_search(i).is_err()));
        assert_eq!(carve_quiz(90, 0.2, Some(&y), 3).unwrap().1, quiz);
    }

    #[test]
    fn quiz_bad_inputs_are_errors() {
        assert!(matches!(carve_quiz(1, 0.5, None, 0), Err(MethodError::TooFew { .. })));
        assert!(matches!(carve_quiz(10, 0.0, None, 0), Err(MethodError::InvalidParameter { name: "fraction", .. })));
        assert!(matches!(carve_quiz(10, 1.0, None, 0), Err(MethodError::InvalidParameter { name: "fraction", .. })));
        assert!(matches!(carve_quiz(10, f64::NAN, None, 0), Err(MethodError::InvalidParameter { .. })));
        assert!(matches!(carve_quiz(3, 0.5, Some(&[0, 1]), 0), Err(MethodError::Shape { .. })));
        assert!(matches!(carve_quiz(3, 0.5, Some(&[0, 1, 2]), 0), Err(MethodError::TooFew { .. })));
    }
}
