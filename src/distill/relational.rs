//! Relational KD: the student matches the geometry of a batch, not the teacher's features, so
//! student and teacher widths may differ and no projector is needed.
//!
//! **RKD** (Park et al., CVPR 2019; released `lenscloth/RKD`, `metric/loss.py`):
//! - distance potential ψ_D(i, j) = ‖x_i − x_j‖ / μ, μ the mean of the non-zero pairwise
//!   distances of the batch (B × B, diagonal 0, squared distances clamped at
//!   [`DISTANCE_SQ_FLOOR`] before the square root); [`rkd_distance_loss`] is the mean Huber
//!   (δ = 1, PyTorch's `smooth_l1_loss`) difference over the B × B matrix;
//! - angle potential ψ_A(i, j, k) = ⟨e_ij, e_ik⟩ with e_ij = (x_j − x_i)/‖x_j − x_i‖ (a zero
//!   difference normalises to 0), the cosine of the angle at vertex i; [`rkd_angle_loss`] is
//!   the mean Huber difference over all B³ triplets.
//!
//! ψ_D is invariant to translation, rotation and global scale of the batch; ψ_A to the same.
//!
//! **GKD** (Lassance et al., ICASSP 2020; released `cadurosar/graph_kd`, `utils.py`):
//! [`graph_adjacency`] builds Â = D^{-1/2} A D^{-1/2} from the cosine similarities A of the rows
//! (zero diagonal), optionally keeps the top-k entries per row (mask symmetrised), and raises it
//! to a power p; [`gkd_loss`] = Σ_ij (Â_t^p − Â_s^p)²_ij with the *teacher's* top-k mask applied
//! to both graphs. Â is invariant to any positive rescaling of each row and to orthogonal maps.
//! The released code assumes post-ReLU features (cosines ≥ 0, so degrees > 0); here row sums are
//! clamped at [`DEGREE_FLOOR`] so signed features cannot give NaN, but a row whose similarities
//! sum to ≤ 0 is then scaled by up to 1/DEGREE_FLOOR: feed non-negative features.
//!
//! In every loss the teacher side is detached. Inputs are B × d matrices (flatten feature maps
//! first), any float dtype. The `_f64` functions are the same computations on ndarray
//! matrices, written from the definitions (explicit differences, loops) as test references.

use candle_core::Tensor;
use ndarray::{Array2, ArrayView2};

use super::error::{dims2, ensure_parameter, shape_error, MethodError, Result};

/// Squared distances below this count as this value before the square root (the released
/// `pdist`'s `eps`), so coincident points have distance 1e-6 and a finite gradient.
pub const DISTANCE_SQ_FLOOR: f64 = 1e-12;

/// Difference vectors shorter than this are divided by this instead (PyTorch's `F.normalize`),
/// so a zero difference gives the direction 0.
pub const DIRECTION_NORM_FLOOR: f64 = 1e-12;

/// GKD row sums (degrees) below this count as this value before D^{-1/2}.
pub const DEGREE_FLOOR: f64 = 1e-8;

/// Pairwise Euclidean distances of the rows of x (B × d) as a B × B tensor with zero diagonal.
///
/// Computed from the Gram matrix of the batch after subtracting its mean, as the released
/// `pdist` does without the centring: distances do not change, and the centring keeps a large
/// common offset from cancelling digits.
pub fn pairwise_distances(x: &Tensor) -> Result<Tensor> {
    let b = batch_rows("pairwise_distances", x, "x")?;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let sq = centred.sqr()?.sum_keepdim(1)?; // (B, 1)
    let gram = centred.matmul(&centred.t()?)?; // (B, B)
    let d2 = (sq.broadcast_add(&sq.t()?)? - (gram * 2.0)?)?;
    Ok((d2.maximum(DISTANCE_SQ_FLOOR)?.sqrt()? * off_diagonal(b, x)?)?)
}

/// RKD's distance potential ψ_D: [`pairwise_distances`] divided by their mean over the
/// B(B − 1) off-diagonal entries (dimensionless, B × B).
pub fn distance_potential(x: &Tensor) -> Result<Tensor> {
    let d = pairwise_distances(x)?;
    let b = d.dim(0)?;
    // Off-diagonal distances are ≥ √DISTANCE_SQ_FLOOR > 0 and the diagonal is 0, so the
    // released "mean of the non-zero distances" is the mean over the B(B − 1) off-diagonal pairs.
    let mean = (d.sum_all()? / (b * (b - 1)) as f64)?;
    Ok(d.broadcast_div(&mean)?)
}

/// RKD's angle potential ψ_A: B × B × B, entry [i, j, k] = ⟨e_ij, e_ik⟩ (dimensionless).
pub fn angle_potential(x: &Tensor) -> Result<Tensor> {
    batch_rows("angle_potential", x, "x")?;
    let diff = x.unsqueeze(0)?.broadcast_sub(&x.unsqueeze(1)?)?; // [i, j] = x_j − x_i: (B, B, d)
    let norm = diff.sqr()?.sum_keepdim(2)?.maximum(DIRECTION_NORM_FLOOR * DIRECTION_NORM_FLOOR)?.sqrt()?; // (B, B, 1)
    let e = diff.broadcast_div(&norm)?;
    Ok(e.matmul(&e.transpose(1, 2)?)?) // (B, B, B)
}

/// RKD distance loss: mean Huber(δ = 1) of ψ_D(student) − ψ_D(teacher) over the B × B matrix
/// (scalar tensor). `student` B × d_s, `teacher` B × d_t.
pub fn rkd_distance_loss(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    check_pair("rkd_distance_loss", student, teacher)?;
    huber_mean(&distance_potential(student)?, &distance_potential(&teacher.detach())?)
}

/// RKD angle loss: mean Huber(δ = 1) of ψ_A(student) − ψ_A(teacher) over the B³ triplets
/// (scalar tensor). `student` B × d_s, `teacher` B × d_t. Memory grows as B²·d.
pub fn rkd_angle_loss(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    check_pair("rkd_angle_loss", student, teacher)?;
    huber_mean(&angle_potential(student)?, &angle_potential(&teacher.detach())?)
}

/// GKD's graph before masking: Â = D^{-1/2} A D^{-1/2}, A the cosine similarities of the rows
/// of x (B × d) with zero diagonal, D the row sums clamped at [`DEGREE_FLOOR`]. B × B, symmetric.
pub fn normalised_adjacency(x: &Tensor) -> Result<Tensor> {
    let b = batch_rows("normalised_adjacency", x, "x")?;
    let norms = x.sqr()?.sum_keepdim(1)?.maximum(DIRECTION_NORM_FLOOR * DIRECTION_NORM_FLOOR)?.sqrt()?; // (B, 1)
    let unit = x.broadcast_div(&norms)?;
    let a = (unit.matmul(&unit.t()?)? * off_diagonal(b, x)?)?; // (B, B)
    let inv_sqrt_degree = a.sum_keepdim(1)?.maximum(DEGREE_FLOOR)?.powf(-0.5)?; // (B, 1)
    Ok(a.broadcast_mul(&inv_sqrt_degree)?.broadcast_mul(&inv_sqrt_degree.t()?)?)
}

/// GKD's k-nearest-neighbour mask of a B × B graph (a constant 0/1 tensor of its dtype): each
/// row marks its k largest off-diagonal entries (ties to the lower column), then the mask is
/// symmetrised, min(1, M + Mᵀ). k ≥ B − 1 keeps every off-diagonal entry.
///
/// The released code ranks whole rows, diagonal included; its diagonal is 0, so that differs
/// only when a row has fewer than k positive similarities (signed features).
pub fn knn_mask(adjacency: &Tensor, k: usize) -> Result<Tensor> {
    const OP: &str = "knn_mask";
    let (b, c) = dims2(adjacency, OP, "adjacency")?;
    if b != c {
        return Err(shape_error(OP, "adjacency", "a square B × B matrix".into(), adjacency.dims()));
    }
    ensure_parameter(k >= 1, OP, "k", k as f64, "at least 1")?;
    let values = adjacency.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
    let a = Array2::from_shape_fn((b, b), |(i, j)| values[i][j]);
    let mask = knn_mask_f64(a.view(), k);
    let data: Vec<f64> = mask.iter().copied().collect();
    Ok(Tensor::from_vec(data, (b, b), adjacency.device())?.to_dtype(adjacency.dtype())?)
}

/// One graph of GKD: [`normalised_adjacency`] of x, masked by its own [`knn_mask`] when `k` is
/// given, raised to the matrix power `power` ≥ 1 (B × B, symmetric).
pub fn graph_adjacency(x: &Tensor, k: Option<usize>, power: u32) -> Result<Tensor> {
    ensure_parameter(power >= 1, "graph_adjacency", "power", power as f64, "at least 1")?;
    let mut a = normalised_adjacency(x)?;
    if let Some(k) = k {
        a = (&a * knn_mask(&a, k)?)?;
    }
    matrix_power(&a, power)
}

/// GKD loss Σ_ij ((M ⊙ Â_t)^p − (M ⊙ Â_s)^p)²_ij (scalar tensor), M the teacher's [`knn_mask`]
/// (all ones off the diagonal when `k` is `None`). `student` B × d_s, `teacher` B × d_t.
pub fn gkd_loss(student: &Tensor, teacher: &Tensor, k: Option<usize>, power: u32) -> Result<Tensor> {
    const OP: &str = "gkd_loss";
    check_pair(OP, student, teacher)?;
    ensure_parameter(power >= 1, OP, "power", power as f64, "at least 1")?;
    let mut a_t = normalised_adjacency(&teacher.detach())?;
    let mut a_s = normalised_adjacency(student)?;
    if let Some(k) = k {
        let mask = knn_mask(&a_t, k)?;
        a_t = (&a_t * &mask)?;
        a_s = (&a_s * &mask)?;
    }
    Ok((matrix_power(&a_t, power)? - matrix_power(&a_s, power)?)?.sqr()?.sum_all()?)
}

/// [`pairwise_distances`] on an f64 matrix, from explicit differences.
pub fn pairwise_distances_f64(x: ArrayView2<f64>) -> Result<Array2<f64>> {
    check_rows_f64("pairwise_distances_f64", x)?;
    let b = x.nrows();
    Ok(Array2::from_shape_fn((b, b), |(i, j)| if i == j { 0.0 } else { (&x.row(i) - &x.row(j)).mapv(|v| v * v).sum().max(DISTANCE_SQ_FLOOR).sqrt() }))
}

/// [`rkd_distance_loss`] on f64 matrices.
pub fn rkd_distance_loss_f64(student: ArrayView2<f64>, teacher: ArrayView2<f64>) -> Result<f64> {
    check_pair_f64("rkd_distance_loss_f64", student, teacher)?;
    let potential = |x: ArrayView2<f64>| -> Result<Array2<f64>> {
        let d = pairwise_distances_f64(x)?;
        let b = d.nrows();
        let mean = d.sum() / (b * (b - 1)) as f64;
        Ok(d / mean)
    };
    let (s, t) = (potential(student)?, potential(teacher)?);
    Ok(s.iter().zip(&t).map(|(a, b)| huber(a - b)).sum::<f64>() / s.len() as f64)
}

/// [`rkd_angle_loss`] on f64 matrices, by a loop over the B³ triplets.
pub fn rkd_angle_loss_f64(student: ArrayView2<f64>, teacher: ArrayView2<f64>) -> Result<f64> {
    check_pair_f64("rkd_angle_loss_f64", student, teacher)?;
    let b = student.nrows();
    let direction = |x: ArrayView2<f64>, i: usize, j: usize| {
        let d = &x.row(j) - &x.row(i);
        let n = d.dot(&d).sqrt().max(DIRECTION_NORM_FLOOR);
        d / n
    };
    let mut total = 0.0;
    for i in 0..b {
        for j in 0..b {
            for k in 0..b {
                let s = direction(student, i, j).dot(&direction(student, i, k));
                let t = direction(teacher, i, j).dot(&direction(teacher, i, k));
                total += huber(s - t);
            }
        }
    }
    Ok(total / (b * b * b) as f64)
}

/// [`normalised_adjacency`] on an f64 matrix.
pub fn normalised_adjacency_f64(x: ArrayView2<f64>) -> Result<Array2<f64>> {
    check_rows_f64("normalised_adjacency_f64", x)?;
    let b = x.nrows();
    let unit: Vec<_> = x.rows().into_iter().map(|r| &r / r.dot(&r).sqrt().max(DIRECTION_NORM_FLOOR)).collect();
    let a = Array2::from_shape_fn((b, b), |(i, j)| if i == j { 0.0 } else { unit[i].dot(&unit[j]) });
    let degree: Vec<f64> = a.rows().into_iter().map(|r| r.sum().max(DEGREE_FLOOR)).collect();
    Ok(Array2::from_shape_fn((b, b), |(i, j)| a[[i, j]] / (degree[i] * degree[j]).sqrt()))
}

/// [`gkd_loss`] on f64 matrices.
pub fn gkd_loss_f64(student: ArrayView2<f64>, teacher: ArrayView2<f64>, k: Option<usize>, power: u32) -> Result<f64> {
    const OP: &str = "gkd_loss_f64";
    check_pair_f64(OP, student, teacher)?;
    ensure_parameter(power >= 1, OP, "power", power as f64, "at least 1")?;
    ensure_parameter(k != Some(0), OP, "k", 0.0, "at least 1")?;
    let mut a_t = normalised_adjacency_f64(teacher)?;
    let mut a_s = normalised_adjacency_f64(student)?;
    if let Some(k) = k {
        let mask = knn_mask_f64(a_t.view(), k);
        a_t *= &mask;
        a_s *= &mask;
    }
    let power_of = |a: &Array2<f64>| (1..power).fold(a.clone(), |acc, _| acc.dot(a));
    Ok((power_of(&a_t) - power_of(&a_s)).mapv(|v| v * v).sum())
}

/// The top-k mask of [`knn_mask`] on f64 values (k ≥ 1 checked by the caller).
fn knn_mask_f64(a: ArrayView2<f64>, k: usize) -> Array2<f64> {
    let b = a.nrows();
    let mut mask = Array2::zeros((b, b));
    for i in 0..b {
        let mut others: Vec<usize> = (0..b).filter(|&j| j != i).collect();
        // Stable sort, largest first: ties keep the lower column first.
        others.sort_by(|&x, &y| a[[i, y]].total_cmp(&a[[i, x]]));
        for &j in others.iter().take(k) {
            mask[[i, j]] = 1.0;
            mask[[j, i]] = 1.0;
        }
    }
    mask
}

/// a^power by repeated products (power ≥ 1 checked by the caller).
fn matrix_power(a: &Tensor, power: u32) -> Result<Tensor> {
    let mut out = a.clone();
    for _ in 1..power {
        out = out.matmul(a)?;
    }
    Ok(out)
}

/// Mean of Huber(δ = 1)(a − b) = ½d² for |d| < 1, |d| − ½ otherwise (PyTorch's
/// `smooth_l1_loss` with the mean reduction).
fn huber_mean(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = (a - b)?;
    let abs = d.abs()?;
    let quadratic = (d.sqr()? * 0.5)?;
    let linear = (&abs - 0.5)?;
    Ok(abs.lt(1.0)?.where_cond(&quadratic, &linear)?.mean_all()?)
}

/// Huber(δ = 1) of one difference.
fn huber(d: f64) -> f64 {
    if d.abs() < 1.0 {
        0.5 * d * d
    } else {
        d.abs() - 0.5
    }
}

/// 1 − I as a B × B tensor of x's dtype and device.
fn off_diagonal(b: usize, like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::eye(b, like.dtype(), like.device())?.affine(-1.0, 1.0)?)
}

/// The batch size of a B × d input, B ≥ 2 (relations need a pair).
fn batch_rows(op: &'static str, x: &Tensor, what: &'static str) -> Result<usize> {
    let (b, _) = dims2(x, op, what)?;
    if b < 2 {
        return Err(MethodError::TooFew { op, what: "rows (a batch needs a pair)", needed: 2, got: b });
    }
    Ok(b)
}

/// Student and teacher are B × · matrices of the same batch, B ≥ 2.
fn check_pair(op: &'static str, student: &Tensor, teacher: &Tensor) -> Result<()> {
    let b = batch_rows(op, student, "student")?;
    let (bt, _) = dims2(teacher, op, "teacher")?;
    if bt != b {
        return Err(shape_error(op, "teacher", format!("{b} rows (the student's batch)"), teacher.dims()));
    }
    Ok(())
}

fn check_rows_f64(op: &'static str, x: ArrayView2<f64>) -> Result<()> {
    if x.nrows() < 2 {
        return Err(MethodError::TooFew { op, what: "rows (a batch needs a pair)", needed: 2, got: x.nrows() });
    }
    Ok(())
}

fn check_pair_f64(op: &'static str, student: ArrayView2<f64>, teacher: ArrayView2<f64>) -> Result<()> {
    check_rows_f64(op, student)?;
    if teacher.nrows() != student.nrows() {
        return Err(shape_error(op, "teacher", format!("{} rows (the student's batch)", student.nrows()), teacher.shape()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::testkit::{array, assert_close, central_difference, normal_matrix, orthonormal_columns, scalar, tensor, var};
    use ndarray::Array1;

    /// A similarity transform of x (B × d): c·x·R + offset, R a seeded d × d rotation.
    fn similar(x: &Array2<f64>, c: f64, seed: u64) -> Array2<f64> {
        let d = x.ncols();
        let r = orthonormal_columns(d, d, seed);
        let offset = normal_matrix(1, d, seed + 1) * 10.0;
        x.dot(&r) * c + offset.row(0)
    }

    /// x (B × d_t) embedded isometrically in d_s > d_t dimensions: x·Qᵀ with QᵀQ = I.
    fn embedded(x: &Array2<f64>, d_s: usize, seed: u64) -> Array2<f64> {
        let q = orthonormal_columns(d_s, x.ncols(), seed); // d_s × d_t
        x.dot(&q.t())
    }

    fn t3(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Potentials of c·x·R + b equal those of x: exact in exact arithmetic; the offset of size
    /// ~10 and the Gram form leave rounding ~1e-13 relative after centring.
    #[test]
    fn potentials_are_invariant_to_translation_rotation_and_scale() {
        let x = normal_matrix(7, 4, 60);
        for (c, seed) in [(1.0, 61), (0.01, 62), (250.0, 63)] {
            let y = similar(&x, c, seed);
            assert_close(&array(&distance_potential(&tensor(&y)).unwrap()), &array(&distance_potential(&tensor(&x)).unwrap()), 1e-10, "ψ_D");
            let (a, b) = (t3(&angle_potential(&tensor(&y)).unwrap()), t3(&angle_potential(&tensor(&x)).unwrap()));
            assert!(a.iter().zip(&b).all(|(u, v)| (u - v).abs() < 1e-10), "ψ_A, c = {c}");
        }
        // A non-uniform scaling changes both.
        let stretched = &x * &Array1::from(vec![1.0, 3.0, 1.0, 0.2]);
        assert!(scalar(&rkd_distance_loss(&tensor(&stretched), &tensor(&x)).unwrap()) > 1e-3);
        assert!(scalar(&rkd_angle_loss(&tensor(&stretched), &tensor(&x)).unwrap()) > 1e-3);
    }

    /// A student that is a similarity transform of the teacher, in the same or a larger space,
    /// has zero RKD loss (up to rounding: Huber of ~1e-13 differences is ~1e-26).
    #[test]
    fn rkd_losses_vanish_for_similar_students_of_any_width() {
        let teacher = normal_matrix(6, 3, 64);
        let students = [similar(&teacher, 2.5, 65), embedded(&teacher, 7, 66) * 0.3, similar(&embedded(&teacher, 5, 67), 4.0, 68)];
        for (i, s) in students.iter().enumerate() {
            assert!(scalar(&rkd_distance_loss(&tensor(s), &tensor(&teacher)).unwrap()) < 1e-20, "student {i}: distance");
            assert!(scalar(&rkd_angle_loss(&tensor(s), &tensor(&teacher)).unwrap()) < 1e-20, "student {i}: angle");
        }
    }

    /// Post-ReLU-like teacher features (non-negative). Positive per-row rescaling and
    /// orthogonal maps, into the same or a larger space, leave every cosine and hence Â
    /// unchanged, so the GKD loss vanishes up to rounding (~1e-30 for sums of squares of
    /// ~1e-15 differences) for every k and power.
    #[test]
    fn gkd_loss_vanishes_for_rescaled_or_rotated_students() {
        let teacher = normal_matrix(8, 4, 69).mapv(f64::abs);
        let scales = normal_matrix(8, 1, 70).mapv(|v| 0.1 + v.abs() * 5.0);
        let rescaled = &teacher * &scales;
        let rotated = teacher.dot(&orthonormal_columns(4, 4, 71));
        let embedded_rescaled = embedded(&rescaled, 9, 72);
        for (name, s) in [("rescaled", &rescaled), ("rotated", &rotated), ("embedded and rescaled", &embedded_rescaled)] {
            for (k, power) in [(None, 1), (None, 2), (Some(3), 1), (Some(2), 3)] {
                let loss = scalar(&gkd_loss(&tensor(s), &tensor(&teacher), k, power).unwrap());
                assert!(loss < 1e-24, "{name}, k = {k:?}, p = {power}: {loss}");
            }
        }
        // A translation is not a GKD invariance (cosines change).
        let shifted = &teacher + 1.0;
        assert!(scalar(&gkd_loss(&tensor(&shifted), &tensor(&teacher), None, 1).unwrap()) > 1e-4);
    }

    #[test]
    fn graphs_and_masks_are_symmetric() {
        let x = normal_matrix(9, 5, 73).mapv(f64::abs);
        for (k, power) in [(None, 1), (Some(2), 1), (Some(3), 2), (Some(20), 3)] {
            let a = array(&graph_adjacency(&tensor(&x), k, power).unwrap());
            assert_close(&a, &a.t().to_owned(), 1e-14, &format!("Â, k = {k:?}, p = {power}"));
        }
        let a = normalised_adjacency(&tensor(&x)).unwrap();
        let m = array(&knn_mask(&a, 2).unwrap());
        assert_eq!(m, m.t());
        for i in 0..9 {
            assert_eq!(m[[i, i]], 0.0);
            assert!(m.row(i).sum() >= 2.0, "row {i} keeps at least its own top 2");
        }
        // k ≥ B − 1 keeps every off-diagonal pair.
        assert_eq!(array(&knn_mask(&a, 8).unwrap()), Array2::from_shape_fn((9, 9), |(i, j)| if i == j { 0.0 } else { 1.0 }));
    }

    #[test]
    fn knn_mask_keeps_each_rows_largest_entries() {
        let a = ndarray::array![[0.0, 0.9, 0.1, 0.5], [0.9, 0.0, 0.2, 0.3], [0.1, 0.2, 0.0, 0.8], [0.5, 0.3, 0.8, 0.0]];
        let m = array(&knn_mask(&tensor(&a), 1).unwrap());
        // Row tops: 0→1, 1→0, 2→3, 3→2.
        let expected = ndarray::array![[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]];
        assert_eq!(m, expected);
    }

    /// Candle values equal the f64 references (written from the definitions), and candle's
    /// gradients in the student equal central differences of the references. Each loss is
    /// smooth at these random points (no coincident rows, no |ψ_s − ψ_t| = 1 kink within h);
    /// h = 1e-6: truncation ~1e-12·|f'''|, rounding ~1e-16/h = 1e-10, so 1e-6 relative is safe.
    /// The teacher gets no gradient.
    #[test]
    fn gradients_match_finite_differences_of_the_f64_references() {
        let (b, d_s, d_t) = (5, 3, 4);
        let s = normal_matrix(b, d_s, 74);
        let t = normal_matrix(b, d_t, 75);
        let (s_pos, t_pos) = (s.mapv(f64::abs), t.mapv(f64::abs));
        type CandleLoss = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor>>;
        type F64Loss = Box<dyn Fn(ArrayView2<f64>, ArrayView2<f64>) -> Result<f64>>;
        type Case<'a> = (&'a str, &'a Array2<f64>, &'a Array2<f64>, CandleLoss, F64Loss);
        let cases: Vec<Case> = vec![
            ("rkd distance", &s, &t, Box::new(rkd_distance_loss), Box::new(rkd_distance_loss_f64)),
            ("rkd angle", &s, &t, Box::new(rkd_angle_loss), Box::new(rkd_angle_loss_f64)),
            ("gkd", &s_pos, &t_pos, Box::new(|a, b| gkd_loss(a, b, None, 1)), Box::new(|a, b| gkd_loss_f64(a, b, None, 1))),
            ("gkd k = 2, p = 2", &s_pos, &t_pos, Box::new(|a, b| gkd_loss(a, b, Some(2), 2)), Box::new(|a, b| gkd_loss_f64(a, b, Some(2), 2))),
        ];
        for (name, s, t, candle_loss, reference) in cases {
            let (sv, tv) = (var(s), var(t));
            let value = candle_loss(sv.as_tensor(), tv.as_tensor()).unwrap();
            let expected = reference(s.view(), t.view()).unwrap();
            assert!((scalar(&value) - expected).abs() < 1e-12 * (1.0 + expected.abs()), "{name}: {} vs {expected}", scalar(&value));
            assert!(expected > 1e-3, "{name}: the case must not be trivially zero");
            let grads = value.backward().unwrap();
            let numeric = central_difference(|x| reference(x.view(), t.view()).unwrap(), s, 1e-6);
            assert_close(&array(grads.get(&sv).unwrap()), &numeric, 1e-6, name);
            assert!(grads.get(&tv).is_none(), "{name}: the teacher must get no gradient");
        }
    }

    #[test]
    fn coincident_rows_give_finite_values_and_gradients() {
        let mut x = normal_matrix(4, 3, 76);
        let first = x.row(0).to_owned();
        x.row_mut(1).assign(&first);
        let teacher = normal_matrix(4, 2, 77);
        let v = var(&x);
        for loss in [rkd_distance_loss(v.as_tensor(), &tensor(&teacher)).unwrap(), rkd_angle_loss(v.as_tensor(), &tensor(&teacher)).unwrap()] {
            assert!(scalar(&loss).is_finite());
            let g = array(loss.backward().unwrap().get(&v).unwrap());
            assert!(g.iter().all(|v| v.is_finite()), "{g}");
        }
        let d = pairwise_distances_f64(x.view()).unwrap();
        assert_eq!(d[[0, 1]], DISTANCE_SQ_FLOOR.sqrt());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let s = tensor(&normal_matrix(4, 3, 78));
        let t = tensor(&normal_matrix(5, 3, 79));
        assert!(matches!(rkd_distance_loss(&s, &t), Err(MethodError::Shape { what: "teacher", .. })));
        assert!(matches!(rkd_angle_loss(&s.flatten_all().unwrap(), &t), Err(MethodError::Shape { what: "student", .. })));
        let one = tensor(&normal_matrix(1, 3, 80));
        assert!(matches!(gkd_loss(&one, &one, None, 1), Err(MethodError::TooFew { .. })));
        assert!(matches!(gkd_loss(&s, &s, Some(0), 1), Err(MethodError::InvalidParameter { name: "k", .. })));
        assert!(matches!(gkd_loss(&s, &s, None, 0), Err(MethodError::InvalidParameter { name: "power", .. })));
        assert!(matches!(graph_adjacency(&s, None, 0), Err(MethodError::InvalidParameter { name: "power", .. })));
        assert!(matches!(knn_mask(&s, 1), Err(MethodError::Shape { .. })));
        assert!(matches!(gkd_loss_f64(normal_matrix(4, 3, 81).view(), normal_matrix(4, 3, 82).view(), Some(0), 1), Err(MethodError::InvalidParameter { .. })));
    }
}
