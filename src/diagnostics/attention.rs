//! Attention maps of CNNs (conv → ReLU → … → global average pooling → linear head) and the
//! IoU of two or more models' maps, as Guo et al. 2024's released code measures them.
//!
//! Class activation map: the head applied to each position of the last feature map,
//! A(x, y) = Σ_j w_j F_j(x, y) (the head's bias is a constant that min–max normalisation
//! removes). Guo's released map sums over all classes, w = Σ_c w_c: since softmax ignores a
//! common shift of the class weights, that direction gets no gradient from CE or KD and stays
//! where initialisation put it unless weight decay or an adaptive optimiser moves it; the
//! predicted-class map (w = w_ĉ) is the robustness variant. Maps are bilinearly upsampled to
//! the input size, min–max normalised per image, and thresholded (> 0.4 in the released code).
//! IoU is batch-pooled: per batch, |∩ masks| / |∪ masks| over all pixels of all its images, and
//! the batches' values averaged weighted by batch size.

use candle_core::{DType, Device, Tensor};
use ndarray::{Array2, ArrayView2};

use super::{DiagnosticsError, Result};
use crate::models::cnn::Cnn;

/// Images per IoU batch (the released code's loader batch size).
pub const IOU_BATCH: usize = 128;

/// Which class direction a map projects the features on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamKind {
    /// Σ_c w_c, as in Guo et al.'s released code.
    SumOfClasses,
    /// w_ĉ of the model's own predicted class.
    PredictedClass,
}

/// Σ_c w_c: the direction of the sum-over-classes map, one value per feature channel.
pub fn class_sum_direction(cnn: &Cnn) -> Result<Vec<f64>> {
    Ok(head_weights(cnn)?.rows().into_iter().map(|r| r.sum()).collect())
}

fn head_weights(cnn: &Cnn) -> Result<Array2<f64>> {
    let (w, _) = cnn.head();
    let (c, k) = w.as_tensor().dims2().map_err(candle)?;
    let data: Vec<f64> = w.as_tensor().to_dtype(DType::F64).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(candle)?;
    Ok(Array2::from_shape_vec((c, k), data).expect("head shape"))
}

fn candle(e: candle_core::Error) -> DiagnosticsError {
    DiagnosticsError::Invalid { what: "class activation map", reason: e.to_string() }
}

/// Class activation maps at the last conv layer's resolution, one (ho × wo) map per row of
/// `x` (rows of flattened images).
pub fn class_activation_maps(cnn: &Cnn, x: ArrayView2<f64>, kind: CamKind) -> Result<Vec<Array2<f64>>> {
    let w = head_weights(cnn)?;
    let sum_direction: Vec<f64> = w.rows().into_iter().map(|r| r.sum()).collect();
    let bias: Vec<f64> = cnn.head().1.as_tensor().to_dtype(DType::F64).and_then(|t| t.to_vec1()).map_err(candle)?;
    let mut maps = Vec::with_capacity(x.nrows());
    // Chunks keep im2col of a whole evaluation set out of memory.
    for start in (0..x.nrows()).step_by(256) {
        let end = (start + 256).min(x.nrows());
        let chunk = x.slice(ndarray::s![start..end, ..]);
        let data: Vec<f32> = chunk.iter().map(|&v| v as f32).collect();
        let t = Tensor::from_vec(data, (chunk.nrows(), chunk.ncols()), &Device::Cpu).map_err(candle)?;
        let features = cnn.feature_maps(&t).map_err(candle)?;
        let (n, ho, wo, c) = features.dims4().map_err(candle)?;
        let f: Vec<f64> = features.to_dtype(DType::F64).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(candle)?;
        for i in 0..n {
            let image = &f[i * ho * wo * c..(i + 1) * ho * wo * c];
            let direction: Vec<f64> = match kind {
                CamKind::SumOfClasses => sum_direction.clone(),
                CamKind::PredictedClass => {
                    // The prediction from the pooled features (the head's bias included).
                    let pooled: Vec<f64> = (0..c).map(|j| (0..ho * wo).map(|p| image[p * c + j]).sum::<f64>() / (ho * wo) as f64).collect();
                    let logits: Vec<f64> = (0..w.ncols()).map(|class| bias[class] + (0..c).map(|j| pooled[j] * w[[j, class]]).sum::<f64>()).collect();
                    let best = logits.iter().enumerate().fold(0, |b, (i, &v)| if v > logits[b] { i } else { b });
                    w.column(best).to_vec()
                }
            };
            maps.push(Array2::from_shape_fn((ho, wo), |(y, xx)| {
                let at = &image[(y * wo + xx) * c..(y * wo + xx + 1) * c];
                at.iter().zip(&direction).map(|(a, d)| a * d).sum()
            }));
        }
    }
    Ok(maps)
}

/// Bilinear upsampling of `map` to (height, width) with half-pixel centres (PyTorch's
/// `interpolate(mode="bilinear", align_corners=False)`).
pub fn upsample_bilinear(map: ArrayView2<f64>, height: usize, width: usize) -> Array2<f64> {
    let (h, w) = map.dim();
    let coord = |out: usize, scale: f64, len: usize| -> (usize, usize, f64) {
        let src = ((out as f64 + 0.5) * scale - 0.5).max(0.0);
        let lo = (src.floor() as usize).min(len - 1);
        let hi = (lo + 1).min(len - 1);
        (lo, hi, src - lo as f64)
    };
    Array2::from_shape_fn((height, width), |(y, x)| {
        let (y0, y1, fy) = coord(y, h as f64 / height as f64, h);
        let (x0, x1, fx) = coord(x, w as f64 / width as f64, w);
        let top = map[[y0, x0]] * (1.0 - fx) + map[[y0, x1]] * fx;
        let bottom = map[[y1, x0]] * (1.0 - fx) + map[[y1, x1]] * fx;
        top * (1.0 - fy) + bottom * fy
    })
}

/// (A − min) / (max − min + 1e-8), as released.
pub fn min_max(map: &Array2<f64>) -> Array2<f64> {
    let (lo, hi) = map.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    map.mapv(|v| (v - lo) / (hi - lo + 1e-8))
}

/// Each image's thresholded attention mask at input resolution (flattened row-major).
pub fn attention_masks(cnn: &Cnn, x: ArrayView2<f64>, kind: CamKind, threshold: f64) -> Result<Vec<Vec<bool>>> {
    let (height, width) = (cnn.shape.height, cnn.shape.width);
    Ok(class_activation_maps(cnn, x, kind)?
        .iter()
        .map(|m| min_max(&upsample_bilinear(m.view(), height, width)).iter().map(|&v| v > threshold).collect())
        .collect())
}

/// Batch-pooled IoU of several models' masks (`masks[model][image][pixel]`): per batch of
/// `batch` images |∩| / |∪| over all its pixels, then the batches' mean weighted by their
/// sizes. A batch whose union is empty counts as IoU 1 (the masks agree that nothing is
/// attended).
pub fn pooled_iou(masks: &[Vec<Vec<bool>>], batch: usize) -> Result<f64> {
    if masks.len() < 2 {
        return Err(DiagnosticsError::Invalid { what: "pooled IoU", reason: format!("needs two or more models' masks, got {}", masks.len()) });
    }
    let n = masks[0].len();
    if n == 0 || batch == 0 || masks.iter().any(|m| m.len() != n || m.iter().zip(&masks[0]).any(|(a, b)| a.len() != b.len())) {
        return Err(DiagnosticsError::Invalid { what: "pooled IoU", reason: "needs the same non-empty set of images and pixels for every model".into() });
    }
    let mut total = 0.0;
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let (mut inter, mut union) = (0usize, 0usize);
        for image in start..end {
            for p in 0..masks[0][image].len() {
                let all = masks.iter().all(|m| m[image][p]);
                let any = masks.iter().any(|m| m[image][p]);
                inter += usize::from(all);
                union += usize::from(any);
            }
        }
        let iou = if union == 0 { 1.0 } else { inter as f64 / union as f64 };
        total += iou * (end - start) as f64;
    }
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cnn::CnnShape;

    fn masks(pattern: &[&[bool]]) -> Vec<Vec<bool>> {
        pattern.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn iou_of_identical_masks_is_one_and_of_disjoint_masks_zero() {
        let a = masks(&[&[true, true, false, false], &[false, true, true, false]]);
        let disjoint = masks(&[&[false, false, true, true], &[true, false, false, true]]);
        assert_eq!(pooled_iou(&[a.clone(), a.clone()], 128).unwrap(), 1.0);
        assert_eq!(pooled_iou(&[a.clone(), disjoint], 128).unwrap(), 0.0);
        // Half overlap in one image of a batch of one: (1/3 + 1) / 2.
        let b = masks(&[&[true, false, true, false], &[false, true, true, false]]);
        assert!((pooled_iou(&[a.clone(), b.clone()], 1).unwrap() - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        // Pooled over the batch: 3 common pixels of 5 in the union.
        assert!((pooled_iou(&[a, b], 128).unwrap() - 3.0 / 5.0).abs() < 1e-12);
        assert!(pooled_iou(&[masks(&[&[true]])], 1).is_err());
    }

    #[test]
    fn upsampling_keeps_constants_and_matches_half_pixel_interpolation() {
        let map = Array2::from_shape_vec((2, 2), vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        let up = upsample_bilinear(map.view(), 4, 4);
        // PyTorch: interpolate([[0,1],[2,3]], size=4, bilinear, align_corners=False) first row.
        let first = [0.0, 0.25, 0.75, 1.0];
        for (x, want) in first.iter().enumerate() {
            assert!((up[[0, x]] - want).abs() < 1e-12, "{:?}", up.row(0));
        }
        assert!((up[[3, 3]] - 3.0).abs() < 1e-12);
        let flat = upsample_bilinear(Array2::from_elem((3, 3), 2.5).view(), 7, 5);
        assert!(flat.iter().all(|&v| (v - 2.5).abs() < 1e-12));
    }

    #[test]
    fn maps_ignore_the_head_bias_after_min_max() {
        let map = Array2::from_shape_vec((2, 3), vec![0.3, -1.0, 2.0, 0.0, 4.0, 1.0]).unwrap();
        let shifted = map.mapv(|v| v + 7.5);
        let (a, b) = (min_max(&map), min_max(&shifted));
        assert!(a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() < 1e-9));
    }

    #[test]
    fn identical_networks_attend_identically_and_maps_have_the_input_size() {
        let shape = CnnShape { height: 8, width: 8, channels: vec![4, 8], downsample: vec![false, true], n_classes: 3 };
        let cnn = Cnn::new(shape.clone(), 5).unwrap();
        let twin = Cnn::new(shape.clone(), 5).unwrap();
        let other = Cnn::new(shape, 6).unwrap();
        let (x, _) = crate::models::cnn::stripes(20, 8, 1);
        for kind in [CamKind::SumOfClasses, CamKind::PredictedClass] {
            let a = attention_masks(&cnn, x.view(), kind, 0.4).unwrap();
            assert_eq!((a.len(), a[0].len()), (20, 64));
            let b = attention_masks(&twin, x.view(), kind, 0.4).unwrap();
            assert_eq!(pooled_iou(&[a.clone(), b], 128).unwrap(), 1.0);
            let c = attention_masks(&other, x.view(), kind, 0.4).unwrap();
            assert!(pooled_iou(&[a, c], 128).unwrap() < 1.0);
        }
    }
}
