//! Conversions between kdlab's f64 matrices and the networks' f32 tensors.

use candle_core::{DType, Device, Tensor};
use ndarray::{Array2, ArrayView2};

use super::Result;

/// An f64 matrix as an f32 tensor (the networks' dtype).
pub(crate) fn to_tensor(x: ArrayView2<f64>) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(data, (x.nrows(), x.ncols()), &Device::Cpu)
}

/// A rank-2 tensor as an f64 matrix.
pub(crate) fn from_tensor(t: &Tensor) -> Result<Array2<f64>> {
    let (n, k) = t.dims2()?;
    let data: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    Ok(Array2::from_shape_vec((n, k), data).expect("shape from tensor"))
}
