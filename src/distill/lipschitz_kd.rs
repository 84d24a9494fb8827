//! LONDON (Shang et al., ICCV 2021), "Lipschitz Continuity Guided Knowledge Distillation":
//! match the spectral norms of student and teacher "transmitting matrices" between consecutive
//! stages.
//!
//! 1. [`transmitting_matrix`] TM_l between the features of stage l and stage l + 1:
//!    - feature maps, N × c × P (channels × spatial positions, both stages pooled to the same P;
//!      the released code average-pools F_l to F_{l+1}'s size): per sample,
//!      TM = F_l F_{l+1}ᵀ / P, giving N × c_l × c_{l+1} (the FSP matrix of Yim et al. 2017);
//!    - MLP layers, B × c (a batch of activations): the batch plays the positions' role and
//!      there is one TM per batch, TM = H_lᵀ H_{l+1} / B, giving c_l × c_{l+1}.
//! 2. [`top_singular_value`] σ_l = σ_max(TM_l) by power iteration on K = TM TMᵀ, either
//!    *detached* (no gradient at all, as in the released version that runs the iteration under
//!    `torch.no_grad()`; the repository also holds a version with that line commented out,
//!    differentiable through the unrolled iteration) or *differentiable*: σ = uᵀ TM v with the
//!    singular vectors u, v from a detached iteration, whose gradient in TM is the analytic u vᵀ.
//! 3. [`london_loss`] Σ_l MSE(σ_l^s, σ_l^t) / 2^{L−1−l} over the L stage pairs.
//!
//! **Not a Lipschitz constant.** For a linear stage F_{l+1} = W F_l, TM = C_l Wᵀ with C_l the
//! stage's feature second-moment matrix: σ(TM) = σ(W) only for whitened features (C_l = I).
//! `diagnostics::lipschitz::london_transmitting_matrix` reports the same quantity as a
//! diagnostic of a trained network; this module is the training loss.

use candle_core::{DType, Tensor};

use super::error::{ensure_parameter, shape_error, MethodError, Result};

/// Vector norms below this count as this value during power iteration, so a zero TM gives
/// σ = 0 (and zero gradient) instead of NaN.
pub const POWER_ITERATION_FLOOR: f64 = 1e-30;

/// The transmitting matrix between consecutive stages: TM = H_lᵀ H_{l+1} / B for two B × c
/// activation matrices (c_l × c_{l+1}, one per batch), or TM_n = F_l F_{l+1}ᵀ / P per sample for
/// two N × c × P feature maps (N × c_l × c_{l+1}). Units: products of the two stages' units.
pub fn transmitting_matrix(f_l: &Tensor, f_next: &Tensor) -> Result<Tensor> {
    const OP: &str = "transmitting_matrix";
    match (f_l.dims(), f_next.dims()) {
        (&[b, _], &[b2, _]) => {
            if b != b2 {
                return Err(shape_error(OP, "f_next", format!("{b} rows (the batch of f_l)"), f_next.dims()));
            }
            if b == 0 {
                return Err(MethodError::TooFew { op: OP, what: "rows", needed: 1, got: 0 });
            }
            Ok((f_l.t()?.matmul(f_next)? / b as f64)?) // (c_l, c_{l+1})
        }
        (&[n, _, p], &[n2, _, p2]) => {
            if (n, p) != (n2, p2) {
                return Err(shape_error(OP, "f_next", format!("{n} × c × {p} (same samples and positions as f_l)"), f_next.dims()));
            }
            if p == 0 {
                return Err(MethodError::TooFew { op: OP, what: "positions", needed: 1, got: 0 });
            }
            Ok((f_l.matmul(&f_next.transpose(1, 2)?)? / p as f64)?) // (N, c_l, c_{l+1})
        }
        (dims, _) if dims.len() != 2 && dims.len() != 3 => Err(shape_error(OP, "f_l", "B × c (activations) or N × c × P (feature maps)".into(), dims)),
        _ => Err(shape_error(OP, "f_next", format!("rank {} like f_l", f_l.rank()), f_next.dims())),
    }
}

/// σ_max of a transmitting matrix (c_l × c_{l+1} → a scalar tensor; N × c_l × c_{l+1} → a
/// length-N vector) after `iterations` power steps u ← Ku/‖Ku‖ on K = TM TMᵀ from the all-ones
/// start (the released ImageNet code's start, so no RNG is needed). The value is ‖TMᵀu‖ =
/// √(uᵀKu) in both modes (the released code reports √‖Ku‖ for the previous iterate u; both
/// converge to σ_max from below).
///
/// `differentiable = false` returns it detached: no gradient reaches TM, as in the released
/// version that runs the whole iteration under `torch.no_grad()`. `differentiable = true`
/// returns uᵀ TM v with v = TMᵀu/‖TMᵀu‖ and u, v held constant: the same value, with the
/// gradient u vᵀ in TM, which is the exact derivative of σ_max where it is a simple singular
/// value and u, v have converged.
///
/// Convergence goes as (σ₂/σ₁)^{2k}. The start is orthogonal to the top singular vector only on
/// a measure-zero set; for post-ReLU features TM ≥ 0 entrywise, the top singular vectors can be
/// taken non-negative (Perron–Frobenius) and the all-ones start never is.
pub fn top_singular_value(tm: &Tensor, iterations: usize, differentiable: bool) -> Result<Tensor> {
    const OP: &str = "top_singular_value";
    ensure_parameter(iterations >= 1, OP, "iterations", iterations as f64, "at least 1")?;
    let (batched, single) = match tm.dims() {
        &[r, c] => (tm.reshape((1, r, c))?, true),
        &[_, _, _] => (tm.clone(), false),
        other => return Err(shape_error(OP, "tm", "c_l × c_{l+1} or N × c_l × c_{l+1}".into(), other)),
    };
    let (n, r, _) = batched.dims3()?;
    if r == 0 || batched.dim(2)? == 0 {
        return Err(shape_error(OP, "tm", "a matrix with at least one row and column".into(), tm.dims()));
    }
    let fixed = batched.detach();
    let k = fixed.matmul(&fixed.transpose(1, 2)?)?; // (N, r, r)
    let mut u = unit_columns(&Tensor::ones((n, r, 1), tm.dtype(), tm.device())?)?; // (N, r, 1)
    for _ in 0..iterations {
        u = unit_columns(&k.matmul(&u)?)?;
    }
    let tu = fixed.transpose(1, 2)?.matmul(&u)?; // TMᵀu: (N, c, 1)
    let sigma = if differentiable {
        let v = unit_columns(&tu)?;
        u.transpose(1, 2)?.matmul(&batched)?.matmul(&v)? // uᵀ TM v: (N, 1, 1)
    } else {
        tu.sqr()?.sum_keepdim(1)?.sqrt()? // ‖TMᵀu‖: (N, 1, 1)
    };
    Ok(if single { sigma.reshape(())? } else { sigma.reshape(n)? })
}

/// σ_max of the transmitting matrix of each consecutive pair of `stages` (L + 1 stages give L
/// values, each shaped as [`top_singular_value`] returns).
pub fn stage_singular_values(stages: &[Tensor], iterations: usize, differentiable: bool) -> Result<Vec<Tensor>> {
    if stages.len() < 2 {
        return Err(MethodError::TooFew { op: "stage_singular_values", what: "stages", needed: 2, got: stages.len() });
    }
    stages.windows(2).map(|pair| top_singular_value(&transmitting_matrix(&pair[0], &pair[1])?, iterations, differentiable)).collect()
}

/// LONDON's loss Σ_{l=0}^{L−1} MSE(σ_l^s, σ_l^t) / 2^{L−1−l} as a scalar tensor, for L stage
/// pairs in network order: the last pair has weight 1, each earlier one half the next. The
/// teacher's σ are detached. Each MSE is the mean over its entries (samples, or one value per
/// batch).
///
/// The released code divides pair l by 2^{F−1−l} with F the number of feature maps (L + 1),
/// i.e. it uses half these weights throughout, a constant the loss weight absorbs. Its comment
/// says the front pairs matter more, yet the weights grow toward the back, as here.
pub fn london_loss(student_sigmas: &[Tensor], teacher_sigmas: &[Tensor]) -> Result<Tensor> {
    const OP: &str = "london_loss";
    let l = student_sigmas.len();
    if l == 0 {
        return Err(MethodError::TooFew { op: OP, what: "stage pairs", needed: 1, got: 0 });
    }
    if teacher_sigmas.len() != l {
        return Err(MethodError::Shape {
            op: OP,
            what: "teacher_sigmas",
            expected: format!("{l} stage pairs (as many as the student's)"),
            got: vec![teacher_sigmas.len()],
        });
    }
    let mut total: Option<Tensor> = None;
    for (i, (s, t)) in student_sigmas.iter().zip(teacher_sigmas).enumerate() {
        if s.dims() != t.dims() {
            return Err(shape_error(OP, "teacher_sigmas", format!("{:?} (the student's shape at pair {i})", s.dims()), t.dims()));
        }
        let weight = 0.5f64.powi((l - 1 - i) as i32);
        let term = ((s - t.detach())?.sqr()?.mean_all()? * weight)?;
        total = Some(match total {
            None => term,
            Some(acc) => (acc + term)?,
        });
    }
    Ok(total.expect("l ≥ 1 pairs"))
}

/// Columns of an (N, r, 1) batch scaled to unit length (norms floored at
/// [`POWER_ITERATION_FLOOR`]).
fn unit_columns(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(floor_for(x.dtype()))?; // (N, 1, 1)
    Ok(x.broadcast_div(&norm)?)
}

/// The power-iteration floor, representable in `dtype` (f16/bf16 flush 1e-30 to zero).
fn floor_for(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 1e-7,
        _ => POWER_ITERATION_FLOOR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::testkit::{array, assert_close, central_difference, normal_matrix, orthonormal_columns, scalar, tensor, var};
    use ndarray::Array2;
    use ndarray_linalg::SVD;

    fn singular_values(a: &Array2<f64>) -> Vec<f64> {
        a.svd(false, false).unwrap().1.to_vec()
    }

    fn sigma_max(a: &Array2<f64>) -> f64 {
        singular_values(a)[0]
    }

    /// Power iteration against LAPACK's SVD. Its error in σ shrinks like (σ₂/σ₁)^{2k}; the test
    /// asserts that bound is below 1e-14 for k = 300 before asking for 1e-10 relative agreement.
    #[test]
    fn power_iteration_matches_the_svd() {
        let iterations = 300;
        let mats: Vec<Array2<f64>> = (0..4).map(|s| normal_matrix(5, 7, 30 + s)).collect();
        for (i, m) in mats.iter().enumerate() {
            let s = singular_values(m);
            assert!((s[1] / s[0]).powi(2 * iterations as i32) < 1e-14, "matrix {i}: gap too small for the tolerance");
            for differentiable in [false, true] {
                let sigma = scalar(&top_singular_value(&tensor(m), iterations, differentiable).unwrap());
                assert!(((sigma - s[0]) / s[0]).abs() < 1e-10, "matrix {i}: {sigma} vs {}", s[0]);
            }
        }
        // The batched form gives each sample's value.
        let views: Vec<_> = mats.iter().map(tensor).collect();
        let batch = Tensor::stack(&views, 0).unwrap();
        let sigmas: Vec<f64> = top_singular_value(&batch, iterations, true).unwrap().to_vec1().unwrap();
        for (m, sigma) in mats.iter().zip(sigmas) {
            assert!(((sigma - sigma_max(m)) / sigma_max(m)).abs() < 1e-10);
        }
    }

    /// A linear stage H = X Wᵀ (W 3 × 4): with whitened inputs (XᵀX/n = I exactly, up to
    /// rounding ~1e-15) TM = Wᵀ and σ(TM) = σ(W); with per-coordinate scales (3, 1, 0.3, 0.1),
    /// TM = diag(s²) Wᵀ and σ(TM) moves far from σ(W).
    #[test]
    fn transmitting_matrix_norm_equals_the_layer_norm_only_for_whitened_inputs() {
        let n = 400;
        let w = normal_matrix(3, 4, 40);
        let sigma_w = sigma_max(&w);
        let white = orthonormal_columns(n, 4, 41) * (n as f64).sqrt();
        let sigma_of = |x: &Array2<f64>| {
            let h = x.dot(&w.t());
            scalar(&top_singular_value(&transmitting_matrix(&tensor(x), &tensor(&h)).unwrap(), 500, false).unwrap())
        };
        assert!(((sigma_of(&white) - sigma_w) / sigma_w).abs() < 1e-10, "whitened: {} vs {sigma_w}", sigma_of(&white));
        let scales = ndarray::arr1(&[3.0, 1.0, 0.3, 0.1]);
        let aniso = &white * &scales;
        let mut expected = w.t().to_owned();
        for (mut row, s) in expected.rows_mut().into_iter().zip(&scales) {
            row *= s * s;
        }
        let sigma_aniso = sigma_of(&aniso);
        assert!(((sigma_aniso - sigma_max(&expected)) / sigma_max(&expected)).abs() < 1e-10);
        assert!((sigma_aniso - sigma_w).abs() > 0.5 * sigma_w, "anisotropic: {sigma_aniso} vs {sigma_w}");
    }

    #[test]
    fn feature_map_matrices_are_per_sample_activation_matrices() {
        // N = 2 samples, 3 and 4 channels, P = 5 positions.
        let a = Tensor::stack(&[tensor(&normal_matrix(3, 5, 42)), tensor(&normal_matrix(3, 5, 43))], 0).unwrap();
        let b = Tensor::stack(&[tensor(&normal_matrix(4, 5, 44)), tensor(&normal_matrix(4, 5, 45))], 0).unwrap();
        let tm = transmitting_matrix(&a, &b).unwrap();
        assert_eq!(tm.dims(), &[2, 3, 4]);
        for i in 0..2 {
            // Per sample the positions are the rows: F_l F_{l+1}ᵀ / P = (F_lᵀ)ᵀ (F_{l+1}ᵀ) / P.
            let single = transmitting_matrix(&a.get(i).unwrap().t().unwrap(), &b.get(i).unwrap().t().unwrap()).unwrap();
            assert_close(&array(&tm.get(i).unwrap()), &array(&single), 1e-14, "sample");
        }
    }

    /// The detached σ carries no graph: LONDON's term adds exactly nothing to the gradient of
    /// another loss on the same features (bit-identical), and alone it reaches no variable.
    #[test]
    fn the_detached_version_has_exactly_zero_gradient() {
        let h0 = var(&normal_matrix(16, 3, 46));
        let mix = tensor(&normal_matrix(3, 4, 47));
        let h1 = h0.as_tensor().matmul(&mix).unwrap().relu().unwrap();
        let teacher = [Tensor::new(2.5f64, &candle_core::Device::Cpu).unwrap()];
        let student = [top_singular_value(&transmitting_matrix(h0.as_tensor(), &h1).unwrap(), 10, false).unwrap()];
        let london = london_loss(&student, &teacher).unwrap();
        assert!(scalar(&london) > 0.0);
        assert!(london.backward().unwrap().get(&h0).is_none(), "the detached loss must not reach the features");
        let other = h1.sqr().unwrap().sum_all().unwrap();
        let alone = array(other.backward().unwrap().get(&h0).unwrap());
        let with_london = array((&other + &london).unwrap().backward().unwrap().get(&h0).unwrap());
        assert_eq!(alone, with_london);
    }

    /// The differentiable σ's gradient in both stages' activations against central differences
    /// of LAPACK's σ_max. σ_max is smooth where σ₁ > σ₂ (asserted); h = 1e-6 gives truncation
    /// ~h²·|σ'''| ≈ 1e-11 and rounding ~1e-16/h ≈ 1e-10, and 500 power steps leave u, v
    /// converged to ~(σ₂/σ₁)^1000, so 1e-7 relative is safe.
    #[test]
    fn the_differentiable_version_matches_finite_differences() {
        let (b, c0, c1) = (12, 3, 4);
        let a = normal_matrix(b, c0, 48);
        let c = normal_matrix(b, c1, 49);
        let sigma = |a: &Array2<f64>, c: &Array2<f64>| sigma_max(&(a.t().dot(c) / b as f64));
        let s = singular_values(&(a.t().dot(&c) / b as f64));
        assert!(s[1] < 0.9 * s[0], "a simple top singular value");
        let (av, cv) = (var(&a), var(&c));
        let value = top_singular_value(&transmitting_matrix(av.as_tensor(), cv.as_tensor()).unwrap(), 500, true).unwrap();
        assert!((scalar(&value) - s[0]).abs() < 1e-12 * s[0]);
        let grads = value.backward().unwrap();
        assert_close(&array(grads.get(&av).unwrap()), &central_difference(|a| sigma(a, &c), &a, 1e-6), 1e-7, "d/dH_l");
        assert_close(&array(grads.get(&cv).unwrap()), &central_difference(|c| sigma(&a, c), &c, 1e-6), 1e-7, "d/dH_{l+1}");

        // Through the weighted loss of two stage pairs, against the f64 loss.
        let h2 = normal_matrix(b, 2, 50);
        let targets = [0.3, 0.7];
        let loss_f64 = |a: &Array2<f64>| {
            let s0 = sigma(a, &c);
            let s1 = sigma(&c, &h2);
            (s0 - targets[0]).powi(2) / 2.0 + (s1 - targets[1]).powi(2)
        };
        let av = var(&a);
        let stages = [av.as_tensor().clone(), tensor(&c), tensor(&h2)];
        let student = stage_singular_values(&stages, 500, true).unwrap();
        let teacher: Vec<Tensor> = targets.iter().map(|&t| Tensor::new(t, &candle_core::Device::Cpu).unwrap()).collect();
        let loss = london_loss(&student, &teacher).unwrap();
        assert!((scalar(&loss) - loss_f64(&a)).abs() < 1e-12);
        let g = array(loss.backward().unwrap().get(&av).unwrap());
        assert_close(&g, &central_difference(loss_f64, &a, 1e-6), 1e-7, "loss d/dH_0");
    }

    #[test]
    fn london_loss_halves_the_weight_of_each_earlier_pair() {
        let t = |v: &[f64]| Tensor::new(v, &candle_core::Device::Cpu).unwrap();
        let student = [t(&[1.0, 3.0]), t(&[2.0, 2.0]), t(&[0.0, 1.0])];
        let teacher = [t(&[0.0, 0.0]), t(&[0.0, 0.0]), t(&[0.0, 0.0])];
        // MSEs 5, 4, 0.5 with weights 1/4, 1/2, 1.
        let loss = scalar(&london_loss(&student, &teacher).unwrap());
        assert!((loss - (5.0 / 4.0 + 4.0 / 2.0 + 0.5)).abs() < 1e-15, "{loss}");
    }

    #[test]
    fn a_zero_matrix_has_zero_norm_and_zero_gradient() {
        let z = var(&Array2::zeros((3, 2)));
        let sigma = top_singular_value(z.as_tensor(), 5, true).unwrap();
        assert_eq!(scalar(&sigma), 0.0);
        let g = array(sigma.backward().unwrap().get(&z).unwrap());
        assert!(g.iter().all(|&v| v == 0.0), "{g}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = tensor(&normal_matrix(4, 3, 51));
        let b = tensor(&normal_matrix(5, 3, 52));
        assert!(matches!(transmitting_matrix(&a, &b), Err(MethodError::Shape { .. })));
        assert!(matches!(transmitting_matrix(&a.flatten_all().unwrap(), &b), Err(MethodError::Shape { what: "f_l", .. })));
        assert!(matches!(transmitting_matrix(&a, &a.unsqueeze(0).unwrap()), Err(MethodError::Shape { what: "f_next", .. })));
        assert!(matches!(top_singular_value(&a, 0, true), Err(MethodError::InvalidParameter { name: "iterations", .. })));
        assert!(matches!(top_singular_value(&a.flatten_all().unwrap(), 3, true), Err(MethodError::Shape { .. })));
        assert!(matches!(london_loss(&[], &[]), Err(MethodError::TooFew { .. })));
        let s = top_singular_value(&a, 3, true).unwrap();
        assert!(matches!(london_loss(std::slice::from_ref(&s), &[]), Err(MethodError::Shape { .. })));
        assert!(matches!(london_loss(&[s], std::slice::from_ref(&a)), Err(MethodError::Shape { .. })));
        assert!(matches!(stage_singular_values(&[a], 3, true), Err(MethodError::TooFew { .. })));
    }
}
