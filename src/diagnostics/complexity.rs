//! Complexity of a student class around a fitted model: the critical radius δ_n that the
//! semiparametric KD bounds carry as the student's own estimation floor.
//!
//! Two numbers, both labelled as what they are:
//! * [`critical_radius_proxy`]: √(d log n / n), the textbook rate for a class of dimension d
//!   (a parametric proxy; constants unknown).
//! * [`tangent_rademacher`]: an empirical local Rademacher complexity. A network's *tangent
//!   class* at its fitted weights θ̂ is G = {x ↦ J(x)v : v ∈ ℝ^P}, J the Jacobian of the logits
//!   with respect to the P parameters: the functions the network can add by a small weight
//!   change. G is a linear space, so with ‖g‖_n² = (1/n) Σ_i ‖g(x_i)‖² and one Rademacher sign
//!   per (point, output),
//!   R̂_n(δ) = E_σ sup_{g ∈ G, ‖g‖_n ≤ δ} (1/n) Σ_{i,k} σ_ik g_k(x_i) = δ · E_σ‖Pσ‖ / √n,
//!   P the orthogonal projection onto the column space of the stacked Jacobian (nK × P). The
//!   critical inequality R̂_n(δ) ≤ δ²/b then holds from δ̂_n = b · E‖Pσ‖/√n on (b = 1 here),
//!   and since E‖Pσ‖² = rank, δ̂_n ≈ √(rank / n): the proxy without its log factor. The
//!   expectation over signs is a Monte-Carlo mean with its standard error.

use ndarray::{s, Array2, ArrayView2};
use ndarray_linalg::{JobSvd, SVDDC};
use rand::Rng;
use serde::Serialize;

use super::lipschitz::ReluMlp;
use super::{DiagnosticsError, Result};
use crate::seed;

/// √(d log n / n): the critical radius of a d-dimensional parametric or VC class, up to
/// constants (a proxy, not an estimate).
pub fn critical_radius_proxy(d: usize, n: usize) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    let n = n as f64;
    (d as f64 * n.ln() / n).sqrt()
}

/// Largest stacked Jacobian (rows × parameters) [`tangent_rademacher`] accepts: 40 MB of f64.
pub const MAX_JACOBIAN_ENTRIES: usize = 5_000_000;

/// An empirical local Rademacher complexity of a tangent class, and the critical radius it
/// gives (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TangentRademacher {
    /// δ̂_n = E_σ‖Pσ‖/√n, the empirical critical radius with b = 1 (equal to R̂_n(1)).
    pub critical_radius: f64,
    /// Monte-Carlo standard error of `critical_radius`.
    pub standard_error: f64,
    /// Numerical rank of the stacked Jacobian (the dimension of the tangent class on the points).
    pub rank: usize,
    /// Points n and parameters P.
    pub n: usize,
    pub parameters: usize,
    /// Sign draws.
    pub draws: usize,
}

/// Gradient of every logit with respect to every parameter, one row per (point, output):
/// rows `i·K + k`, columns the weights and biases layer by layer (`ReLU'(0) = 0`).
pub fn parameter_jacobian(net: &ReluMlp, x: ArrayView2<f64>) -> Result<Array2<f64>> {
    net.check()?;
    let n_out = net.output_dim();
    let sizes: Vec<usize> = net.layers.iter().map(|(w, b)| w.len() + b.len()).collect();
    let offsets: Vec<usize> = sizes.iter().scan(0, |acc, &s| {
        let at = *acc;
        *acc += s;
        Some(at)
    }).collect();
    let p: usize = sizes.iter().sum();
    let entries = x.nrows().saturating_mul(n_out).saturating_mul(p);
    if entries > MAX_JACOBIAN_ENTRIES {
        return Err(DiagnosticsError::TooLarge { what: "parameter Jacobian entries (points × outputs × parameters)", limit: MAX_JACOBIAN_ENTRIES, got: entries });
    }
    let activations = net.activations_of(x)?;
    let n_layers = net.layers.len();
    let mut jac = Array2::zeros((x.nrows() * n_out, p));
    for i in 0..x.nrows() {
        for k in 0..n_out {
            let row = i * n_out + k;
            // δ: ∂ logit_k / ∂ (pre-activation of layer l), back from the output.
            let mut delta = ndarray::Array1::zeros(n_out);
            delta[k] = 1.0;
            for l in (0..n_layers).rev() {
                let (w, _) = &net.layers[l];
                let input = activations[l].row(i);
                let (rows, cols) = w.dim();
                let mut out = jac.slice_mut(s![row, offsets[l]..offsets[l] + sizes[l]]);
                for r in 0..rows {
                    for c in 0..cols {
                        out[r * cols + c] = delta[r] * input[c];
                    }
                    out[rows * cols + r] = delta[r];
                }
                if l > 0 {
                    let back = w.t().dot(&delta);
                    // The input of layer l is relu(z_{l−1}); its derivative is 1 where positive.
                    delta = back * activations[l].row(i).mapv(|a| if a > 0.0 { 1.0 } else { 0.0 });
                }
            }
        }
    }
    Ok(jac)
}

/// The empirical local Rademacher complexity of `net`'s tangent class on the rows of `x`,
/// from `draws` seeded sign vectors. Errors: invalid network or input, fewer than 2 points,
/// `draws < 2`, a Jacobian over [`MAX_JACOBIAN_ENTRIES`], LAPACK failure.
pub fn tangent_rademacher(net: &ReluMlp, x: ArrayView2<f64>, draws: usize, seed: u64) -> Result<TangentRademacher> {
    if x.nrows() < 2 {
        return Err(DiagnosticsError::TooFewSamples { what: "tangent Rademacher complexity", needed: 2, got: x.nrows() });
    }
    if draws < 2 {
        return Err(DiagnosticsError::InvalidParameter { name: "draws", value: draws as f64, allowed: ">= 2" });
    }
    let jac = parameter_jacobian(net, x)?;
    let basis = column_space(&jac)?;
    let mut rng = seed::rng(seed);
    let norms: Vec<f64> = (0..draws)
        .map(|_| {
            let sigma = ndarray::Array1::from_shape_fn(jac.nrows(), |_| if rng.gen::<bool>() { 1.0 } else { -1.0 });
            basis.t().dot(&sigma).mapv(|v| v * v).sum().sqrt()
        })
        .collect();
    let n = x.nrows() as f64;
    let mean = norms.iter().sum::<f64>() / draws as f64;
    let var = norms.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
    Ok(TangentRademacher {
        critical_radius: mean / n.sqrt(),
        standard_error: (var / draws as f64).sqrt() / n.sqrt(),
        rank: basis.ncols(),
        n: x.nrows(),
        parameters: jac.ncols(),
        draws,
    })
}

/// An orthonormal basis (columns) of the column space of `a`, from its SVD; singular values
/// below max(rows, cols)·ε·σ_max count as zero (LAPACK's usual rank rule).
fn column_space(a: &Array2<f64>) -> Result<Array2<f64>> {
    // Thin SVD (divide and conquer): U is rows × min(rows, cols), never rows × rows.
    let (u, s, _) = a.svddc(JobSvd::Some).map_err(|e| DiagnosticsError::Linalg { what: "SVD of the parameter Jacobian", message: e.to_string() })?;
    let u = u.expect("requested");
    let top = s.iter().copied().fold(0.0, f64::max);
    let tol = a.nrows().max(a.ncols()) as f64 * f64::EPSILON * top;
    let rank = s.iter().filter(|&&v| v > tol).count();
    Ok(u.slice(s![.., ..rank]).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut rng = seed::rng(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-1.0..1.0))
    }

    #[test]
    fn proxy_matches_the_formula() {
        assert!((critical_radius_proxy(10, 1000) - (10.0 * 1000f64.ln() / 1000.0).sqrt()).abs() < 1e-15);
        assert!(critical_radius_proxy(10, 1).is_nan());
    }

    #[test]
    fn parameter_jacobian_matches_finite_differences() {
        let net = ReluMlp::new(vec![(random(4, 3, 1), Array1::from(vec![0.1, -0.2, 0.3, 0.05])), (random(2, 4, 2), Array1::from(vec![0.0, 0.1]))]).unwrap();
        let x = random(5, 3, 3);
        let jac = parameter_jacobian(&net, x.view()).unwrap();
        assert_eq!(jac.dim(), (10, 4 * 3 + 4 + 2 * 4 + 2));
        // Perturb each parameter in turn; ReLU nets are piecewise linear, so a small central
        // difference is exact away from kinks (random weights put none within 1e-6).
        let h = 1e-6;
        let mut col = 0;
        for l in 0..net.layers.len() {
            let (w, b) = &net.layers[l];
            let n_params = w.len() + b.len();
            for j in 0..n_params {
                let shifted = |delta: f64| {
                    let mut layers = net.layers.clone();
                    let (w, b) = &mut layers[l];
                    if j < w.len() {
                        let cols = w.ncols();
                        w[[j / cols, j % cols]] += delta;
                    } else {
                        b[j - w.len()] += delta;
                    }
                    ReluMlp::new(layers).unwrap().forward(x.view()).unwrap()
                };
                let diff = (shifted(h) - shifted(-h)) / (2.0 * h);
                for i in 0..x.nrows() {
                    for k in 0..2 {
                        assert!((jac[[i * 2 + k, col]] - diff[[i, k]]).abs() < 1e-7, "layer {l} param {j} point {i} out {k}");
                    }
                }
                col += 1;
            }
        }
    }

    #[test]
    fn linear_class_has_the_known_critical_radius() {
        // A single linear layer: the tangent class is the linear class itself, of rank
        // K·(d + 1) = 2·6 = 12 on 400 generic points. E‖Pσ‖² = rank exactly, so
        // E‖Pσ‖ ≤ √12 by Jensen and, since ‖Pσ‖² has variance below 2·rank, E‖Pσ‖ ≥ √12·(1 − 1/12)
        // or so; 400 draws put the Monte-Carlo mean within 4 standard errors (~0.07) of it.
        let net = ReluMlp::new(vec![(random(2, 5, 4), Array1::zeros(2))]).unwrap();
        let x = random(400, 5, 5);
        let r = tangent_rademacher(&net, x.view(), 400, 6).unwrap();
        assert_eq!(r.rank, 12);
        assert_eq!(r.parameters, 12);
        let expected = (12.0f64 / 400.0).sqrt();
        assert!(r.critical_radius <= expected + 4.0 * r.standard_error, "{r:?}");
        assert!(r.critical_radius >= expected * 0.93, "{r:?} vs {expected}");
        // Deterministic for a seed.
        assert_eq!(r, tangent_rademacher(&net, x.view(), 400, 6).unwrap());
    }

    #[test]
    fn hidden_layer_rank_is_at_most_the_parameter_count_and_grows_the_radius() {
        let small = ReluMlp::new(vec![(random(2, 5, 7), Array1::zeros(2))]).unwrap();
        let wide = ReluMlp::new(vec![(random(16, 5, 8), Array1::from_elem(16, 0.1)), (random(2, 16, 9), Array1::zeros(2))]).unwrap();
        let x = random(300, 5, 10);
        let a = tangent_rademacher(&small, x.view(), 200, 1).unwrap();
        let b = tangent_rademacher(&wide, x.view(), 200, 1).unwrap();
        assert!(b.rank <= b.parameters && b.rank > a.rank, "{a:?} {b:?}");
        assert!(b.critical_radius > a.critical_radius);
    }

    #[test]
    fn bad_input_is_an_error() {
        let net = ReluMlp::new(vec![(random(2, 5, 4), Array1::zeros(2))]).unwrap();
        assert!(matches!(tangent_rademacher(&net, random(1, 5, 1).view(), 10, 1), Err(DiagnosticsError::TooFewSamples { .. })));
        assert!(matches!(tangent_rademacher(&net, random(10, 5, 1).view(), 1, 1), Err(DiagnosticsError::InvalidParameter { .. })));
        assert!(tangent_rademacher(&net, random(10, 4, 1).view(), 10, 1).is_err());
    }
}
