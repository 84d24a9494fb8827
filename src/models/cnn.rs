//! Convolutional networks in candle: conv → ReLU → … → conv → ReLU → global average pooling →
//! linear head (the layout class-activation maps need).
//!
//! Inputs are single-channel images flattened row-major, an n × (height·width) matrix; a 1-D
//! signal is an image of height 1. Each conv layer has kernel 3 and padding 1 along every axis
//! longer than 1 (a height-1 signal gets 1×3 kernels, not 3×3 kernels on zero padding), and
//! stride 2 along those axes where the spec asks for downsampling. No normalisation layers, so
//! the same weights give the same outputs in training and evaluation.
//!
//! **Why not candle's `conv2d`.** On the CPU candle's forward pass is im2col + gemm, but its
//! backward pass computes the input gradient with `conv_transpose2d`, a direct nested loop, and
//! the kernel gradient with a second conv2d over transposed (NCHW → CNHW) copies, and every
//! bias add and ReLU is a separate graph node whose backward is several more full passes
//! (ReLU's: a zeros tensor, a comparison, a cast and a product). Together they made a small
//! CNN's training step several times slower than PyTorch's (`benches/cnn.rs` times both).
//! Here the activations stay channels-last (NHWC) from start to end, and a conv layer with its
//! ReLU is one custom op:
//!
//! ```text
//! forward:  cols = im2col(h)                  (n·ho·wo, kh·kw·c_in + 1), last column 1
//!           out  = relu(cols @ [W; b])        (n·ho·wo, c_out): one gemm, already NHWC
//! backward: g    = ∂out · 1[out > 0]          one pass
//!           ∂[W; b] = colsᵀ @ g               one gemm (the bias row sums g)
//!           ∂h   = col2im(g @ [W; b]ᵀ)        one gemm and a scatter-add; skipped for the input
//! ```
//!
//! so nothing is transposed or permuted; the forward pass hands its columns to the backward
//! pass. im2col and col2im are serial loops over contiguous channel runs; col2im adds in a
//! fixed order, so a network is bit-reproducible for a seed.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Device, Layout, Shape, Tensor, Var};
use rand::Rng;

use super::WeightInit;
use crate::seed;

/// The geometry of one conv layer on an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub height: usize,
    pub width: usize,
    pub c_in: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl ConvGeometry {
    /// Kernel 3, padding 1 and the given stride along each axis longer than 1; kernel 1, no
    /// padding, stride 1 along an axis of length 1.
    pub fn new(height: usize, width: usize, c_in: usize, downsample: bool) -> ConvGeometry {
        let axis = |len: usize| if len > 1 { (3, if downsample { 2 } else { 1 }, 1) } else { (1, 1, 0) };
        let (kh, sh, ph) = axis(height);
        let (kw, sw, pw) = axis(width);
        ConvGeometry { height, width, c_in, kh, kw, sh, sw, ph, pw }
    }

    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.ph - self.kh) / self.sh + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.pw - self.kw) / self.sw + 1
    }

    /// Columns of the im2col matrix: kh · kw · c_in, ordered (ky, kx, channel).
    pub fn patch(&self) -> usize {
        self.kh * self.kw * self.c_in
    }

    /// Calls `f(out_row_within_image, column_block, input_pixel)` for every in-bounds tap: the
    /// output pixel (oy, ox) reads input pixel (iy, ix) into column block (ky, kx).
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = (self.out_height(), self.out_width());
        for oy in 0..ho {
            for ox in 0..wo {
                let out_pixel = oy * wo + ox;
                for ky in 0..self.kh {
                    let iy = (oy * self.sh + ky) as isize - self.ph as isize;
                    if iy < 0 || iy >= self.height as isize {
                        continue;
                    }
                    for kx in 0..self.kw {
                        let ix = (ox * self.sw + kx) as isize - self.pw as isize;
                        if ix < 0 || ix >= self.width as isize {
                            continue;
                        }
                        f(out_pixel, ky * self.kw + kx, iy as usize * self.width + ix as usize);
                    }
                }
            }
        }
    }
}

/// im2col of n NHWC images into rows of `patch + 1` columns, the last one a constant 1 (so
/// the bias is the weight matrix's last row and its gradient comes out of the same gemm).
fn im2col_slice<T: Copy + Default>(g: &ConvGeometry, input: &[T], n: usize, one: T) -> Vec<T> {
    let c = g.c_in;
    let pixels_in = g.height * g.width;
    let zeros = vec![T::default(); c];
    // Written front to back (taps outside the image as zeros), so the buffer needs no zeroing.
    let mut cols = Vec::with_capacity(n * g.out_height() * g.out_width() * (g.patch() + 1));
    for b in 0..n {
        let img = &input[b * pixels_in * c..(b + 1) * pixels_in * c];
        for oy in 0..g.out_height() {
            for ox in 0..g.out_width() {
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                        if iy < 0 || iy >= g.height as isize || ix < 0 || ix >= g.width as isize {
                            cols.extend_from_slice(&zeros);
                        } else {
                            let q = iy as usize * g.width + ix as usize;
                            cols.extend_from_slice(&img[q * c..(q + 1) * c]);
                        }
                    }
                }
                cols.push(one);
            }
        }
    }
    cols
}

/// The adjoint of [`im2col_slice`] (the constant column is ignored): overlapping taps added in
/// a fixed order.
fn col2im_slice<T: Copy + Default + std::ops::AddAssign>(g: &ConvGeometry, cols: &[T], n: usize) -> Vec<T> {
    let (c, patch) = (g.c_in, g.patch());
    let stride = patch + 1;
    let pixels_in = g.height * g.width;
    let pixels_out = g.out_height() * g.out_width();
    let mut image = vec![T::default(); n * pixels_in * c];
    for b in 0..n {
        let src = &cols[b * pixels_out * stride..(b + 1) * pixels_out * stride];
        let img = &mut image[b * pixels_in * c..(b + 1) * pixels_in * c];
        g.for_each_tap(|p, block, q| {
            let from = &src[p * stride + block * c..p * stride + (block + 1) * c];
            for (d, &s) in img[q * c..(q + 1) * c].iter_mut().zip(from) {
                *d += s;
            }
        });
    }
    image
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &'static str) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

fn only_floats(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: only f32 and f64 tensors"))
}

/// im2col (with the constant column) on NHWC (n, h, w, c) → (n·ho·wo, kh·kw·c + 1); no backward.
struct Im2Col(ConvGeometry);

/// The adjoint of [`Im2Col`]: (n·ho·wo, kh·kw·c + 1) → (n, h, w, c); no backward.
struct Col2Im(ConvGeometry);

/// `grad · 1[res > 0]`, ReLU's backward in one pass; no backward.
struct ReluMask;

/// The fused conv layer relu(im2col(x) @ [W; b]) on NHWC input, see [`conv_relu_nhwc`]. The
/// forward pass leaves its im2col columns here for the backward pass to take.
struct ConvRelu(ConvGeometry, Mutex<Option<Tensor>>);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let n = layout.dims()[0];
        let shape = Shape::from((n * g.out_height() * g.out_width(), g.patch() + 1));
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(im2col_slice(g, contiguous(v, layout, "im2col")?, n, 1.0)),
            CpuStorage::F64(v) => CpuStorage::F64(im2col_slice(g, contiguous(v, layout, "im2col")?, n, 1.0)),
            _ => return Err(only_floats("im2col")),
        };
        Ok((out, shape))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let n = layout.dims()[0] / (g.out_height() * g.out_width());
        let shape = Shape::from((n, g.height, g.width, g.c_in));
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(col2im_slice(g, contiguous(v, layout, "col2im")?, n)),
            CpuStorage::F64(v) => CpuStorage::F64(col2im_slice(g, contiguous(v, layout, "col2im")?, n)),
            _ => return Err(only_floats("col2im")),
        };
        Ok((out, shape))
    }
}

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "relu-mask"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        fn mask<T: Copy + Default + PartialOrd>(grad: &[T], res: &[T]) -> Vec<T> {
            grad.iter().zip(res).map(|(&g, &r)| if r > T::default() { g } else { T::default() }).collect()
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(g), CpuStorage::F32(r)) => CpuStorage::F32(mask(contiguous(g, l1, "relu-mask")?, contiguous(r, l2, "relu-mask")?)),
            (CpuStorage::F64(g), CpuStorage::F64(r)) => CpuStorage::F64(mask(contiguous(g, l1, "relu-mask")?, contiguous(r, l2, "relu-mask")?)),
            _ => return Err(only_floats("relu-mask")),
        };
        Ok((out, l1.shape().clone()))
    }
}

impl CustomOp2 for ConvRelu {
    fn name(&self) -> &'static str {
        "conv-relu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (cols, cols_shape) = Im2Col(*g).cpu_fwd(s1, l1)?;
        let (m, k) = cols_shape.dims2()?;
        let c_out = l2.dims()[1];
        let mut out = cols.matmul(s2, (1, m, c_out, k), &Layout::contiguous(cols_shape.clone()), l2)?; // (m, c_out)
        let kept = match cols {
            CpuStorage::F32(v) => Tensor::from_vec(v, cols_shape, &Device::Cpu)?,
            CpuStorage::F64(v) => Tensor::from_vec(v, cols_shape, &Device::Cpu)?,
            _ => return Err(only_floats("conv-relu")),
        };
        *self.1.lock().expect("no panics while locked") = Some(kept);
        match &mut out {
            CpuStorage::F32(v) => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            CpuStorage::F64(v) => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            _ => return Err(only_floats("conv-relu")),
        }
        Ok((out, Shape::from((l1.dims()[0], g.out_height(), g.out_width(), c_out))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.0;
        let c_out = w.dim(1)?;
        let m = res.elem_count() / c_out;
        let pre = grad_res.contiguous()?.apply_op2_no_bwd(res, &ReluMask)?.reshape((m, c_out))?; // ∂/∂(pre-activation)
        let kept = self.1.lock().expect("no panics while locked").take();
        let cols = match kept {
            Some(cols) => cols,
            None => x.contiguous()?.apply_op1_no_bwd(&Im2Col(g))?, // (m, patch + 1)
        };
        let grad_w = cols.t()?.matmul(&pre)?; // (patch + 1, c_out)
        let grad_x = if x.track_op() {
            Some(pre.matmul(&w.t()?)?.apply_op1_no_bwd(&Col2Im(g))?) // (n, h, w, c_in)
        } else {
            None
        };
        Ok((grad_x, Some(grad_w)))
    }
}

/// One conv layer with its ReLU on NHWC input (n, h, w, c_in), weight (kh·kw·c_in, c_out) with
/// rows ordered (ky, kx, channel), bias (c_out): returns relu(conv(x) + b), (n, ho, wo, c_out).
/// Forward: im2col, one gemm, ReLU in place. Backward: one gemm for the weights and bias, one
/// gemm and a col2im for the input (skipped when the input needs no gradient).
pub fn conv_relu_nhwc(x: &Tensor, weight: &Tensor, bias: &Tensor, g: ConvGeometry) -> candle_core::Result<Tensor> {
    let w_aug = Tensor::cat(&[weight, &bias.unsqueeze(0)?], 0)?; // (patch + 1, c_out)
    x.contiguous()?.apply_op2_arc(&w_aug, Arc::new(Box::new(ConvRelu(g, Mutex::new(None)))))
}

/// The architecture of a CNN, resolved for one image shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnnShape {
    pub height: usize,
    pub width: usize,
    /// Output channels of each conv layer (depth = its length).
    pub channels: Vec<usize>,
    /// Whether each conv layer has stride 2.
    pub downsample: Vec<bool>,
    pub n_classes: usize,
}

impl CnnShape {
    /// The conv layers' geometries in order.
    pub fn geometries(&self) -> Vec<ConvGeometry> {
        let (mut h, mut w, mut c) = (self.height, self.width, 1);
        let mut out = Vec::new();
        for (&c_out, &down) in self.channels.iter().zip(&self.downsample) {
            let g = ConvGeometry::new(h, w, c, down);
            (h, w, c) = (g.out_height(), g.out_width(), c_out);
            out.push(g);
        }
        out
    }

    /// Spatial size of the last conv layer's maps (what a class-activation map would show).
    pub fn final_map(&self) -> (usize, usize) {
        self.geometries().last().map(|g| (g.out_height(), g.out_width())).unwrap_or((self.height, self.width))
    }
}

/// A CNN: conv layers (weight (kh·kw·c_in, c_out), bias c_out), then global average pooling and
/// a linear head (c_last × k).
pub struct Cnn {
    pub shape: CnnShape,
    geometries: Vec<ConvGeometry>,
    convs: Vec<(Var, Var)>,
    head: (Var, Var),
}

impl Cnn {
    /// Weights from kdlab's seeded RNG, PyTorch's default uniform ±1/√fan_in (fan_in =
    /// kh·kw·c_in for a conv layer).
    pub fn new(shape: CnnShape, seed: u64) -> candle_core::Result<Cnn> {
        Cnn::with_init(shape, seed, WeightInit::Uniform)
    }

    /// Weights from kdlab's seeded RNG, conv weights drawn as `init` says.
    pub fn with_init(shape: CnnShape, seed: u64, init: WeightInit) -> candle_core::Result<Cnn> {
        let mut rng = seed::rng(seed);
        let mut param = |fan_in: usize, fan_out: usize, output_layer: bool| -> candle_core::Result<(Var, Var)> {
            let bound = init.bound(fan_in, output_layer);
            let bias_bound = 1.0 / (fan_in as f64).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            let b: Vec<f32> = (0..fan_out).map(|_| rng.gen_range(-bias_bound..bias_bound) as f32).collect();
            Ok((Var::from_tensor(&Tensor::from_vec(w, (fan_in, fan_out), &Device::Cpu)?)?, Var::from_tensor(&Tensor::from_vec(b, fan_out, &Device::Cpu)?)?))
        };
        let geometries = shape.geometries();
        let convs = geometries.iter().zip(&shape.channels).map(|(g, &c_out)| param(g.patch(), c_out, false)).collect::<candle_core::Result<Vec<_>>>()?;
        let last = *shape.channels.last().unwrap_or(&1);
        let head = param(last, shape.n_classes, true)?;
        Ok(Cnn { shape, geometries, convs, head })
    }

    /// The linear head: weight (c_last × k) and bias (k).
    pub fn head(&self) -> (&Var, &Var) {
        (&self.head.0, &self.head.1)
    }

    /// Trainable variables: each conv's (weight, bias), then the head's.
    pub fn vars(&self) -> Vec<Var> {
        self.convs.iter().chain(std::iter::once(&self.head)).flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    /// The last conv layer's ReLU maps, (n, ho, wo, c_last), from x of shape (n, height·width).
    pub fn feature_maps(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let mut h = x.reshape((n, self.shape.height, self.shape.width, 1))?; // NHWC, c = 1
        for (g, (w, b)) in self.geometries.iter().zip(&self.convs) {
            h = conv_relu_nhwc(&h, w.as_tensor(), b.as_tensor(), *g)?;
        }
        Ok(h)
    }

    /// Every conv layer's ReLU maps (NHWC), the pooled features and the logits.
    pub fn activations(&self, x: &Tensor) -> candle_core::Result<super::loss::Activations> {
        let n = x.dim(0)?;
        let mut h = x.reshape((n, self.shape.height, self.shape.width, 1))?;
        let mut stages = Vec::with_capacity(self.convs.len());
        for (g, (w, b)) in self.geometries.iter().zip(&self.convs) {
            h = conv_relu_nhwc(&h, w.as_tensor(), b.as_tensor(), *g)?;
            stages.push(h.clone());
        }
        let (n, ho, wo, c) = h.dims4()?;
        let penultimate = h.reshape((n, ho * wo, c))?.mean(1)?;
        let logits = penultimate.matmul(self.head.0.as_tensor())?.broadcast_add(self.head.1.as_tensor())?;
        Ok(super::loss::Activations { stages, penultimate, logits })
    }

    /// Logits (n, k) from x of shape (n, height·width).
    pub fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let maps = self.feature_maps(x)?;
        let (n, ho, wo, c) = maps.dims4()?;
        let pooled = maps.reshape((n, ho * wo, c))?.mean(1)?; // (n, c)
        pooled.matmul(self.head.0.as_tensor())?.broadcast_add(self.head.1.as_tensor())
    }
}

/// Logits of `x` in chunks of `rows` rows (im2col of a whole evaluation set would not fit in
/// memory), concatenated; the result does not depend on `rows` beyond rounding of the gemm.
pub fn logits_chunked(net: &Cnn, x: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    if n <= rows {
        return net.logits(x);
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        parts.push(net.logits(&x.narrow(0, start, len)?)?.detach());
        start += len;
    }
    Tensor::cat(&parts, 0)
}

/// Two classes of `side`×`side` images for tests: horizontal stripes (class 0) or vertical
/// stripes (class 1), alternating 1 and 0, plus uniform noise in ±0.5 (row i has class i mod 2).
pub fn stripes(n: usize, side: usize, seed: u64) -> (ndarray::Array2<f64>, Vec<usize>) {
    let mut rng = seed::rng(seed);
    let mut x = ndarray::Array2::zeros((n, side * side));
    let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
    for (i, &c) in y.iter().enumerate() {
        for p in 0..side * side {
            let (row, col) = (p / side, p % side);
            let on = if c == 0 { row % 2 == 0 } else { col % 2 == 0 };
            x[[i, p]] = f64::from(u8::from(on)) + rng.gen_range(-0.5..0.5);
        }
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// Random tensor from kdlab's RNG.
    fn random(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        let mut rng = seed::rng(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    /// The fused conv + ReLU against candle's own conv2d + relu, values and gradients (input,
    /// weight, bias), in f64 so that the only differences are summation order. The strided 1-D
    /// case has width 9: candle's conv2d backward derives one output padding from the height
    /// and applies it to both axes, so it returns a wrongly shaped input gradient when the two
    /// axes would need different ones.
    #[test]
    fn im2col_conv_matches_candle_conv2d_forward_and_backward() {
        for &(h, w, c_in, c_out, down) in &[(7usize, 6usize, 3usize, 4usize, false), (8, 8, 2, 5, true), (9, 7, 1, 3, true), (1, 10, 2, 3, false), (1, 9, 2, 3, true)] {
            let g = ConvGeometry::new(h, w, c_in, down);
            let n = 3;
            let x = Var::from_tensor(&random(&[n, h, w, c_in], 1, DType::F64)).unwrap();
            let wt = Var::from_tensor(&random(&[g.patch(), c_out], 2, DType::F64)).unwrap();
            let b = Var::from_tensor(&random(&[c_out], 3, DType::F64)).unwrap();
            let probe = random(&[n, g.out_height(), g.out_width(), c_out], 4, DType::F64);

            let ours = conv_relu_nhwc(x.as_tensor(), wt.as_tensor(), b.as_tensor(), g).unwrap();
            // candle: NCHW input, kernel (c_out, c_in, kh, kw); ours is (ky, kx, c_in) × c_out.
            let x_nchw = x.as_tensor().permute((0, 3, 1, 2)).unwrap();
            let k = wt.as_tensor().reshape((g.kh, g.kw, c_in, c_out)).unwrap().permute((3, 2, 0, 1)).unwrap().contiguous().unwrap();
            let theirs = if h > 1 {
                x_nchw.contiguous().unwrap().conv2d(&k, 1, g.sh, 1, 1).unwrap()
            } else {
                // A height-1 image: a 3×3 kernel whose outer rows are zero sees only the
                // signal row (candle's conv1d is not used: its kernel gradient disagrees with
                // both this and its own conv2d).
                let zeros = k.zeros_like().unwrap();
                let k3 = Tensor::cat(&[&zeros, &k, &zeros], 2).unwrap();
                x_nchw.contiguous().unwrap().conv2d(&k3, 1, g.sw, 1, 1).unwrap()
            };
            let theirs = theirs.broadcast_add(&b.as_tensor().reshape((1, c_out, 1, 1)).unwrap()).unwrap().relu().unwrap().permute((0, 2, 3, 1)).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_abs_diff(&ours, &theirs) < 1e-5, "forward differs for {h}x{w}");

            let g_ours = (&ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (&theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
                let a = g_ours.get(v.as_tensor()).unwrap();
                let t = g_theirs.get(v.as_tensor()).unwrap();
                assert!(max_abs_diff(a, t) < 1e-5, "{name} gradient differs for {h}x{w}: {}", max_abs_diff(a, t));
            }
        }
    }

    fn shape(height: usize, width: usize) -> CnnShape {
        CnnShape { height, width, channels: vec![4, 8, 8], downsample: vec![false, true, true], n_classes: 5 }
    }

    #[test]
    fn shapes_and_geometry() {
        let s = shape(28, 28);
        assert_eq!(s.final_map(), (7, 7));
        let g = s.geometries();
        assert_eq!((g[1].height, g[1].c_in, g[1].patch()), (28, 4, 36));
        // A 1-D signal: 1×3 kernels, no stride along the height.
        let s1 = shape(1, 40);
        assert_eq!(s1.final_map(), (1, 10));
        assert_eq!(s1.geometries()[1].patch(), 12);
        for s in [s, s1] {
            let net = Cnn::new(s.clone(), 7).unwrap();
            let x = random(&[6, s.height * s.width], 8, DType::F32);
            assert_eq!(net.logits(&x).unwrap().dims(), &[6, 5]);
            let chunked = logits_chunked(&net, &x, 4).unwrap();
            assert!(max_abs_diff(&chunked, &net.logits(&x).unwrap()) < 1e-6);
        }
    }

    #[test]
    fn initialisation_is_seeded() {
        let a = Cnn::new(shape(8, 8), 3).unwrap();
        let b = Cnn::new(shape(8, 8), 3).unwrap();
        let c = Cnn::new(shape(8, 8), 4).unwrap();
        let x = random(&[2, 64], 1, DType::F32);
        let (la, lb, lc) = (a.logits(&x).unwrap(), b.logits(&x).unwrap(), c.logits(&x).unwrap());
        assert_eq!(max_abs_diff(&la, &lb), 0.0);
        assert!(max_abs_diff(&la, &lc) > 0.0);
    }
}
