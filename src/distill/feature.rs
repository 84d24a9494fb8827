//! Miles & Mikolajczyk (AAAI 2024), "Understanding the Role of the Projector in Knowledge
//! Distillation" (SRD): a linear projector from student to teacher features, a normalisation
//! of both sides, and a distance between them.
//!
//! With student features Z_s (B × d_s), projector W (d_s × d_t), optional bias b (d_t) and
//! teacher features Z_t (B × d_t, treated as constant), [`feature_distillation_loss`] is
//! D(N(Z_s W + b) − N(Z_t)) for a [`Normalisation`] N and a [`FeatureLoss`] D:
//!
//! - `SquaredError`: (1/B)·Σ_{b,k} d_{b,k}² (sum over dimensions, mean over the batch);
//! - `LogSum { alpha }`: 2·log(Σ_{b,k} |d_{b,k}|^α + [`LOG_SUM_FLOOR`]), the released
//!   ImageNet recipe with α = 4 (a "soft maximum": it tends to 2α·log max|d| as α grows).
//!
//! Two facts the tests pin: LogSum's gradient is homogeneous of degree −1 (residuals c·d give
//! gradient ∇/c, so a large capacity gap yields small steps), and for batch-standardised x̂, ŷ
//! (biased variance) (1/B)Σ_b (x̂_b − ŷ_b)² = 2(1 − ρ_xy), so SquaredError after
//! `BatchStandardise` is Σ_k 2(1 − Pearson ρ_k).
//!
//! [`feature_distillation_loss_f64`] is the same computation on f64 ndarray matrices (a
//! reference for tests and for diagnostics outside a training loop).

use candle_core::Tensor;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use super::error::{dims2, ensure_parameter, shape_error, MethodError, Result};

/// Added to LogSum's Σ|d|^α so an exact match gives the finite value 2·log(1e-12) ≈ −55.3
/// instead of −∞. It changes the loss's gradient by the relative factor Σ/(Σ + 1e-12), which is
/// 1 to within 1e-12 once Σ ≥ 1 (relative); it also caps the gradient at an exact match.
pub const LOG_SUM_FLOOR: f64 = 1e-12;

/// Row norms below this count as this value in `L2` normalisation, so a zero row maps to zero
/// (PyTorch's `F.normalize` default).
pub const L2_NORM_FLOOR: f64 = 1e-12;

/// How features are normalised before they are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalisation {
    /// Compare raw features.
    None,
    /// Each row (sample) divided by its ℓ2 norm (floored at [`L2_NORM_FLOOR`]).
    L2,
    /// Per dimension over the batch: (x − mean)/√(var + eps) with the biased (1/B) variance,
    /// i.e. BatchNorm1d without affine parameters, in training mode. The released ImageNet
    /// recipe uses eps = 1e-4, the DeiT one eps = 0 (then a constant column gives NaN).
    BatchStandardise { eps: f64 },
}

/// The distance between normalised student and teacher features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureLoss {
    /// (1/B)·Σ_{b,k} d_{b,k}².
    SquaredError,
    /// 2·log(Σ_{b,k} |d_{b,k}|^α + [`LOG_SUM_FLOOR`]). α ≥ 1: below 1 the gradient of |d|^α is
    /// infinite at d = 0.
    LogSum { alpha: f64 },
}

/// The SRD feature loss D(N(Z_s W + b) − N(Z_t)) as a scalar tensor; gradients flow to the
/// student features, W and b, never to the teacher features (detached here).
///
/// Shapes: `student_feat` B × d_s, `projector_weight` d_s × d_t, `projector_bias` d_t,
/// `teacher_feat` B × d_t; B ≥ 2 for `BatchStandardise`. Any float dtype (all inputs alike).
pub fn feature_distillation_loss(
    student_feat: &Tensor,
    projector_weight: &Tensor,
    projector_bias: Option<&Tensor>,
    teacher_feat: &Tensor,
    norm: Normalisation,
    loss: FeatureLoss,
) -> Result<Tensor> {
    const OP: &str = "feature_distillation_loss";
    let (b, d_s) = dims2(student_feat, OP, "student_feat")?;
    let (w_in, d_t) = dims2(projector_weight, OP, "projector_weight")?;
    if w_in != d_s {
        return Err(shape_error(OP, "projector_weight", format!("{d_s} × d_t (rows = student width)"), projector_weight.dims()));
    }
    if teacher_feat.dims() != [b, d_t] {
        return Err(shape_error(OP, "teacher_feat", format!("{b} × {d_t} (batch × projector output)"), teacher_feat.dims()));
    }
    if let Some(bias) = projector_bias {
        if bias.dims() != [d_t] {
            return Err(shape_error(OP, "projector_bias", format!("a vector of length {d_t}"), bias.dims()));
        }
    }
    check_settings(OP, b, norm, loss)?;
    let mut projected = student_feat.matmul(projector_weight)?; // (B, d_t)
    if let Some(bias) = projector_bias {
        projected = projected.broadcast_add(bias)?;
    }
    let residual = (normalise(&projected, norm)? - normalise(&teacher_feat.detach(), norm)?)?; // (B, d_t)
    feature_loss(&residual, loss)
}

/// Features (B × d) normalised as `norm` says (see [`Normalisation`]).
pub fn normalise(x: &Tensor, norm: Normalisation) -> Result<Tensor> {
    const OP: &str = "normalise";
    let (b, _) = dims2(x, OP, "x")?;
    check_settings(OP, b, norm, FeatureLoss::SquaredError)?;
    Ok(match norm {
        Normalisation::None => x.clone(),
        Normalisation::L2 => {
            let sq = x.sqr()?.sum_keepdim(1)?; // (B, 1)
            x.broadcast_div(&sq.maximum(L2_NORM_FLOOR * L2_NORM_FLOOR)?.sqrt()?)?
        }
        Normalisation::BatchStandardise { eps } => {
            let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?; // (B, d)
            let var = centred.sqr()?.mean_keepdim(0)?; // (1, d), biased
            centred.broadcast_div(&(var + eps)?.sqrt()?)?
        }
    })
}

/// The distance D of a residual matrix d (B × d_t), as a scalar tensor (see [`FeatureLoss`]).
pub fn feature_loss(residual: &Tensor, loss: FeatureLoss) -> Result<Tensor> {
    const OP: &str = "feature_loss";
    let (b, _) = dims2(residual, OP, "residual")?;
    check_settings(OP, b, Normalisation::None, loss)?;
    Ok(match loss {
        FeatureLoss::SquaredError => (residual.sqr()?.sum_all()? / b as f64)?,
        FeatureLoss::LogSum { alpha } => ((residual.abs()?.powf(alpha)?.sum_all()? + LOG_SUM_FLOOR)?.log()? * 2.0)?,
    })
}

/// [`feature_distillation_loss`] on f64 matrices: `student` B × d_s, `weight` d_s × d_t,
/// `bias` d_t, `teacher` B × d_t. Returns the loss value.
pub fn feature_distillation_loss_f64(
    student: ArrayView2<f64>,
    weight: ArrayView2<f64>,
    bias: Option<ArrayView1<f64>>,
    teacher: ArrayView2<f64>,
    norm: Normalisation,
    loss: FeatureLoss,
) -> Result<f64> {
    const OP: &str = "feature_distillation_loss_f64";
    let (b, d_s) = student.dim();
    let d_t = weight.ncols();
    if weight.nrows() != d_s {
        return Err(shape_error(OP, "weight", format!("{d_s} × d_t (rows = student width)"), weight.shape()));
    }
    if teacher.dim() != (b, d_t) {
        return Err(shape_error(OP, "teacher", format!("{b} × {d_t} (batch × projector output)"), teacher.shape()));
    }
    if let Some(bias) = bias {
        if bias.len() != d_t {
            return Err(shape_error(OP, "bias", format!("a vector of length {d_t}"), bias.shape()));
        }
    }
    check_settings(OP, b, norm, loss)?;
    let mut projected = student.dot(&weight);
    if let Some(bias) = bias {
        projected += &bias;
    }
    let residual = normalise_f64(projected.view(), norm) - normalise_f64(teacher, norm);
    Ok(match loss {
        FeatureLoss::SquaredError => residual.mapv(|v| v * v).sum() / b as f64,
        FeatureLoss::LogSum { alpha } => 2.0 * (residual.mapv(|v| v.abs().powf(alpha)).sum() + LOG_SUM_FLOOR).ln(),
    })
}

/// [`normalise`] on an f64 matrix (settings already checked).
fn normalise_f64(x: ArrayView2<f64>, norm: Normalisation) -> Array2<f64> {
    match norm {
        Normalisation::None => x.to_owned(),
        Normalisation::L2 => {
            let mut out = x.to_owned();
            for mut row in out.rows_mut() {
                let n = row.dot(&row).sqrt().max(L2_NORM_FLOOR);
                row /= n;
            }
            out
        }
        Normalisation::BatchStandardise { eps } => {
            let centred = &x - &x.mean_axis(Axis(0)).expect("B ≥ 2 checked");
            let var = centred.mapv(|v| v * v).mean_axis(Axis(0)).expect("B ≥ 2 checked");
            centred / var.mapv(|v| (v + eps).sqrt())
        }
    }
}

/// Checks the normalisation's and the loss's settings for a batch of `b` rows.
fn check_settings(op: &'static str, b: usize, norm: Normalisation, loss: FeatureLoss) -> Result<()> {
    if b == 0 {
        return Err(MethodError::TooFew { op, what: "rows", needed: 1, got: 0 });
    }
    if let Normalisation::BatchStandardise { eps } = norm {
        ensure_parameter(eps.is_finite() && eps >= 0.0, op, "eps", eps, "finite and >= 0")?;
        if b < 2 {
            // One row has zero variance: batch statistics need at least two.
            return Err(MethodError::TooFew { op, what: "rows for batch standardisation", needed: 2, got: b });
        }
    }
    if let FeatureLoss::LogSum { alpha } = loss {
        ensure_parameter(alpha.is_finite() && alpha >= 1.0, op, "alpha", alpha, "finite and >= 1")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::testkit::{array, assert_close, central_difference, normal_matrix, orthonormal_columns, scalar, tensor, tensor1, var};
    use candle_core::Var;
    use ndarray::Array1;

    /// ∇_d LogSum at d, by candle's backward pass (f64).
    fn log_sum_gradient(d: &Array2<f64>, alpha: f64) -> Array2<f64> {
        let v = var(d);
        let loss = feature_loss(v.as_tensor(), FeatureLoss::LogSum { alpha }).unwrap();
        array(loss.backward().unwrap().get(&v).unwrap())
    }

    /// ∇L(c·d) = ∇L(d)/c. The floor perturbs the gradient by the relative factor
    /// 1e-12/Σ|c·d|^α; the smallest Σ here (c = 0.1, α = 4, 24 entries of size ~1) is ~1e-3, so
    /// the floor's share stays below 1e-8 and rounding is ~1e-15: tolerance 1e-7.
    #[test]
    fn log_sum_gradient_is_homogeneous_of_degree_minus_one() {
        let d = normal_matrix(6, 4, 11);
        for alpha in [1.0, 2.0, 4.0] {
            let base = log_sum_gradient(&d, alpha);
            for c in [0.1, 0.5, 3.0, 20.0] {
                let scaled = log_sum_gradient(&(&d * c), alpha);
                assert_close(&(&scaled * c), &base, 1e-7, &format!("alpha = {alpha}, c = {c}"));
            }
        }
    }

    /// (1/n)Σ_b(x̂_b − ŷ_b)² = 2(1 − ρ) per dimension, with ρ from `stats::pearson`; so the
    /// whole loss with W = I is Σ_k 2(1 − ρ_k). Exact algebra with eps = 0: only rounding
    /// (~1e-14 for n = 50) separates the two sides.
    #[test]
    fn batch_standardised_squared_error_is_twice_one_minus_correlation() {
        let n = 50;
        let x = normal_matrix(n, 3, 12);
        let y = &x * 0.8 + &normal_matrix(n, 3, 13) * 0.6 + 5.0;
        let norm = Normalisation::BatchStandardise { eps: 0.0 };
        let xh = array(&normalise(&tensor(&x), norm).unwrap());
        let yh = array(&normalise(&tensor(&y), norm).unwrap());
        let mut total = 0.0;
        for k in 0..3 {
            let rho = crate::stats::pearson(&x.column(k).to_vec(), &y.column(k).to_vec()).unwrap().r;
            let lhs = (&xh.column(k) - &yh.column(k)).mapv(|v| v * v).sum() / n as f64;
            assert!((lhs - 2.0 * (1.0 - rho)).abs() < 1e-12, "dimension {k}: {lhs} vs {}", 2.0 * (1.0 - rho));
            total += 2.0 * (1.0 - rho);
        }
        let eye = tensor(&Array2::eye(3));
        let loss = feature_distillation_loss(&tensor(&x), &eye, None, &tensor(&y), norm, FeatureLoss::SquaredError).unwrap();
        assert!((scalar(&loss) - total).abs() < 1e-12);
    }

    /// Whitened student features (Z_sᵀZ_s/n = I): the squared-error gradient in W is
    /// 2(W − C_st/n), so gradient descent with step 0.25 halves the distance to C_st/n each step;
    /// 80 steps leave 2⁻⁸⁰ of it (below 1e-20), so only rounding (~1e-15) remains.
    #[test]
    fn projector_descent_with_whitened_features_converges_to_the_cross_correlation() {
        let (n, d_s, d_t) = (40, 3, 5);
        let z = orthonormal_columns(n, d_s, 14) * (n as f64).sqrt();
        assert_close(&(z.t().dot(&z) / n as f64), &Array2::eye(d_s), 1e-12, "whitening");
        let t = normal_matrix(n, d_t, 15);
        let (z_t, t_t) = (tensor(&z), tensor(&t));
        let w = Var::from_tensor(&tensor(&Array2::zeros((d_s, d_t)))).unwrap();
        for _ in 0..80 {
            let loss = feature_distillation_loss(&z_t, w.as_tensor(), None, &t_t, Normalisation::None, FeatureLoss::SquaredError).unwrap();
            let grad = loss.backward().unwrap().get(&w).unwrap().clone();
            w.set(&(w.as_tensor() - (grad * 0.25).unwrap()).unwrap()).unwrap();
        }
        assert_close(&array(w.as_tensor()), &(z.t().dot(&t) / n as f64), 1e-12, "W after descent vs C_st/n");
    }

    /// Candle's loss value equals the f64 reference, and its gradients in the student features,
    /// W and b equal central differences of the reference, for every normalisation and loss.
    /// h = 1e-5: truncation ~h²·|f'''| ≈ 1e-9 (third derivatives are O(10) for these small
    /// batches), rounding ~1e-16·|f|/h ≈ 1e-10, so 1e-6 relative is safe. The teacher gets no
    /// gradient.
    #[test]
    fn gradients_match_finite_differences_of_the_f64_reference() {
        let (b, d_s, d_t) = (6, 3, 4);
        let z = normal_matrix(b, d_s, 16);
        let w = normal_matrix(d_s, d_t, 17);
        let bias = normal_matrix(1, d_t, 18);
        let t = normal_matrix(b, d_t, 19);
        let norms = [Normalisation::None, Normalisation::L2, Normalisation::BatchStandardise { eps: 1e-4 }, Normalisation::BatchStandardise { eps: 0.0 }];
        let losses = [FeatureLoss::SquaredError, FeatureLoss::LogSum { alpha: 1.0 }, FeatureLoss::LogSum { alpha: 2.0 }, FeatureLoss::LogSum { alpha: 4.0 }];
        for norm in norms {
            for loss in losses {
                let what = format!("{norm:?}, {loss:?}");
                let reference = |z: &Array2<f64>, w: &Array2<f64>, bias: &Array2<f64>| {
                    feature_distillation_loss_f64(z.view(), w.view(), Some(bias.row(0)), t.view(), norm, loss).unwrap()
                };
                let (zv, wv, bv, tv) = (var(&z), var(&w), Var::from_tensor(&tensor1(&bias.row(0).to_owned())).unwrap(), var(&t));
                let value = feature_distillation_loss(zv.as_tensor(), wv.as_tensor(), Some(bv.as_tensor()), tv.as_tensor(), norm, loss).unwrap();
                assert!((scalar(&value) - reference(&z, &w, &bias)).abs() < 1e-12 * (1.0 + scalar(&value).abs()), "{what}: value");
                let grads = value.backward().unwrap();
                let h = 1e-5;
                assert_close(&array(grads.get(&zv).unwrap()), &central_difference(|z| reference(z, &w, &bias), &z, h), 1e-6, &format!("{what}: d/dZ_s"));
                assert_close(&array(grads.get(&wv).unwrap()), &central_difference(|w| reference(&z, w, &bias), &w, h), 1e-6, &format!("{what}: d/dW"));
                let gb = grads.get(&bv).map(|g| array(&g.unsqueeze(0).unwrap())).unwrap_or_else(|| Array2::zeros((1, d_t)));
                assert_close(&gb, &central_difference(|bias| reference(&z, &w, bias), &bias, h), 1e-6, &format!("{what}: d/db"));
                assert!(grads.get(&tv).is_none(), "{what}: the teacher must get no gradient");
            }
        }
    }

    #[test]
    fn f32_inputs_work_like_a_student_batch() {
        let z = tensor(&normal_matrix(8, 3, 20)).to_dtype(candle_core::DType::F32).unwrap();
        let w = tensor(&normal_matrix(3, 2, 21)).to_dtype(candle_core::DType::F32).unwrap();
        let t = tensor(&normal_matrix(8, 2, 22)).to_dtype(candle_core::DType::F32).unwrap();
        let loss = feature_distillation_loss(&z, &w, None, &t, Normalisation::BatchStandardise { eps: 1e-4 }, FeatureLoss::LogSum { alpha: 4.0 }).unwrap();
        assert!(scalar(&loss).is_finite());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let z = tensor(&normal_matrix(4, 3, 23));
        let w = tensor(&normal_matrix(3, 2, 24));
        let t = tensor(&normal_matrix(4, 2, 25));
        let run = |z: &Tensor, w: &Tensor, b: Option<&Tensor>, t: &Tensor, norm, loss| feature_distillation_loss(z, w, b, t, norm, loss);
        let (none, se) = (Normalisation::None, FeatureLoss::SquaredError);
        assert!(matches!(run(&z, &t, None, &t, none, se), Err(MethodError::Shape { what: "projector_weight", .. })));
        assert!(matches!(run(&z, &w, None, &z, none, se), Err(MethodError::Shape { what: "teacher_feat", .. })));
        let bad_bias = tensor1(&Array1::zeros(3));
        assert!(matches!(run(&z, &w, Some(&bad_bias), &t, none, se), Err(MethodError::Shape { what: "projector_bias", .. })));
        assert!(matches!(run(&z, &w, None, &t, none, FeatureLoss::LogSum { alpha: 0.5 }), Err(MethodError::InvalidParameter { name: "alpha", .. })));
        assert!(matches!(run(&z, &w, None, &t, Normalisation::BatchStandardise { eps: -1.0 }, se), Err(MethodError::InvalidParameter { name: "eps", .. })));
        let (z1, t1) = (tensor(&normal_matrix(1, 3, 26)), tensor(&normal_matrix(1, 2, 27)));
        assert!(matches!(run(&z1, &w, None, &t1, Normalisation::BatchStandardise { eps: 1e-4 }, se), Err(MethodError::TooFew { .. })));
        let vector = z.flatten_all().unwrap();
        assert!(matches!(run(&vector, &w, None, &t, none, se), Err(MethodError::Shape { what: "student_feat", .. })));
    }
}
