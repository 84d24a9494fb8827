//! Lipschitz constants of models, every value labelled as what it is.
//!
//! For a ReLU MLP given as plain weights ([`ReluMlp`]), the quantity is the global Lipschitz
//! constant `L` of `x ↦ logits` with ℓ2 norms on input and output. `f` is continuous and
//! piecewise linear; on each activation region its Jacobian is `J = W_K D_{K−1} ⋯ D_1 W_1`
//! with `D_l` the 0/1 diagonal of active units, and `L = max over regions ‖J‖₂`. Computing it
//! exactly is NP-hard in general, so the module brackets it:
//!
//! | function | kind | what it bounds / estimates |
//! |---|---|---|
//! | [`jacobian_lower_bound`] | lower bound | `max ‖J(x)‖₂` over the data and a seeded local search |
//! | [`exact_one_hidden_layer`] | exact | region enumeration, one hidden layer, input dim ≤ 3 |
//! | [`seqlip_upper_bound`] | upper bound | `max` over *all* 0/1 patterns, split pairwise (SeqLip) |
//! | [`product_upper_bound`] | upper bound | `∏ ‖W_l‖₂` (power iteration) |
//! | [`finite_difference_local`] | heuristic, local | difference quotients of a black box |
//! | [`london_transmitting_matrix`] | heuristic | LONDON's "transmitting matrix" gain on data |
//!
//! so that `lower ≤ L ≤ SeqLip ≤ product` (and `= exact` where it applies). Every result is a
//! [`LipschitzEstimate`] with its kind, scope, method and wall-clock seconds.
//!
//! Convention: `ReLU'(0) = 0`. Spectral norms of small matrices come from a cyclic Jacobi
//! eigen-solver on the smaller Gram matrix (pure Rust, so results do not depend on threads).

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use ndarray_linalg::SVD;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;

use crate::diagnostics::{check_finite, item_seeds, seconds_since, DiagnosticsError, Result};

/// What kind of number an estimate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BoundKind {
    /// Certified to be at most the true constant.
    LowerBound,
    /// Certified to be at least the true constant (up to the stated numerical tolerance).
    UpperBound,
    /// The true constant (up to floating point).
    Exact,
    /// Neither: a proxy that can fall on either side.
    Heuristic,
}

/// Where the constant applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Scope {
    /// The whole input space.
    Global,
    /// Balls of `radius` around `points` inputs (radius 0: the points themselves).
    Local { points: usize, radius: f64 },
}

/// One Lipschitz number with its label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LipschitzEstimate {
    pub value: f64,
    pub kind: BoundKind,
    pub scope: Scope,
    /// Method and its settings, in words.
    pub method: String,
    /// Wall-clock seconds spent.
    pub seconds: f64,
}

// ---------------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------------

/// A ReLU MLP as plain weights: layer `l` maps `h ↦ W_l h + b_l` with `W_l` of shape
/// `out x in`; ReLU between layers, linear output (logits).
#[derive(Debug, Clone, PartialEq)]
pub struct ReluMlp {
    pub layers: Vec<(Array2<f64>, Array1<f64>)>,
}

impl ReluMlp {
    /// Checks the shapes and values, then wraps the layers.
    pub fn new(layers: Vec<(Array2<f64>, Array1<f64>)>) -> Result<Self> {
        let net = Self { layers };
        net.check()?;
        Ok(net)
    }

    /// Non-empty, consecutive layers fit, biases match, every entry finite.
    pub fn check(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(DiagnosticsError::EmptyNetwork);
        }
        for (l, (w, b)) in self.layers.iter().enumerate() {
            if b.len() != w.nrows() {
                return Err(DiagnosticsError::LayerShape {
                    layer: l,
                    what: "bias length",
                    expected: w.nrows(),
                    got: b.len(),
                });
            }
            if l > 0 && w.ncols() != self.layers[l - 1].0.nrows() {
                return Err(DiagnosticsError::LayerShape {
                    layer: l,
                    what: "input width",
                    expected: self.layers[l - 1].0.nrows(),
                    got: w.ncols(),
                });
            }
            check_finite("layer weights", w.view())?;
            check_finite("layer bias", b.view().insert_axis(Axis(1)))?;
        }
        Ok(())
    }

    /// Input dimension.
    pub fn input_dim(&self) -> usize {
        self.layers.first().map_or(0, |(w, _)| w.ncols())
    }

    /// Output dimension (number of logits).
    pub fn output_dim(&self) -> usize {
        self.layers.last().map_or(0, |(w, _)| w.nrows())
    }

    /// Logits for the rows of `x` (n x in) → n x out.
    pub fn forward(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check()?;
        self.check_input(x)?;
        Ok(self.activations(x).pop().unwrap_or_default())
    }

    /// The Jacobian `W_K D_{K−1} ⋯ D_1 W_1` (out x in) at `x`, with `ReLU'(0) = 0`.
    pub fn jacobian(&self, x: ArrayView1<f64>) -> Result<Array2<f64>> {
        self.check()?;
        self.check_input(x.insert_axis(Axis(0)))?;
        Ok(self.jacobian_unchecked(x))
    }

    fn check_input(&self, x: ArrayView2<f64>) -> Result<()> {
        if x.ncols() != self.input_dim() {
            return Err(DiagnosticsError::ShapeMismatch {
                what: "input columns vs network input width",
                expected: self.input_dim(),
                got: x.ncols(),
            });
        }
        check_finite("input", x)
    }

    /// Features of every layer for the rows of `x`: input, hidden activations after ReLU,
    /// logits (checked input).
    pub fn activations_of(&self, x: ArrayView2<f64>) -> Result<Vec<Array2<f64>>> {
        self.check()?;
        self.check_input(x)?;
        Ok(self.activations(x))
    }

    /// Features of every layer: input, hidden activations after ReLU, logits.
    fn activations(&self, x: ArrayView2<f64>) -> Vec<Array2<f64>> {
        let mut out = vec![x.to_owned()];
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let mut z = out[l].dot(&w.t()) + b;
            if l + 1 < self.layers.len() {
                z.mapv_inplace(|v| v.max(0.0));
            }
            out.push(z);
        }
        out
    }

    fn jacobian_unchecked(&self, x: ArrayView1<f64>) -> Array2<f64> {
        let mut h = x.to_owned();
        let mut jac: Option<Array2<f64>> = None;
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let z = w.dot(&h) + b;
            let mut j = match &jac {
                None => w.clone(),
                Some(prev) => w.dot(prev),
            };
            if l + 1 < self.layers.len() {
                for (r, &zr) in z.iter().enumerate() {
                    if zr <= 0.0 {
                        j.row_mut(r).fill(0.0);
                    }
                }
                h = z.mapv(|v| v.max(0.0));
            }
            jac = Some(j);
        }
        jac.unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Spectral norms
// ---------------------------------------------------------------------------------------------

/// Settings of the power iteration for `σ_max(W)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PowerIteration {
    /// Seed of the random start vector.
    pub seed: u64,
    /// Stop when the estimate changes by at most `tol` relative in one step.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
}

impl Default for PowerIteration {
    fn default() -> Self {
        Self {
            seed: 0,
            tol: 1e-13,
            max_iter: 100_000,
        }
    }
}

impl PowerIteration {
    fn check(&self) -> Result<()> {
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(DiagnosticsError::InvalidParameter {
                name: "tol",
                value: self.tol,
                allowed: "finite and > 0",
            });
        }
        if self.max_iter == 0 {
            return Err(DiagnosticsError::InvalidParameter {
                name: "max_iter",
                value: 0.0,
                allowed: "at least 1",
            });
        }
        Ok(())
    }
}

/// `σ_max(W)` by power iteration on `WᵀW` from a seeded Gaussian start: `v ← WᵀWv/‖WᵀWv‖`,
/// `σ = ‖Wv‖`. The estimate rises monotonically to σ_max (it is `‖Wv‖` for a unit `v`, so
/// never above it); the error after k steps is of order `(σ₂/σ₁)^{2k}`.
///
/// Errors: non-finite entries, bad settings.
pub fn spectral_norm(w: ArrayView2<f64>, params: &PowerIteration) -> Result<f64> {
    params.check()?;
    check_finite("matrix", w)?;
    Ok(power_iteration(w, params))
}

fn power_iteration(w: ArrayView2<f64>, params: &PowerIteration) -> f64 {
    let cols = w.ncols();
    if cols == 0 || w.nrows() == 0 {
        return 0.0;
    }
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut v: Array1<f64> = Array1::from_shape_fn(cols, |_| StandardNormal.sample(&mut rng));
    let norm = v.dot(&v).sqrt();
    v /= norm;
    let mut sigma = 0.0;
    for _ in 0..params.max_iter {
        let u = w.dot(&v);
        let next = u.dot(&u).sqrt();
        let g = w.t().dot(&u);
        let gn = g.dot(&g).sqrt();
        if gn == 0.0 {
            return next;
        }
        v = g / gn;
        let done = (next - sigma).abs() <= params.tol * next;
        sigma = next;
        if done {
            break;
        }
    }
    let u = w.dot(&v);
    u.dot(&u).sqrt().max(sigma)
}

/// `σ_max` of a matrix: Jacobi on the smaller Gram matrix when that is at most
/// `JACOBI_LIMIT` wide, else converged power iteration.
fn spectral_norm_accurate(m: ArrayView2<f64>) -> f64 {
    let (r, c) = m.dim();
    if r == 0 || c == 0 {
        return 0.0;
    }
    if r.min(c) <= JACOBI_LIMIT {
        let g = if c <= r { m.t().dot(&m) } else { m.dot(&m.t()) };
        sym_max_eigenvalue(g).max(0.0).sqrt()
    } else {
        power_iteration(m, &PowerIteration::default())
    }
}

const JACOBI_LIMIT: usize = 64;

/// Largest eigenvalue of a symmetric matrix by cyclic Jacobi rotations.
fn sym_max_eigenvalue(a: Array2<f64>) -> f64 {
    let (vals, _) = jacobi_eigen(a, false);
    vals.into_iter().fold(f64::NEG_INFINITY, f64::max)
}

/// Eigenvalues (and eigenvectors as columns, when asked) of a symmetric matrix by cyclic
/// Jacobi rotations, accurate to a few ulps of the largest eigenvalue.
fn jacobi_eigen(mut a: Array2<f64>, vectors: bool) -> (Vec<f64>, Option<Array2<f64>>) {
    let k = a.nrows();
    let mut v = vectors.then(|| Array2::eye(k));
    for _sweep in 0..100 {
        let mut off = 0.0;
        let mut diag = 0.0;
        for p in 0..k {
            diag += a[[p, p]] * a[[p, p]];
            for q in p + 1..k {
                off += a[[p, q]] * a[[p, q]];
            }
        }
        if off <= 1e-34 * diag || off == 0.0 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[[r, p]], a[[r, q]]);
                    a[[r, p]] = c * arp - s * arq;
                    a[[r, q]] = s * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[[p, r]], a[[q, r]]);
                    a[[p, r]] = c * apr - s * aqr;
                    a[[q, r]] = s * apr + c * aqr;
                }
                if let Some(v) = v.as_mut() {
                    for r in 0..k {
                        let (vrp, vrq) = (v[[r, p]], v[[r, q]]);
                        v[[r, p]] = c * vrp - s * vrq;
                        v[[r, q]] = s * vrp + c * vrq;
                    }
                }
            }
        }
    }
    ((0..k).map(|i| a[[i, i]]).collect(), v)
}

// ---------------------------------------------------------------------------------------------
// Upper bounds
// ---------------------------------------------------------------------------------------------

/// Upper bound `L ≤ ∏_l ‖W_l‖₂` (ReLU is 1-Lipschitz, norms are submultiplicative), each
/// spectral norm by [`spectral_norm`] with seed `params.seed + l`. Cheap and usually loose
/// (several-fold on random nets). Power iteration approaches each norm from below, so the bound
/// holds up to the relative tolerance `tol` per layer once converged.
///
/// Errors: invalid network or settings.
pub fn product_upper_bound(net: &ReluMlp, params: &PowerIteration) -> Result<LipschitzEstimate> {
    let start = Instant::now();
    net.check()?;
    params.check()?;
    let mut value = 1.0;
    for (l, (w, _)) in net.layers.iter().enumerate() {
        let p = PowerIteration {
            seed: params.seed.wrapping_add(l as u64),
            ..*params
        };
        value *= power_iteration(w.view(), &p);
    }
    Ok(LipschitzEstimate {
        value,
        kind: BoundKind::UpperBound,
        scope: Scope::Global,
        method: format!(
            "product of {} layer spectral norms (power iteration, tol {:e})",
            net.layers.len(),
            params.tol
        ),
        seconds: seconds_since(start),
    })
}

/// Settings of [`seqlip_upper_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeqLipParams {
    /// Hidden layers up to this width are maximised exactly over all `2^width` patterns
    /// (about a second at 16); wider ones use the certified relaxation.
    pub max_exact_width: usize,
}

impl Default for SeqLipParams {
    fn default() -> Self {
        Self { max_exact_width: 16 }
    }
}

/// SeqLip-style upper bound (Virmaux & Scaman 2018) with exact pairwise maximisation.
///
/// Bounds `max over all 0/1 diagonals D_l of ‖W_K D_{K−1} ⋯ D_1 W_1‖₂`, which is ≥ L because
/// every region's Jacobian has that form. With thin SVDs `W_l = U_l Σ_l V_lᵀ`, the orthogonal
/// factors can be dropped at the ends and `Σ_l` split as `Σ_l^{1/2} Σ_l^{1/2}` inside, so
/// `‖J‖ ≤ ∏_{l<K} ‖Σ̃_{l+1} V_{l+1}ᵀ D_l U_l Σ̃_l‖` where each `D_l` occurs in one factor only;
/// hence the max over patterns is the product of per-factor maxima. A factor's norm is convex
/// in the diagonal, so over `[0,1]^n` its max sits at a vertex:
/// * width ≤ `max_exact_width`: all `2^n` vertices (Gray code, rank-one updates), exact;
/// * wider: `min(‖A‖‖B‖, ‖|A||B|‖)` for the factor `A D B`, certified because
///   `|A D B| ≤ |A||B|` entrywise and the spectral norm is monotone on non-negative matrices.
///
/// Each factor is at most `‖A‖‖B‖`, whose product over factors is `∏‖W_l‖`, so this never
/// exceeds [`product_upper_bound`]. For one hidden layer with `W_1` of full row rank every
/// pattern is realisable and the bound equals `L`; a network with a single (linear) layer gets
/// its exact `‖W_1‖₂`, labelled [`BoundKind::Exact`]. Upper bound up to the ~1e-14 relative
/// accuracy of the Jacobi eigen-solver.
///
/// Errors: invalid network; LAPACK failure in an SVD.
pub fn seqlip_upper_bound(net: &ReluMlp, params: &SeqLipParams) -> Result<LipschitzEstimate> {
    let start = Instant::now();
    net.check()?;
    if params.max_exact_width > 24 {
        return Err(DiagnosticsError::InvalidParameter {
            name: "max_exact_width",
            value: params.max_exact_width as f64,
            allowed: "at most 24 (2^24 patterns per layer)",
        });
    }
    let k = net.layers.len();
    let mut svds = Vec::with_capacity(k);
    for (w, _) in &net.layers {
        svds.push(thin_svd(w)?);
    }
    if k == 1 {
        let value = svds[0].1.iter().copied().fold(0.0, f64::max);
        return Ok(LipschitzEstimate {
            value,
            kind: BoundKind::Exact,
            scope: Scope::Global,
            method: "spectral norm of a single linear layer (SVD)".into(),
            seconds: seconds_since(start),
        });
    }
    let mut value = 1.0;
    let mut exact_pairs = 0;
    for l in 0..k - 1 {
        // Factor between layer l and l + 1: A = Σ̃_{l+1} V_{l+1}ᵀ (r' x n), B = U_l Σ̃_l (n x r).
        let (u_l, s_l, _) = &svds[l];
        let (_, s_next, vt_next) = &svds[l + 1];
        let pow_next = if l + 1 == k - 1 { 1.0 } else { 0.5 };
        let pow_l = if l == 0 { 1.0 } else { 0.5 };
        let mut a = vt_next.clone();
        for (mut row, &s) in a.rows_mut().into_iter().zip(s_next) {
            row *= s.powf(pow_next);
        }
        let mut b = u_l.clone();
        for (mut col, &s) in b.columns_mut().into_iter().zip(s_l) {
            col *= s.powf(pow_l);
        }
        let width = b.nrows();
        let factor = if width <= params.max_exact_width {
            exact_pairs += 1;
            max_over_patterns(&a, &b)
        } else {
            let plain = spectral_norm_accurate(a.view()) * spectral_norm_accurate(b.view());
            let abs = spectral_norm_accurate(a.mapv(f64::abs).dot(&b.mapv(f64::abs)).view());
            plain.min(abs)
        };
        value *= factor;
    }
    Ok(LipschitzEstimate {
        value,
        kind: BoundKind::UpperBound,
        scope: Scope::Global,
        method: format!(
            "SeqLip pairwise bound: {exact_pairs} of {} hidden layers maximised exactly over all \
             activation patterns, the rest by the |A||B| relaxation",
            k - 1
        ),
        seconds: seconds_since(start),
    })
}

/// Thin SVD `W = U diag(s) Vᵀ` with `r = min(out, in)` columns of U and rows of Vᵀ.
fn thin_svd(w: &Array2<f64>) -> Result<(Array2<f64>, Vec<f64>, Array2<f64>)> {
    let (m, n) = w.dim();
    let r = m.min(n);
    let (u, s, vt) = w.svd(true, true).map_err(|e| DiagnosticsError::Linalg {
        what: "SVD of a layer",
        message: e.to_string(),
    })?;
    let (u, vt) = match (u, vt) {
        (Some(u), Some(vt)) => (u, vt),
        _ => {
            return Err(DiagnosticsError::Linalg {
                what: "SVD of a layer",
                message: "singular vectors missing".into(),
            })
        }
    };
    Ok((
        u.slice(ndarray::s![.., ..r]).to_owned(),
        s.to_vec(),
        vt.slice(ndarray::s![..r, ..]).to_owned(),
    ))
}

/// `max over σ ∈ {0,1}^n of ‖A diag(σ) B‖₂`, by Gray code within blocks of fixed high bits
/// (blocks run in parallel; a max does not depend on their order).
fn max_over_patterns(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let n = b.nrows();
    let high_bits = n.min(6);
    let low_bits = n - high_bits;
    (0u64..1 << high_bits)
        .into_par_iter()
        .map(|high| {
            let base = high << low_bits;
            let mut m = pattern_matrix(a, b, base);
            let mut best = spectral_norm_accurate(m.view());
            let mut sigma = base;
            for g in 1u64..1 << low_bits {
                let j = g.trailing_zeros() as usize;
                sigma ^= 1 << j;
                if g % 4096 == 0 {
                    // Refresh to keep the rank-one updates from drifting.
                    m = pattern_matrix(a, b, sigma);
                } else {
                    let sign = if sigma >> j & 1 == 1 { 1.0 } else { -1.0 };
                    let (col, row) = (a.column(j), b.row(j));
                    for (r, &ar) in col.iter().enumerate() {
                        let f = sign * ar;
                        for (c, &bc) in row.iter().enumerate() {
                            m[[r, c]] += f * bc;
                        }
                    }
                }
                best = best.max(spectral_norm_accurate(m.view()));
            }
            best
        })
        .reduce(|| 0.0, f64::max)
}

/// `A diag(σ) B` for the bit pattern `sigma` (bit j = unit j active).
fn pattern_matrix(a: &Array2<f64>, b: &Array2<f64>, sigma: u64) -> Array2<f64> {
    let mut scaled = a.clone();
    for j in 0..b.nrows() {
        if sigma >> j & 1 == 0 {
            scaled.column_mut(j).fill(0.0);
        }
    }
    scaled.dot(b)
}

// ---------------------------------------------------------------------------------------------
// Exact value for one hidden layer
// ---------------------------------------------------------------------------------------------

/// Largest input dimension accepted by [`exact_one_hidden_layer`].
pub const EXACT_MAX_INPUT_DIM: usize = 3;
/// Cap on the candidate points [`exact_one_hidden_layer`] examines.
const EXACT_MAX_CANDIDATES: usize = 50_000_000;

/// Exact global Lipschitz constant of a one-hidden-layer ReLU net `W_2 relu(W_1 x + b_1) + b_2`
/// with input dimension ≤ 3: `L = max over realisable activation patterns m of
/// ‖W_2 diag(m) W_1‖₂`, enumerating the regions of the hyperplane arrangement
/// `{x : w_jᵀx + b_j = 0}`.
///
/// Region enumeration (exact, no sampling). Work in the row space of `W_1` (rank r ≤ 3; the net
/// is constant along its complement), normalise each hyperplane to a unit normal, and clip to a
/// box `|z_c| < R` with R beyond every vertex of the arrangement, so every region meets it. For
/// a region with signs s, the Chebyshev-centre LP `max t s.t. s_j(ŵ_jᵀz + b̂_j) ≥ t, box faces
/// ≥ t` has an optimal vertex where r + 1 of these constraints are tight, with `t` = the
/// region's inradius > 0. So solving *every* choice of r + 1 constraints (and signs) as
/// equalities yields a point strictly inside every region; conversely every candidate point
/// lying off all hyperplanes witnesses the region it lies in. The set of sign patterns of the
/// candidates is therefore exactly the set of regions. Regions with an inradius below 1e-10
/// of the arrangement's scale are treated as degenerate and skipped.
///
/// Errors: not exactly one hidden layer, input dimension > 3, hidden width > 128, too many
/// candidate points (about 50 million: width ~90 at input dimension 3).
pub fn exact_one_hidden_layer(net: &ReluMlp) -> Result<LipschitzEstimate> {
    let start = Instant::now();
    net.check()?;
    let d = net.input_dim();
    if net.layers.len() != 2 || d > EXACT_MAX_INPUT_DIM {
        return Err(DiagnosticsError::Architecture {
            method: "exact_one_hidden_layer",
            needed: "exactly one hidden layer and input dimension at most 3",
            hidden_layers: net.layers.len() - 1,
            input_dim: d,
        });
    }
    let patterns = realisable_patterns(&net.layers[0].0, &net.layers[0].1)?;
    let (w1, w2) = (&net.layers[0].0, &net.layers[1].0);
    let norms: Vec<f64> = patterns
        .par_iter()
        .map(|&mask| {
            let mut masked = w1.clone();
            for j in 0..w1.nrows() {
                if mask >> j & 1 == 0 {
                    masked.row_mut(j).fill(0.0);
                }
            }
            spectral_norm_accurate(w2.dot(&masked).view())
        })
        .collect();
    let value = norms.into_iter().fold(0.0, f64::max);
    Ok(LipschitzEstimate {
        value,
        kind: BoundKind::Exact,
        scope: Scope::Global,
        method: format!(
            "exact: max Jacobian norm over the {} activation regions of the hyperplane arrangement",
            patterns.len()
        ),
        seconds: seconds_since(start),
    })
}

/// The activation patterns (bit j = unit j active) of all full-dimensional regions of
/// `{x : W x + b = 0}`, for input dimension ≤ 3 and at most 128 units.
fn realisable_patterns(w: &Array2<f64>, b: &Array1<f64>) -> Result<Vec<u128>> {
    let Arrangement { fixed, planes, rank: r } = arrangement(w, b)?;
    if planes.is_empty() || r == 0 {
        return Ok(vec![fixed]);
    }
    let big_r = vertex_box(&planes, r);
    interior_patterns(&planes, r, fixed, big_r)
}

/// The hyperplanes `{z : n·z + o = 0}` of a layer's units in the row space of W (rank `rank`),
/// and the pattern bits of units whose normal vanishes (active iff b_j > 0).
struct Arrangement {
    fixed: u128,
    /// (unit normal, offset, unit).
    planes: Vec<(Vec<f64>, f64, usize)>,
    rank: usize,
}

fn arrangement(w: &Array2<f64>, b: &Array1<f64>) -> Result<Arrangement> {
    let (units, d) = w.dim();
    if units > 128 {
        return Err(DiagnosticsError::TooLarge {
            what: "exact_one_hidden_layer hidden width",
            limit: 128,
            got: units,
        });
    }
    // Orthonormal basis Q of the row space (eigenvectors of WᵀW with non-negligible eigenvalue).
    let (vals, vecs) = jacobi_eigen(w.t().dot(w), true);
    let vecs = vecs.unwrap_or_else(|| Array2::eye(d));
    let top = vals.iter().copied().fold(0.0, f64::max);
    let basis: Vec<usize> = (0..d).filter(|&i| vals[i] > 1e-20 * top && top > 0.0).collect();
    let r = basis.len();
    let q = vecs.select(Axis(1), &basis); // d x r
    let reduced = w.dot(&q); // units x r

    // Units whose normal vanishes are constant: active iff b_j > 0.
    let row_norm: Vec<f64> = reduced.rows().into_iter().map(|row| row.dot(&row).sqrt()).collect();
    let max_norm = row_norm.iter().copied().fold(0.0, f64::max);
    let mut fixed: u128 = 0;
    let mut planes: Vec<(Vec<f64>, f64, usize)> = Vec::new(); // (unit normal, offset, unit)
    for j in 0..units {
        if row_norm[j] <= 1e-12 * max_norm || max_norm == 0.0 {
            if b[j] > 0.0 {
                fixed |= 1 << j;
            }
        } else {
            let normal = reduced.row(j).iter().map(|v| v / row_norm[j]).collect();
            planes.push((normal, b[j] / row_norm[j], j));
        }
    }
    Ok(Arrangement { fixed, planes, rank: r })
}

/// A half-width R of a box around the origin beyond every vertex (intersection of r
/// independent hyperplanes).
fn vertex_box(planes: &[(Vec<f64>, f64, usize)], r: usize) -> f64 {
    let m = planes.len();
    let mut vmax: f64 = 0.0;
    for_each_subset(m, r, &mut |idx| {
        let rows: Vec<(Vec<f64>, f64)> = idx
            .iter()
            .map(|&i| (planes[i].0.clone(), -planes[i].1))
            .collect();
        if let Some(z) = solve(rows) {
            vmax = vmax.max(z.iter().fold(0.0f64, |a, v| a.max(v.abs())));
        }
    });
    2.0 * vmax + 1.0
}

/// The patterns of the regions with an interior point: for every choice of r + 1 tight
/// constraints (oriented planes or faces of the box of half-width `big_r`), the point of
/// largest clearance t, kept when t exceeds the margin and no plane passes through it.
fn interior_patterns(planes: &[(Vec<f64>, f64, usize)], r: usize, fixed: u128, big_r: f64) -> Result<Vec<u128>> {
    let m = planes.len();
    let scale = big_r.max(planes.iter().fold(0.0f64, |a, p| a.max(p.1.abs())));
    let margin = 1e-10 * scale;
    // Items: planes 0..m (two orientations each), then box faces ±e_c (2r of them).
    let items = m + 2 * r;
    let candidates = binomial(items, r + 1).saturating_mul(1 << (r + 1));
    if candidates > EXACT_MAX_CANDIDATES {
        return Err(DiagnosticsError::TooLarge {
            what: "exact_one_hidden_layer candidate points",
            limit: EXACT_MAX_CANDIDATES,
            got: candidates,
        });
    }
    let constraint = |item: usize, sign: f64| -> (Vec<f64>, f64) {
        if item < m {
            (planes[item].0.iter().map(|v| sign * v).collect(), sign * planes[item].1)
        } else {
            let c = (item - m) / 2;
            let mut a = vec![0.0; r];
            a[c] = if (item - m).is_multiple_of(2) { 1.0 } else { -1.0 };
            (a, big_r) // a = ±e_c: R ∓ z_c ≥ t written as (−a)ᵀz + R ≥ t below.
        }
    };
    let found: BTreeSet<u128> = (0..items)
        .into_par_iter()
        .map(|first| {
            let mut local = BTreeSet::new();
            for_each_subset_from(items, r + 1, first, &mut |idx| {
                let signed = idx.iter().filter(|&&i| i < m).count();
                for signs in 0u32..1 << signed {
                    // Tight constraint aᵀz + β = t  ⇔  [aᵀ, −1](z, t) = −β.
                    let mut k = 0;
                    let rows: Vec<(Vec<f64>, f64)> = idx
                        .iter()
                        .map(|&i| {
                            let (mut a, beta) = if i < m {
                                let s = if signs >> k & 1 == 1 { 1.0 } else { -1.0 };
                                k += 1;
                                constraint(i, s)
                            } else {
                                let (a, beta) = constraint(i, 1.0);
                                (a.iter().map(|v| -v).collect(), beta)
                            };
                            a.push(-1.0);
                            (a, -beta)
                        })
                        .collect();
                    let Some(sol) = solve(rows) else { continue };
                    if sol[r] <= margin {
                        continue;
                    }
                    let z = &sol[..r];
                    let mut mask = fixed;
                    let mut clear = true;
                    for (normal, offset, unit) in planes {
                        let v: f64 = normal.iter().zip(z).map(|(a, b)| a * b).sum::<f64>() + offset;
                        if v.abs() <= margin {
                            clear = false;
                            break;
                        }
                        if v > 0.0 {
                            mask |= 1 << unit;
                        }
                    }
                    if clear {
                        local.insert(mask);
                    }
                }
            });
            local
        })
        .reduce(BTreeSet::new, |mut a, b| {
            a.extend(b);
            a
        });
    Ok(found.into_iter().collect())
}

/// Solves the square system given as rows `(coefficients, rhs)` by Gaussian elimination with
/// partial pivoting; `None` when (numerically) singular.
fn solve(mut rows: Vec<(Vec<f64>, f64)>) -> Option<Vec<f64>> {
    let n = rows.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&a, &b| rows[a].0[col].abs().total_cmp(&rows[b].0[col].abs()))?;
        if rows[piv].0[col].abs() < 1e-12 {
            return None;
        }
        rows.swap(col, piv);
        for r in col + 1..n {
            let f = rows[r].0[col] / rows[col].0[col];
            if f != 0.0 {
                for c in col..n {
                    let v = rows[col].0[c];
                    rows[r].0[c] -= f * v;
                }
                let v = rows[col].1;
                rows[r].1 -= f * v;
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| rows[r].0[c] * x[c]).sum();
        x[r] = (rows[r].1 - s) / rows[r].0[r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn binomial(n: usize, k: usize) -> usize {
    if k > n {
        return 0;
    }
    (0..k).fold(1usize, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

/// Calls `f` on every increasing `k`-subset of `0..n`.
fn for_each_subset(n: usize, k: usize, f: &mut dyn FnMut(&[usize])) {
    for first in 0..n {
        for_each_subset_from(n, k, first, f);
    }
}

/// Calls `f` on every increasing `k`-subset of `0..n` whose smallest element is `first`.
fn for_each_subset_from(n: usize, k: usize, first: usize, f: &mut dyn FnMut(&[usize])) {
    if k == 0 || first + k > n {
        return;
    }
    let mut idx: Vec<usize> = (first..first + k).collect();
    loop {
        f(&idx);
        // Advance the last k − 1 positions lexicographically; the first stays fixed.
        let mut i = k - 1;
        loop {
            if i == 0 {
                return;
            }
            if idx[i] < n - (k - i) {
                idx[i] += 1;
                for j in i + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
            i -= 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lower bound
// ---------------------------------------------------------------------------------------------

/// Settings of [`jacobian_lower_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LocalSearchParams {
    /// Seed of the search.
    pub seed: u64,
    /// How many of the best data points start a search.
    pub starts: usize,
    /// Proposals per start.
    pub steps: usize,
    /// Initial step length, relative to the RMS norm of the data points.
    pub step_size: f64,
}

impl Default for LocalSearchParams {
    fn default() -> Self {
        Self {
            seed: 0,
            starts: 8,
            steps: 300,
            step_size: 0.1,
        }
    }
}

/// Lower bound on the global `L`: `max ‖J(x)‖₂` over the rows of `points` (n x in) and the
/// points visited by a seeded local search. Any point gives `‖J(x)‖₂ ≤ L` (up to points lying
/// exactly on a region boundary, where `ReLU'(0) = 0` picks one adjacent region), and power
/// iteration only under-estimates `‖J(x)‖₂`, so the value is a lower bound however the search
/// goes.
///
/// Search: `‖J(x)‖` is piecewise constant for ReLU nets, so its gradient is zero almost
/// everywhere and gradient ascent cannot move. From each of the `starts` best data points we
/// run a seeded random-search hill climb: propose `x + h·g/√d` (g standard normal), accept
/// if the norm does not drop (equal values let it cross plateaus), double `h` after an
/// improvement and halve it after a rejection; every fifth proposal jumps 10× further, so
/// the search also reaches the unbounded outer regions.
///
/// Errors: invalid network, wrong input width, non-finite input, no points, bad settings.
pub fn jacobian_lower_bound(
    net: &ReluMlp,
    points: ArrayView2<f64>,
    params: &LocalSearchParams,
) -> Result<LipschitzEstimate> {
    let start = Instant::now();
    net.check()?;
    net.check_input(points)?;
    if points.nrows() == 0 {
        return Err(DiagnosticsError::TooFewSamples {
            what: "jacobian_lower_bound",
            needed: 1,
            got: 0,
        });
    }
    if !(params.step_size > 0.0 && params.step_size.is_finite()) {
        return Err(DiagnosticsError::InvalidParameter {
            name: "step_size",
            value: params.step_size,
            allowed: "finite and > 0",
        });
    }
    let power = PowerIteration {
        seed: params.seed,
        tol: 1e-12,
        max_iter: 10_000,
    };
    let jnorm = |x: ArrayView1<f64>| power_iteration(net.jacobian_unchecked(x).view(), &power);
    let on_data: Vec<f64> = points.outer_iter().into_par_iter().map(jnorm).collect();
    let mut best = on_data.iter().copied().fold(0.0, f64::max);

    let mut ranked: Vec<usize> = (0..points.nrows()).collect();
    ranked.sort_by(|&a, &b| on_data[b].total_cmp(&on_data[a]).then(a.cmp(&b)));
    ranked.truncate(params.starts);
    let d = points.ncols() as f64;
    let rms = (points.iter().map(|v| v * v).sum::<f64>() / points.nrows() as f64).sqrt();
    let scale = if rms > 0.0 { rms } else { 1.0 };
    let seeds = item_seeds(params.seed, ranked.len());
    let searched: Vec<f64> = ranked
        .par_iter()
        .zip(seeds)
        .map(|(&i, s)| {
            let mut rng = StdRng::seed_from_u64(s);
            let mut x = points.row(i).to_owned();
            let mut value = on_data[i];
            let mut best_here = value;
            let mut h = params.step_size * scale;
            for step in 0..params.steps {
                let jump = if step % 5 == 4 { 10.0 } else { 1.0 };
                let g: Array1<f64> = Array1::from_shape_fn(x.len(), |_| StandardNormal.sample(&mut rng));
                let proposal = &x + &(g * (jump * h / d.sqrt()));
                let v = jnorm(proposal.view());
                best_here = best_here.max(v);
                if v >= value {
                    if v > value {
                        h = (h * 2.0).min(1e6 * scale);
                    }
                    x = proposal;
                    value = v;
                } else {
                    h = (h * 0.5).max(1e-9 * scale);
                }
            }
            best_here
        })
        .collect();
    best = searched.into_iter().fold(best, f64::max);
    Ok(LipschitzEstimate {
        value: best,
        kind: BoundKind::LowerBound,
        scope: Scope::Global,
        method: format!(
            "max Jacobian spectral norm over {} data points and a random-search hill climb \
             ({} starts x {} steps)",
            points.nrows(),
            params.starts.min(points.nrows()),
            params.steps
        ),
        seconds: seconds_since(start),
    })
}

// ---------------------------------------------------------------------------------------------
// Black-box models
// ---------------------------------------------------------------------------------------------

/// Local sensitivity of a black-box model `f` (rows in → rows out, e.g. a forest's
/// probabilities): `max ‖f(x + δ) − f(x)‖₂ / ‖δ‖₂` over the rows x of `points` and
/// `n_directions` seeded directions each, with δ uniform on the sphere of `radius`.
///
/// Heuristic, local: every ratio is a true difference quotient, so the value is at most the
/// Lipschitz constant on the balls — but for discontinuous models (forests are piecewise
/// constant) that constant is infinite, and the number describes sensitivity at the scale
/// `radius` only; it grows as `radius` shrinks across a jump. `f` is called twice, on the
/// points and on all perturbed points stacked.
///
/// Errors: no points, non-finite points, `radius` not finite and > 0, `n_directions = 0`,
/// `f` returning the wrong number of rows or inconsistent columns.
pub fn finite_difference_local(
    f: &dyn Fn(ArrayView2<f64>) -> Array2<f64>,
    points: ArrayView2<f64>,
    radius: f64,
    n_directions: usize,
    seed: u64,
) -> Result<LipschitzEstimate> {
    let start = Instant::now();
    let (n, d) = points.dim();
    if n == 0 {
        return Err(DiagnosticsError::TooFewSamples {
            what: "finite_difference_local",
            needed: 1,
            got: 0,
        });
    }
    if d == 0 {
        return Err(DiagnosticsError::NoColumns { what: "points" });
    }
    check_finite("points", points)?;
    if !(radius > 0.0 && radius.is_finite()) {
        return Err(DiagnosticsError::InvalidParameter {
            name: "radius",
            value: radius,
            allowed: "finite and > 0",
        });
    }
    if n_directions == 0 {
        return Err(DiagnosticsError::InvalidParameter {
            name: "n_directions",
            value: 0.0,
            allowed: "at least 1",
        });
    }
    let base = f(points);
    let out = base.ncols();
    if base.nrows() != n {
        return Err(DiagnosticsError::ModelOutputShape {
            expected_rows: n,
            expected_cols: out,
            got_rows: base.nrows(),
            got_cols: out,
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut moved = Array2::zeros((n * n_directions, d));
    let mut step_norm = vec![0.0; n * n_directions];
    for i in 0..n {
        for j in 0..n_directions {
            let row = i * n_directions + j;
            let mut g: Array1<f64> = Array1::from_shape_fn(d, |_| StandardNormal.sample(&mut rng));
            let gn = g.dot(&g).sqrt();
            g *= radius / gn;
            let target = &points.row(i) + &g;
            // The realised step after rounding, so the ratio is an honest difference quotient.
            let delta = &target - &points.row(i);
            step_norm[row] = delta.dot(&delta).sqrt();
            moved.row_mut(row).assign(&target);
        }
    }
    let shifted = f(moved.view());
    if shifted.nrows() != n * n_directions || shifted.ncols() != out {
        return Err(DiagnosticsError::ModelOutputShape {
            expected_rows: n * n_directions,
            expected_cols: out,
            got_rows: shifted.nrows(),
            got_cols: shifted.ncols(),
        });
    }
    let mut value: f64 = 0.0;
    for (row, (moved_out, &step)) in shifted.rows().into_iter().zip(&step_norm).enumerate() {
        let diff = &moved_out - &base.row(row / n_directions);
        if step > 0.0 {
            value = value.max(diff.dot(&diff).sqrt() / step);
        }
    }
    Ok(LipschitzEstimate {
        value,
        kind: BoundKind::Heuristic,
        scope: Scope::Local { points: n, radius },
        method: format!("finite differences, {n_directions} random directions per point"),
        seconds: seconds_since(start),
    })
}

// ---------------------------------------------------------------------------------------------
// LONDON
// ---------------------------------------------------------------------------------------------

/// LONDON's measurement with its per-layer parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LondonEstimate {
    /// `∏_l σ_l`, labelled [`BoundKind::Heuristic`], scope the data points (radius 0).
    pub estimate: LipschitzEstimate,
    /// `σ_l = σ_max(TM_l)` for l = 0..K−1 (input→first hidden, …, last hidden→logits).
    pub per_layer: Vec<f64>,
}

/// The "transmitting matrix" approximation of LONDON (Shang et al., ICCV 2021), adapted to an
/// MLP: with `F_0 = x` (n x d), `F_l` the post-ReLU features of hidden layer l and `F_K` the
/// logits, `TM_l = F_lᵀ F_{l+1} / n` (the batch plays the role of LONDON's spatial positions),
/// `σ_l = σ_max(TM_l)` by `power_iterations` steps of `v ← K v/‖K v‖` on `K = TM TMᵀ` from a
/// seeded start (the released CIFAR code uses 10 from a random start), and the value `∏ σ_l`
/// (the chain `L ≤ ∏ Lip(f_l)` with σ_l standing in for `‖W_l‖₂`).
///
/// **Heuristic, not a bound.** For a linear layer `F_{l+1} = F_l W_lᵀ`,
/// `TM_l = C_l W_lᵀ` with `C_l = F_lᵀF_l/n`: σ_l equals `‖W_l‖₂` only for whitened features
/// (`C_l = I`) and otherwise mixes the feature scale with the layer gain. Scaling the input by
/// c scales `TM_0` by c² (and, for bias-free nets, every `TM_l`), while `L` does not change.
///
/// Errors: invalid network, wrong input width, non-finite input, no rows,
/// `power_iterations = 0`.
pub fn london_transmitting_matrix(
    net: &ReluMlp,
    x: ArrayView2<f64>,
    power_iterations: usize,
    seed: u64,
) -> Result<LondonEstimate> {
    let start = Instant::now();
    net.check()?;
    net.check_input(x)?;
    let n = x.nrows();
    if n == 0 {
        return Err(DiagnosticsError::TooFewSamples {
            what: "london_transmitting_matrix",
            needed: 1,
            got: 0,
        });
    }
    if power_iterations == 0 {
        return Err(DiagnosticsError::InvalidParameter {
            name: "power_iterations",
            value: 0.0,
            allowed: "at least 1",
        });
    }
    let features = net.activations(x);
    let seeds = item_seeds(seed, net.layers.len());
    let mut per_layer = Vec::with_capacity(net.layers.len());
    for l in 0..net.layers.len() {
        let tm = features[l].t().dot(&features[l + 1]) / n as f64; // c_l x c_{l+1}
        let kmat = tm.dot(&tm.t());
        let mut rng = StdRng::seed_from_u64(seeds[l]);
        let mut v: Array1<f64> = Array1::from_shape_fn(kmat.nrows(), |_| StandardNormal.sample(&mut rng));
        for _ in 0..power_iterations {
            let kv = kmat.dot(&v);
            let norm = kv.dot(&kv).sqrt();
            if norm == 0.0 {
                break;
            }
            v = kv / norm;
        }
        let vn = v.dot(&v).sqrt();
        let sigma = if vn > 0.0 {
            let tv = tm.t().dot(&v);
            tv.dot(&tv).sqrt() / vn
        } else {
            0.0
        };
        per_layer.push(sigma);
    }
    let value = per_layer.iter().product();
    Ok(LondonEstimate {
        estimate: LipschitzEstimate {
            value,
            kind: BoundKind::Heuristic,
            scope: Scope::Local {
                points: n,
                radius: 0.0,
            },
            method: format!(
                "LONDON transmitting-matrix product, {power_iterations} power iterations per layer"
            ),
            seconds: seconds_since(start),
        },
        per_layer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn random_net(dims: &[usize], seed: u64, bias: bool) -> ReluMlp {
        let mut rng = StdRng::seed_from_u64(seed);
        let layers = dims
            .windows(2)
            .map(|w| {
                let weight = Array2::from_shape_fn((w[1], w[0]), |_| StandardNormal.sample(&mut rng));
                let b = Array1::from_shape_fn(w[1], |_| {
                    if bias { StandardNormal.sample(&mut rng) } else { 0.0 }
                });
                (weight, b)
            })
            .collect();
        ReluMlp::new(layers).unwrap()
    }

    fn lapack_norm(m: &Array2<f64>) -> f64 {
        let (_, s, _) = m.svd(false, false).unwrap();
        s[0]
    }

    fn gaussian_points(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
    }

    #[test]
    fn power_iteration_and_jacobi_match_lapack_svd() {
        for (i, (r, c)) in [(3, 4), (10, 10), (30, 7), (5, 60), (80, 80)].into_iter().enumerate() {
            let w = gaussian_points(r, c, i as u64);
            let truth = lapack_norm(&w);
            let p = spectral_norm(w.view(), &PowerIteration { seed: 9, ..Default::default() }).unwrap();
            // Required 1e-6 relative; power iteration reaches ~1e-13 on these gaps.
            assert!(((p - truth) / truth).abs() < 1e-6, "power {p} vs {truth}");
            assert!(p <= truth * (1.0 + 1e-12), "power iteration must approach from below");
            let j = spectral_norm_accurate(w.view());
            // Jacobi on the Gram matrix: relative error a few ulps of σ² → 1e-12 is generous.
            assert!(((j - truth) / truth).abs() < 1e-12, "jacobi {j} vs {truth}");
        }
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let net = random_net(&[4, 7, 5, 3], 1, true);
        let x = array![0.3, -0.2, 0.5, 1.1];
        let jac = net.jacobian(x.view()).unwrap();
        let h = 1e-6;
        for c in 0..4 {
            let mut xp = x.clone();
            xp[c] += h;
            let mut xm = x.clone();
            xm[c] -= h;
            let fp = net.forward(xp.insert_axis(Axis(0)).view()).unwrap();
            let fm = net.forward(xm.insert_axis(Axis(0)).view()).unwrap();
            for r in 0..3 {
                let fd = (fp[[0, r]] - fm[[0, r]]) / (2.0 * h);
                // Central differences are exact on a linear piece up to rounding (~1e-10 at
                // h = 1e-6); x is far from any kink with this seed.
                assert!((fd - jac[[r, c]]).abs() < 1e-7, "entry ({r},{c})");
            }
        }
    }

    #[test]
    fn region_counts_match_arrangement_formulas() {
        // Hyperplanes in general position: 1-D n + 1 intervals, 2-D 1 + n + C(n,2) regions,
        // 3-D 1 + n + C(n,2) + C(n,3) (Buck/Zaslavsky).
        for (d, units, expected) in [(1, 6, 7), (2, 6, 22), (3, 6, 42), (2, 10, 56), (3, 9, 130)] {
            let w = gaussian_points(units, d, 40 + d as u64);
            let b = gaussian_points(units, 1, 50 + d as u64).column(0).to_owned();
            let patterns = realisable_patterns(&w, &b).unwrap();
            assert_eq!(patterns.len(), expected, "d {d} units {units}");
        }
        // Degenerate: three lines through the origin give 6 regions, not 7; a duplicated
        // hyperplane adds none; a zero row is a constant unit (on iff its bias > 0).
        let w = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 0.0]];
        let b = array![0.0, 0.0, 0.0, 0.0, 0.5];
        let patterns = realisable_patterns(&w, &b).unwrap();
        assert_eq!(patterns.len(), 6);
        assert!(patterns.iter().all(|&m| m >> 4 & 1 == 1));
        // Rank-deficient first layer in 3-D (all normals in one plane) works in its row space.
        let w = array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]];
        let b = array![0.1, -0.2, 0.3];
        assert_eq!(realisable_patterns(&w, &b).unwrap().len(), 7);
    }

    #[test]
    fn enumerated_regions_contain_every_sampled_pattern() {
        // Independent check of completeness: every pattern met by dense sampling (grid plus far
        // points) must be among the enumerated regions.
        let w = gaussian_points(12, 2, 60);
        let b = gaussian_points(12, 1, 61).column(0).to_owned();
        let patterns: BTreeSet<u128> = realisable_patterns(&w, &b).unwrap().into_iter().collect();
        let mut sampled = BTreeSet::new();
        let mut probe = |x: [f64; 2]| {
            let mut mask = 0u128;
            for j in 0..12 {
                if w[[j, 0]] * x[0] + w[[j, 1]] * x[1] + b[j] > 0.0 {
                    mask |= 1 << j;
                }
            }
            sampled.insert(mask);
        };
        for i in 0..=800 {
            for j in 0..=800 {
                probe([-20.0 + 0.05 * i as f64, -20.0 + 0.05 * j as f64]);
            }
        }
        for a in 0..3600 {
            let t = a as f64 * std::f64::consts::TAU / 3600.0;
            probe([1e6 * t.cos(), 1e6 * t.sin()]);
        }
        assert!(sampled.is_subset(&patterns), "sampling found a region the enumeration missed");
        // 1 + 12 + 66 = 79 regions in general position; sampling finds most of them.
        assert_eq!(patterns.len(), 79);
    }

    /// Ratios to the exact value measured on these nets (lower / SeqLip / product):
    /// 2-6-3: 1.000 / 1.125 / 2.52; 3-8-2: 1.000 / 1.000 / 2.06; 1-5-2: 1.000 / 1.517 / 3.08;
    /// 2-12-4: 0.819 / 1.075 / 1.57 (the largest region is a small cell ~240 units from the
    /// data, which the local search does not reach); 3-3-2: 1.000 / 1.000 / 1.27;
    /// 3-10-10: 0.991 / 1.000 / 1.49. Run with `--nocapture` to print them.
    #[test]
    fn lower_exact_seqlip_product_are_ordered_on_random_nets() {
        for (seed, dims) in [
            (1u64, [2usize, 6, 3]),
            (2, [3, 8, 2]),
            (3, [1, 5, 2]),
            (4, [2, 12, 4]),
            (5, [3, 3, 2]),
            (6, [3, 10, 10]),
        ] {
            let net = random_net(&dims, seed, true);
            let points = gaussian_points(200, dims[0], seed + 100);
            let lower = jacobian_lower_bound(&net, points.view(), &LocalSearchParams::default()).unwrap();
            let exact = exact_one_hidden_layer(&net).unwrap();
            let seq = seqlip_upper_bound(&net, &SeqLipParams::default()).unwrap();
            let prod = product_upper_bound(&net, &PowerIteration::default()).unwrap();
            // 1e-9 relative slack: the four values come from different floating-point paths
            // (power iteration, Jacobi) that agree to ~1e-12 where the math says "equal".
            let le = |a: f64, b: f64| a <= b * (1.0 + 1e-9);
            assert!(le(lower.value, exact.value), "{dims:?}: lower {} > exact {}", lower.value, exact.value);
            assert!(le(exact.value, seq.value), "{dims:?}: exact {} > seqlip {}", exact.value, seq.value);
            assert!(le(seq.value, prod.value), "{dims:?}: seqlip {} > product {}", seq.value, prod.value);
            assert_eq!(
                (lower.kind, exact.kind, seq.kind, prod.kind),
                (BoundKind::LowerBound, BoundKind::Exact, BoundKind::UpperBound, BoundKind::UpperBound)
            );
            if dims[1] <= dims[0] {
                // W_1 full row rank: every pattern is realisable, SeqLip is exact.
                assert!(((seq.value - exact.value) / exact.value).abs() < 1e-9);
            }
            println!(
                "{dims:?}: lower/exact {:.4}, seqlip/exact {:.4}, product/exact {:.4}",
                lower.value / exact.value,
                seq.value / exact.value,
                prod.value / exact.value
            );
        }
    }

    #[test]
    fn seqlip_is_strictly_tighter_than_the_product_and_relaxation_is_valid() {
        let net = random_net(&[3, 10, 8, 4], 7, true);
        let prod = product_upper_bound(&net, &PowerIteration::default()).unwrap().value;
        let exact_pairs = seqlip_upper_bound(&net, &SeqLipParams::default()).unwrap().value;
        let relaxed = seqlip_upper_bound(&net, &SeqLipParams { max_exact_width: 0 }).unwrap().value;
        let lower = jacobian_lower_bound(&net, gaussian_points(300, 3, 8).view(), &LocalSearchParams::default())
            .unwrap()
            .value;
        assert!(exact_pairs < prod * (1.0 - 1e-3), "seqlip {exact_pairs} vs product {prod}");
        assert!(exact_pairs <= relaxed * (1.0 + 1e-9) && relaxed <= prod * (1.0 + 1e-9));
        assert!(lower <= exact_pairs * (1.0 + 1e-9));
    }

    #[test]
    fn finite_differences_recover_a_linear_map_and_label_themselves() {
        let w = array![[2.0, 0.0], [0.0, 0.5], [1.0, 1.0]];
        let wc = w.clone();
        let f = move |x: ArrayView2<f64>| x.dot(&wc.t());
        let points = gaussian_points(5, 2, 3);
        let est = finite_difference_local(&f, points.view(), 0.1, 2000, 4).unwrap();
        let truth = lapack_norm(&w);
        // Difference quotients of a linear map are ‖W u‖ ≤ ‖W‖ for unit u; with 10,000 random
        // directions in 2-D the best is within ~1e-6 relative of the top direction
        // (1 − cos of an angle below 1e-3 rad).
        assert!(est.value <= truth * (1.0 + 1e-12) && est.value > truth * (1.0 - 1e-5));
        assert_eq!(est.kind, BoundKind::Heuristic);
        assert_eq!(est.scope, Scope::Local { points: 5, radius: 0.1 });
        // A step function: the quotient is jump / radius, so it grows as the radius shrinks.
        let step = |x: ArrayView2<f64>| x.map_axis(Axis(1), |r| if r[0] > 0.0 { 1.0 } else { 0.0 }).insert_axis(Axis(1));
        let at_jump = array![[0.0, 0.0]];
        let wide = finite_difference_local(&step, at_jump.view(), 1.0, 50, 1).unwrap().value;
        let narrow = finite_difference_local(&step, at_jump.view(), 0.01, 50, 1).unwrap().value;
        assert!((narrow / wide - 100.0).abs() < 1e-9);
        let bad = |x: ArrayView2<f64>| Array2::zeros((x.nrows() + 1, 1));
        assert!(matches!(
            finite_difference_local(&bad, at_jump.view(), 1.0, 3, 1),
            Err(DiagnosticsError::ModelOutputShape { .. })
        ));
    }

    /// `n x d` matrix with `XᵀX / n = I` exactly (up to rounding): √n times orthonormal columns.
    fn whitened(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut x = gaussian_points(n, d, seed);
        for c in 0..d {
            for p in 0..c {
                let proj = x.column(p).dot(&x.column(c));
                let prev = x.column(p).to_owned();
                x.column_mut(c).scaled_add(-proj, &prev);
            }
            let norm = x.column(c).dot(&x.column(c)).sqrt();
            x.column_mut(c).mapv_inplace(|v| v / norm);
        }
        x * (n as f64).sqrt()
    }

    #[test]
    fn london_equals_the_layer_norm_only_for_whitened_inputs() {
        let w = gaussian_points(3, 4, 20);
        let net = ReluMlp::new(vec![(w.clone(), Array1::zeros(3))]).unwrap();
        let sigma_w = lapack_norm(&w);
        let white = whitened(500, 4, 21);
        let est = london_transmitting_matrix(&net, white.view(), 500, 1).unwrap();
        // TM = C Wᵀ with C = I up to rounding: equal to 1e-9 relative after 500 iterations.
        assert!(((est.per_layer[0] - sigma_w) / sigma_w).abs() < 1e-9);
        // Anisotropic input (stds 3, 1, 0.3, 0.1): the estimate mixes in the input scale.
        let stds = [3.0, 1.0, 0.3, 0.1];
        let mut aniso = white.clone();
        for (mut col, s) in aniso.columns_mut().into_iter().zip(stds) {
            col *= s;
        }
        let est = london_transmitting_matrix(&net, aniso.view(), 500, 1).unwrap();
        // Exactly σ_max(diag(s²) Wᵀ) here; far from σ(W).
        let mut cwt = w.t().to_owned();
        for (mut row, s) in cwt.rows_mut().into_iter().zip(stds) {
            row *= s * s;
        }
        assert!(((est.per_layer[0] - lapack_norm(&cwt)) / lapack_norm(&cwt)).abs() < 1e-9);
        assert!(est.per_layer[0] > 2.0 * sigma_w);
        assert_eq!(est.estimate.kind, BoundKind::Heuristic);
    }

    #[test]
    fn london_moves_with_the_input_scale_while_the_lipschitz_constant_does_not() {
        // Bias-free ReLU net: f(cx) = c f(x), so every feature scales by c and every TM by c²;
        // the estimate moves by c^{2K} while L is a property of the weights alone.
        let net = random_net(&[3, 6, 2], 30, false);
        let x = gaussian_points(400, 3, 31);
        let c = 10.0;
        let base = london_transmitting_matrix(&net, x.view(), 200, 2).unwrap().estimate.value;
        let scaled_x = &x * c;
        let scaled = london_transmitting_matrix(&net, scaled_x.view(), 200, 2).unwrap().estimate.value;
        // Relative 1e-9: same power iterations on matrices that differ by the exact factor c².
        assert!(((scaled / base) / c.powi(4) - 1.0).abs() < 1e-9, "ratio {}", scaled / base);
        let exact = exact_one_hidden_layer(&net).unwrap().value;
        let lower = jacobian_lower_bound(&net, x.view(), &LocalSearchParams::default()).unwrap().value;
        let lower_scaled = jacobian_lower_bound(&net, scaled_x.view(), &LocalSearchParams::default()).unwrap().value;
        // J(cx) = J(x) for a bias-free net: the data lower bound does not move either (it
        // visits the same regions; 1e-9 relative as elsewhere), and it stays below L.
        assert!(((lower_scaled - lower) / lower).abs() < 1e-9);
        assert!(lower <= exact * (1.0 + 1e-9));
    }

    #[test]
    fn network_and_argument_errors() {
        assert!(matches!(ReluMlp::new(vec![]), Err(DiagnosticsError::EmptyNetwork)));
        let bad = ReluMlp::new(vec![
            (Array2::zeros((4, 3)), Array1::zeros(4)),
            (Array2::zeros((2, 5)), Array1::zeros(2)),
        ]);
        assert!(matches!(bad, Err(DiagnosticsError::LayerShape { layer: 1, expected: 4, got: 5, .. })));
        let bad_bias = ReluMlp::new(vec![(Array2::zeros((4, 3)), Array1::zeros(3))]);
        assert!(matches!(bad_bias, Err(DiagnosticsError::LayerShape { layer: 0, .. })));
        let deep = random_net(&[2, 3, 3, 2], 1, true);
        assert!(matches!(exact_one_hidden_layer(&deep), Err(DiagnosticsError::Architecture { .. })));
        let wide_input = random_net(&[4, 3, 2], 1, true);
        assert!(matches!(exact_one_hidden_layer(&wide_input), Err(DiagnosticsError::Architecture { input_dim: 4, .. })));
        let net = random_net(&[2, 3, 2], 1, true);
        let wrong = Array2::zeros((5, 3));
        assert!(matches!(
            jacobian_lower_bound(&net, wrong.view(), &LocalSearchParams::default()),
            Err(DiagnosticsError::ShapeMismatch { expected: 2, got: 3, .. })
        ));
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let net = random_net(&[3, 9, 4], 11, true);
        let x = gaussian_points(100, 3, 12);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                (
                    jacobian_lower_bound(&net, x.view(), &LocalSearchParams::default()).unwrap().value,
                    exact_one_hidden_layer(&net).unwrap().value,
                    seqlip_upper_bound(&net, &SeqLipParams::default()).unwrap().value,
                )
            })
        };
        assert_eq!(run(1), run(3));
    }
}
