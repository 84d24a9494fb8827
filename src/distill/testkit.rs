//! Test helpers shared by the KD-method modules: seeded random matrices, f64 candle variables
//! and central finite differences.

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array1, Array2};
use ndarray_linalg::QR;
use rand_distr::{Distribution, StandardNormal};

use crate::seed;

/// A rows × cols matrix of independent standard normals from `seed`.
pub fn normal_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = seed::rng(seed);
    Array2::from_shape_fn((rows, cols), |_| StandardNormal.sample(&mut rng))
}

/// A rows × cols matrix (rows ≥ cols) with orthonormal columns, from the QR of a Gaussian one.
pub fn orthonormal_columns(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let (q, _) = normal_matrix(rows, cols, seed).qr().expect("QR of a Gaussian matrix");
    q
}

/// An f64 tensor holding `a` (no graph).
pub fn tensor(a: &Array2<f64>) -> Tensor {
    Tensor::from_vec(a.iter().copied().collect::<Vec<_>>(), a.dim(), &Device::Cpu).expect("tensor from an array")
}

/// An f64 tensor holding the vector `a`.
pub fn tensor1(a: &Array1<f64>) -> Tensor {
    Tensor::from_vec(a.to_vec(), a.len(), &Device::Cpu).expect("tensor from a vector")
}

/// An f64 candle variable holding `a`.
pub fn var(a: &Array2<f64>) -> Var {
    Var::from_tensor(&tensor(a)).expect("variable from an array")
}

/// A rank-2 tensor's values as an f64 array.
pub fn array(t: &Tensor) -> Array2<f64> {
    let (r, c) = t.dims2().expect("a matrix");
    let data = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    Array2::from_shape_vec((r, c), data).unwrap()
}

/// A scalar tensor's value as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// ∂f/∂x by central differences with step `h`, entry by entry.
pub fn central_difference(f: impl Fn(&Array2<f64>) -> f64, x: &Array2<f64>, h: f64) -> Array2<f64> {
    let mut grad = Array2::zeros(x.dim());
    for idx in ndarray::indices(x.dim()) {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[idx] += h;
        minus[idx] -= h;
        grad[idx] = (f(&plus) - f(&minus)) / (2.0 * h);
    }
    grad
}

/// Asserts max |a − b| ≤ tol · max(1, max |b|), naming `what` on failure.
pub fn assert_close(a: &Array2<f64>, b: &Array2<f64>, tol: f64, what: &str) {
    assert_eq!(a.dim(), b.dim(), "{what}: shapes differ");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= tol * scale, "{what}: max error {err:e} exceeds {tol:e} × {scale}\n{a}\nvs\n{b}");
}
