//! One conv layer with its ReLU as a single candle op on channels-last (NHWC) activations, and
//! global average pooling as another.
//!
//! **Why not candle's `conv2d`.** On the CPU candle's forward pass is im2col + gemm, but its
//! backward pass computes the input gradient with `conv_transpose2d`, a direct nested loop, and
//! the kernel gradient with a second conv2d over transposed (NCHW → CNHW) copies, and every
//! bias add and ReLU is a separate graph node whose backward is several more full passes.
//! Together they made a small CNN's training step several times slower than PyTorch's
//! (`benches/cnn.rs` times both). Here a conv layer with its ReLU is one op:
//!
//! ```text
//! forward:  cols = im2col(h)                  (n·ho·wo, kh·kw·c_in + 1), last column 1
//!           out  = relu(cols @ [W; b])        (n·ho·wo, c_out): one gemm, already NHWC
//! backward: g    = ∂out · 1[out > 0]
//!           ∂[W; b] = colsᵀ @ g               one gemm (the bias row sums g)
//!           ∂h   = col2im(g @ Wᵀ)             one gemm and a scatter-add; skipped for the input
//! ```
//!
//! **A single input channel is convolved directly.** An image's first layer has im2col rows
//! only kh·kw + 1 long, so copying them and a gemm with 8–32 output columns cost far more than
//! the arithmetic; there each output pixel accumulates its channels in registers instead
//! (`direct_forward`, `direct_backward`), its nine taps unrolled away from the border.
//!
//! **Blocks.** Each pass runs on fixed blocks of [`BLOCK_IMAGES`] images: a block's columns
//! and gradients stay in cache from one step to the next, and blocks run in parallel on the
//! rayon pool's idle threads (a unit with a core to spare, such as the last unit of a study,
//! uses it). The weight gradient is the sum of the blocks' gradients in block order, and every
//! block's gemm is single-threaded, so the result does not depend on the thread count.

use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Storage, StorageRef, Tensor, WithDType};
use rayon::prelude::*;

/// Images per block: 16 images of 28×28 keep each layer's columns within a core's L2 cache,
/// and a batch of 64 splits evenly across 2 or 4 threads.
pub const BLOCK_IMAGES: usize = 16;

/// Output channel counts of a single-channel layer that is convolved directly (each a
/// compile-time width, so a pixel's accumulator stays in registers).
const DIRECT_CHANNELS: [usize; 3] = [8, 16, 32];

/// The float types the ops compute in.
trait Element: WithDType + Default + PartialOrd + std::ops::AddAssign + std::ops::MulAssign + std::ops::Mul<Output = Self> + Send + Sync {}
impl Element for f32 {}
impl Element for f64 {}

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

    fn pixels_in(&self) -> usize {
        self.height * self.width
    }

    fn pixels_out(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Calls `f(out_pixel, tap, input_pixel, taps)` for every run of in-bounds taps of one
    /// image, in (oy, ox, ky) order: output pixel (oy, ox) reads `taps` adjacent input pixels
    /// from (iy, ix) on through kernel taps (ky, kx) on. In NHWC a run is contiguous on both
    /// sides, so one copy or add moves `taps · c_in` elements.
    #[inline]
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let (ho, wo) = (self.out_height(), self.out_width());
        for oy in 0..ho {
            for ox in 0..wo {
                // The taps kx in [lo, hi) fall inside the row: 0 <= ox·sw + kx − pw < width.
                let x0 = (ox * self.sw) as isize - self.pw as isize;
                let lo = (-x0).clamp(0, self.kw as isize) as usize;
                let hi = (self.width as isize - x0).clamp(lo as isize, self.kw as isize) as usize;
                if lo == hi {
                    continue;
                }
                for ky in 0..self.kh {
                    let iy = (oy * self.sh + ky) as isize - self.ph as isize;
                    if iy < 0 || iy >= self.height as isize {
                        continue;
                    }
                    f(oy * wo + ox, ky * self.kw + lo, iy as usize * self.width + (x0 + lo as isize) as usize, hi - lo);
                }
            }
        }
    }
}

/// A matrix view for [`gemm`]: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> Mat<'a, T> {
    /// The leading `rows × cols` of a row-major matrix whose rows are `stride` long.
    fn row_major(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        Mat { data, rows, cols, row_stride: stride, col_stride: 1 }
    }

    fn t(self) -> Self {
        Mat { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst (a.rows × b.cols, row-major) = a @ b` on the calling thread, every element of `dst`
/// written; returns it initialised. Hand-called because candle's matmul takes whole storages,
/// not a block's slices.
fn gemm<'d, T: Element>(dst: &'d mut [MaybeUninit<T>], a: Mat<T>, b: Mat<T>) -> &'d mut [T] {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && dst.len() == m * n && a.in_bounds() && b.in_bounds(), "gemm shapes");
    if k == 0 {
        dst.iter_mut().for_each(|d| *d = MaybeUninit::new(T::default()));
    } else if m > 0 && n > 0 {
        let one = T::from_f64(1.0);
        // SAFETY: the assert keeps every index the kernel reads or writes inside the three
        // slices; `dst` is borrowed mutably, so it aliases neither input; with `read_dst`
        // false the kernel writes each element of `dst` without reading it.
        unsafe {
            gemm::gemm(
                m, n, k,
                dst.as_mut_ptr().cast::<T>(), 1, n as isize, false,
                a.data.as_ptr(), a.col_stride as isize, a.row_stride as isize,
                b.data.as_ptr(), b.col_stride as isize, b.row_stride as isize,
                one, one, false, false, false, gemm::Parallelism::None,
            );
        }
    }
    // SAFETY: every element was written above.
    unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `a @ b` as a new row-major vector.
fn gemm_new<T: Element>(a: Mat<T>, b: Mat<T>) -> Vec<T> {
    let len = a.rows * b.cols;
    let mut out = Vec::with_capacity(len);
    gemm(&mut out.spare_capacity_mut()[..len], a, b);
    // SAFETY: gemm wrote all `len` elements.
    unsafe { out.set_len(len) };
    out
}

/// im2col of NHWC images into rows of `patch + 1` columns, the last one 1 (so the bias is the
/// weight matrix's last row and its gradient comes out of the same gemm).
fn im2col<T: Element>(g: &ConvGeometry, images: &[T]) -> Vec<T> {
    let (c, k, run) = (g.c_in, g.patch() + 1, g.kw * g.c_in);
    let len = images.len() / (g.pixels_in() * c) * g.pixels_out() * k;
    let (zero, one) = (T::default(), T::from_f64(1.0));
    // Each element written once, padding taps as zeros, so the buffer needs no zeroing first.
    let mut cols = Vec::with_capacity(len);
    let rows = &mut cols.spare_capacity_mut()[..len];
    let mut row_start = 0;
    for img in images.chunks_exact(g.pixels_in() * c) {
        for oy in 0..g.out_height() {
            for ox in 0..g.out_width() {
                // The taps kx in [lo, hi) fall inside the row: 0 <= ox·sw + kx − pw < width.
                let x0 = (ox * g.sw) as isize - g.pw as isize;
                let lo = (-x0).clamp(0, g.kw as isize) as usize;
                let hi = (g.width as isize - x0).clamp(lo as isize, g.kw as isize) as usize;
                let row = &mut rows[row_start..row_start + k];
                for (ky, taps) in row[..g.patch()].chunks_exact_mut(run).enumerate() {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.height as isize {
                        taps.iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                        continue;
                    }
                    let q = iy as usize * g.width + (x0 + lo as isize) as usize;
                    taps[..lo * c].iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                    taps[lo * c..hi * c].iter_mut().zip(&img[q * c..(q + hi - lo) * c]).for_each(|(t, &v)| *t = MaybeUninit::new(v));
                    taps[hi * c..].iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                }
                row[k - 1] = MaybeUninit::new(one);
                row_start += k;
            }
        }
    }
    // SAFETY: the loops above wrote every one of the `len` elements.
    unsafe { cols.set_len(len) };
    cols
}

/// The adjoint of [`im2col`] without its constant column: `cols` rows are `patch` long and
/// overlapping taps are added into `images` (zeroed by the caller) in (oy, ox, ky, kx) order
/// for every element, whatever the run lengths.
fn col2im<T: Element>(g: &ConvGeometry, cols: &[T], images: &mut [T]) {
    let (c, patch) = (g.c_in, g.patch());
    for (img, rows) in images.chunks_exact_mut(g.pixels_in() * c).zip(cols.chunks_exact(g.pixels_out() * patch)) {
        g.for_each_run(|p, tap, q, taps| {
            let from = &rows[p * patch + tap * c..p * patch + (tap + taps) * c];
            img[q * c..(q + taps) * c].iter_mut().zip(from).for_each(|(d, &s)| *d += s);
        });
    }
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

/// A tensor's data on the CPU, contiguous, from its held storage.
fn cpu_data<'a, T: Element>((storage, layout): &'a (StorageRef<'_>, &Layout)) -> candle_core::Result<&'a [T]> {
    match &**storage {
        Storage::Cpu(s) => contiguous(T::cpu_storage_as_slice(s)?, layout, "conv-relu"),
        _ => Err(candle_core::Error::Msg("conv-relu: CPU tensors only".into())),
    }
}

/// One conv layer with its ReLU: its geometry and output channels. Its weights are the
/// row-major (patch + 1) × c_out matrix [W; b], rows ordered (ky, kx, channel), bias last.
#[derive(Debug, Clone, Copy)]
struct ConvLayer {
    geometry: ConvGeometry,
    c_out: usize,
}

impl ConvLayer {
    /// Elements of its [W; b] matrix.
    fn weights(&self) -> usize {
        (self.geometry.patch() + 1) * self.c_out
    }

    fn block_in(&self) -> usize {
        BLOCK_IMAGES * self.geometry.pixels_in() * self.geometry.c_in
    }

    fn block_out(&self) -> usize {
        BLOCK_IMAGES * self.geometry.pixels_out() * self.c_out
    }

    /// A single input channel (an image's first layer) is convolved directly: its im2col rows
    /// would be only kh·kw + 1 long, and copying them cost more than the arithmetic. The
    /// direct kernels exist for the channel counts networks use.
    fn direct(&self) -> bool {
        self.geometry.c_in == 1 && DIRECT_CHANNELS.contains(&self.c_out)
    }

    /// relu(im2col(x) @ [W; b]) and each block's columns (none for a direct layer).
    fn forward<T: Element>(&self, x: &[T], w: &[T]) -> (Vec<T>, Vec<Vec<T>>) {
        let (g, k, c_out) = (&self.geometry, self.geometry.patch() + 1, self.c_out);
        let len = x.len() / (g.pixels_in() * g.c_in) * g.pixels_out() * c_out;
        let mut out = Vec::with_capacity(len);
        let columns = out.spare_capacity_mut()[..len]
            .par_chunks_mut(self.block_out())
            .zip(x.par_chunks(self.block_in()))
            .map(|(out, images)| {
                let (out, cols) = match self.direct() {
                    true => (direct_forward(g, c_out, images, w, out), Vec::new()),
                    false => {
                        let cols = im2col(g, images);
                        (gemm(out, Mat::row_major(&cols, out.len() / c_out, k, k), Mat::row_major(w, k, c_out, c_out)), cols)
                    }
                };
                // A select, not a conditional store, so the loop vectorises (NaN → 0 either way).
                out.iter_mut().for_each(|v| *v = if *v > T::default() { *v } else { T::default() });
                cols
            })
            .collect();
        // SAFETY: every block wrote every element of its chunk of the first `len`.
        unsafe { out.set_len(len) };
        (out, columns)
    }

    /// ∂[W; b] (blocks summed in order) and, when `input_grad`, ∂x of `n_in` elements, from
    /// the layer's input, output, output gradient and the forward pass's columns.
    #[allow(clippy::too_many_arguments)]
    fn backward<T: Element>(&self, w: &[T], x: &[T], out: &[T], grad: &[T], columns: &[Vec<T>], input_grad: Option<usize>) -> (Vec<T>, Option<Vec<T>>) {
        let (g, c_out) = (&self.geometry, self.c_out);
        let (patch, k) = (g.patch(), g.patch() + 1);
        let blocks = x.len().div_ceil(self.block_in());
        // Without an input gradient each block gets a one-element stand-in chunk, left unused.
        let mut grad_x = vec![T::default(); input_grad.unwrap_or(blocks)];
        let block_in = if input_grad.is_some() { self.block_in() } else { 1 };
        let no_columns: Vec<Vec<T>> = vec![Vec::new(); blocks];
        let columns = if self.direct() { &no_columns } else { columns };
        let grad_w_blocks: Vec<Vec<T>> = columns
            .par_iter()
            .zip(x.par_chunks(self.block_in()))
            .zip(out.par_chunks(self.block_out()).zip(grad.par_chunks(self.block_out())))
            .zip(grad_x.par_chunks_mut(block_in))
            .map(|(((cols, images), (out, grad)), grad_x)| {
                let pre = relu_grad(out, grad);
                if self.direct() {
                    return direct_backward(g, c_out, images, w, &pre, input_grad.map(|_| grad_x));
                }
                let m = out.len() / c_out;
                let grad_w = gemm_new(Mat::row_major(cols, m, k, k).t(), Mat::row_major(&pre, m, c_out, c_out));
                if input_grad.is_some() {
                    let grad_cols = gemm_new(Mat::row_major(&pre, m, c_out, c_out), Mat::row_major(w, patch, c_out, c_out).t());
                    col2im(g, &grad_cols, grad_x);
                }
                grad_w
            })
            .collect();
        let mut grad_w = vec![T::default(); k * c_out];
        for block in &grad_w_blocks {
            grad_w.iter_mut().zip(block).for_each(|(s, &b)| *s += b);
        }
        (grad_w, input_grad.map(|_| grad_x))
    }
}

/// A direct layer's pre-activation b + Σ_taps x·W for a block of single-channel images:
/// bias first, then the taps in (ky, kx) order, per output pixel.
fn direct_forward<'d, T: Element>(g: &ConvGeometry, c_out: usize, images: &[T], w: &[T], out: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    match c_out {
        8 => direct_forward_fixed::<T, 8>(g, images, w, out),
        16 => direct_forward_fixed::<T, 16>(g, images, w, out),
        _ => direct_forward_fixed::<T, 32>(g, images, w, out),
    }
}

/// The weight rows [W; b] of a direct layer as arrays of its `N` output channels.
fn rows_of<T: Element, const N: usize>(w: &[T]) -> Vec<[T; N]> {
    w.chunks_exact(N).map(|r| std::array::from_fn(|i| r[i])).collect()
}

/// The taps kx in [lo, hi) of output column `ox` that fall inside the image row, and the
/// input column of tap 0 (negative in the padding).
#[inline]
fn row_taps(g: &ConvGeometry, ox: usize) -> (usize, usize, isize) {
    let x0 = (ox * g.sw) as isize - g.pw as isize;
    let lo = (-x0).clamp(0, g.kw as isize) as usize;
    let hi = (g.width as isize - x0).clamp(lo as isize, g.kw as isize) as usize;
    (lo, hi, x0)
}

fn direct_forward_fixed<'d, T: Element, const N: usize>(g: &ConvGeometry, images: &[T], w: &[T], out: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    let rows = rows_of::<T, N>(w);
    let (bias, taps) = rows.split_last().expect("a bias row");
    let mut pixels = out.chunks_exact_mut(N);
    for img in images.chunks_exact(g.pixels_in()) {
        for oy in 0..g.out_height() {
            for ox in 0..g.out_width() {
                let mut acc = *bias;
                if interior_run(g, oy, ox).is_some() {
                    // All nine taps inside: constant bounds, so the loops unroll.
                    let top = (oy * g.sh - g.ph) * g.width + ox * g.sw - g.pw;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let v = img[top + ky * g.width + kx];
                            for i in 0..N {
                                acc[i] += v * taps[ky * 3 + kx][i];
                            }
                        }
                    }
                } else {
                    let (lo, hi, x0) = row_taps(g, ox);
                    for ky in 0..g.kh {
                        let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                        if iy < 0 || iy >= g.height as isize {
                            continue;
                        }
                        for kx in lo..hi {
                            let v = img[(iy * g.width as isize + x0 + kx as isize) as usize];
                            let r = &taps[ky * g.kw + kx];
                            for i in 0..N {
                                acc[i] += v * r[i];
                            }
                        }
                    }
                }
                let pixel = pixels.next().expect("one output pixel per chunk");
                pixel.iter_mut().zip(acc).for_each(|(o, a)| *o = MaybeUninit::new(a));
            }
        }
    }
    // SAFETY: the loops wrote one chunk per output pixel of every image, which covers `out`.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The gradient before the ReLU: `grad` where the output is positive, else 0.
fn relu_grad<T: Element>(out: &[T], grad: &[T]) -> Vec<T> {
    grad.iter().zip(out).map(|(&d, &o)| if o > T::default() { d } else { T::default() }).collect()
}

/// A direct layer's ∂[W; b] for a block (pixels in order, taps in (ky, kx) order) from the
/// gradient before its ReLU and, when asked, its ∂x.
fn direct_backward<T: Element>(g: &ConvGeometry, c_out: usize, images: &[T], w: &[T], pre: &[T], grad_x: Option<&mut [T]>) -> Vec<T> {
    let grad_w = match c_out {
        8 => direct_weight_grad::<T, 8>(g, images, pre),
        16 => direct_weight_grad::<T, 16>(g, images, pre),
        _ => direct_weight_grad::<T, 32>(g, images, pre),
    };
    if let Some(grad_x) = grad_x {
        let pixels = g.pixels_out() * c_out;
        for (img, maps) in grad_x.chunks_exact_mut(g.pixels_in()).zip(pre.chunks_exact(pixels)) {
            g.for_each_run(|p, tap, q, taps| {
                let d = &maps[p * c_out..(p + 1) * c_out];
                for (j, x) in img[q..q + taps].iter_mut().enumerate() {
                    let row = &w[(tap + j) * c_out..(tap + j + 1) * c_out];
                    *x += row.iter().zip(d).fold(T::default(), |s, (&r, &e)| s + r * e);
                }
            });
        }
    }
    grad_w
}

/// ∂[W; b] of a direct layer with `N` output channels.
fn direct_weight_grad<T: Element, const N: usize>(g: &ConvGeometry, images: &[T], pre: &[T]) -> Vec<T> {
    let patch = g.patch();
    let mut sums = vec![[T::default(); N]; patch + 1];
    for (img, maps) in images.chunks_exact(g.pixels_in()).zip(pre.chunks_exact(g.pixels_out() * N)) {
        for oy in 0..g.out_height() {
            let mut ox = 0;
            while ox < g.out_width() {
                if let Some(end) = interior_run(g, oy, ox) {
                    interior_weight_grad::<T, N>(g, img, maps, oy, ox..end, &mut sums);
                    ox = end;
                    continue;
                }
                let p = oy * g.out_width() + ox;
                let d: [T; N] = std::array::from_fn(|i| maps[p * N + i]);
                let (lo, hi, x0) = row_taps(g, ox);
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.height as isize {
                        continue;
                    }
                    for kx in lo..hi {
                        let v = img[(iy * g.width as isize + x0 + kx as isize) as usize];
                        let s = &mut sums[ky * g.kw + kx];
                        for i in 0..N {
                            s[i] += v * d[i];
                        }
                    }
                }
                let b = &mut sums[patch];
                for i in 0..N {
                    b[i] += d[i];
                }
                ox += 1;
            }
        }
    }
    sums.concat()
}

/// For a 3×3 kernel: the end of the run of output columns from `ox` on whose nine taps all
/// fall inside the image, if `ox` starts one.
fn interior_run(g: &ConvGeometry, oy: usize, ox: usize) -> Option<usize> {
    let rows_inside = oy * g.sh >= g.ph && oy * g.sh + g.kh <= g.height + g.ph;
    if g.kh != 3 || g.kw != 3 || !rows_inside || ox * g.sw < g.pw {
        return None;
    }
    // Column ox's last tap reads input column ox·sw − pw + 2, which must be below width.
    let end = ((g.width + g.pw - 3) / g.sw + 1).min(g.out_width());
    (ox < end).then_some(end)
}

/// The weight gradient of a run of interior pixels, its ten sums held in registers across
/// the run (pixels still added in order, so the result is the per-pixel loop's).
fn interior_weight_grad<T: Element, const N: usize>(g: &ConvGeometry, img: &[T], maps: &[T], oy: usize, run: std::ops::Range<usize>, sums: &mut [[T; N]]) {
    let mut acc: [[T; N]; 10] = std::array::from_fn(|t| sums[t]);
    let top = (oy * g.sh - g.ph) * g.width;
    let rows = [top, top + g.width, top + 2 * g.width];
    for ox in run {
        let d: [T; N] = std::array::from_fn(|i| maps[(oy * g.out_width() + ox) * N + i]);
        let x = ox * g.sw - g.pw;
        for ky in 0..3 {
            for kx in 0..3 {
                let v = img[rows[ky] + x + kx];
                for i in 0..N {
                    acc[ky * 3 + kx][i] += v * d[i];
                }
            }
        }
        for i in 0..N {
            acc[9][i] += d[i];
        }
    }
    sums[..10].copy_from_slice(&acc);
}

/// What a forward pass keeps for the backward pass: each layer's output but the last (the
/// op's result), and each layer's blocks' columns.
struct Saved<T> {
    outputs: Vec<Vec<T>>,
    columns: Vec<Vec<Vec<T>>>,
}

/// Conv layers with their ReLUs as one op on (x, every layer's [W; b] flattened and
/// concatenated). One graph node for the stack: the backward pass hands each layer's input
/// gradient straight to the layer below, where candle would add it to a zeroed tensor.
struct ConvStack {
    layers: Vec<ConvLayer>,
    keep: bool,
    saved: Mutex<Option<Box<dyn Any + Send>>>,
}

impl ConvStack {
    /// Each layer's slice of the flattened weights.
    fn split<'a, T>(&self, w: &'a [T]) -> Vec<&'a [T]> {
        let mut rest = w;
        self.layers.iter().map(|l| {
            let (head, tail) = rest.split_at(l.weights());
            rest = tail;
            head
        }).collect()
    }

    fn forward<T: Element>(&self, x: &[T], w: &[T]) -> Vec<T> {
        let weights = self.split(w);
        let mut outputs: Vec<Vec<T>> = Vec::with_capacity(self.layers.len());
        let mut columns = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let input: &[T] = if i == 0 { x } else { &outputs[i - 1] };
            let (out, cols) = layer.forward(input, weights[i]);
            outputs.push(out);
            columns.push(cols);
        }
        let last = outputs.pop().unwrap_or_default();
        if self.keep {
            *self.saved.lock().expect("no panics while locked") = Some(Box::new(Saved { outputs, columns }));
        }
        last
    }

    fn bwd_typed<T: Element>(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_res = grad_res.contiguous()?;
        let held = [x, w, res, &grad_res].map(Tensor::storage_and_layout);
        let (x_data, weights) = (cpu_data::<T>(&held[0])?, self.split(cpu_data::<T>(&held[1])?));
        let saved = self.saved.lock().expect("no panics while locked");
        let Some(saved) = saved.as_ref().and_then(|s| s.downcast_ref::<Saved<T>>()) else {
            return Err(candle_core::Error::Msg("conv-relu: a backward pass without its forward pass's columns".into()));
        };
        let mut grad_w: Vec<Vec<T>> = vec![Vec::new(); self.layers.len()];
        let mut grad: Option<Vec<T>> = None;
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let out = if i + 1 == self.layers.len() { cpu_data::<T>(&held[2])? } else { &saved.outputs[i] };
            let input_len = if i == 0 { x_data.len() } else { saved.outputs[i - 1].len() };
            let input_grad = (i > 0 || x.track_op()).then_some(input_len);
            let input = if i == 0 { x_data } else { &saved.outputs[i - 1] };
            let (gw, gx) = layer.backward(weights[i], input, out, grad.as_deref().map_or(cpu_data::<T>(&held[3]), Ok)?, &saved.columns[i], input_grad);
            grad_w[i] = gw;
            grad = gx;
        }
        let grad_x = grad.map(|v| Tensor::from_vec(v, x.shape(), x.device())).transpose()?;
        Ok((grad_x, Some(Tensor::from_vec(grad_w.concat(), w.shape(), w.device())?)))
    }
}

impl CustomOp2 for ConvStack {
    fn name(&self) -> &'static str {
        "conv-relu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        fn run<T: Element>(op: &ConvStack, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<CpuStorage> {
            let x = contiguous(T::cpu_storage_as_slice(s1)?, l1, "conv-relu")?;
            let w = contiguous(T::cpu_storage_as_slice(s2)?, l2, "conv-relu")?;
            Ok(T::to_cpu_storage_owned(op.forward(x, w)))
        }
        let last = self.layers.last().ok_or_else(|| candle_core::Error::Msg("conv-relu: no layers".into()))?;
        let out = match s1.dtype() {
            DType::F32 => run::<f32>(self, s1, l1, s2, l2)?,
            DType::F64 => run::<f64>(self, s1, l1, s2, l2)?,
            _ => return Err(only_floats("conv-relu")),
        };
        let g = &last.geometry;
        Ok((out, Shape::from((l1.dims()[0], g.out_height(), g.out_width(), last.c_out))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        match x.dtype() {
            DType::F32 => self.bwd_typed::<f32>(x, w, res, grad_res),
            DType::F64 => self.bwd_typed::<f64>(x, w, res, grad_res),
            _ => Err(only_floats("conv-relu")),
        }
    }
}

/// Conv layers, each with its ReLU, on NHWC input (n, h, w, c_in): each layer is its geometry,
/// weight (kh·kw·c_in, c_out) with rows ordered (ky, kx, channel) and bias (c_out). Returns the
/// last layer's maps (n, ho, wo, c_out) as one graph node; builds no graph when neither the
/// input nor the weights need a gradient.
pub fn conv_stack_nhwc(x: &Tensor, layers: &[(ConvGeometry, &Tensor, &Tensor)]) -> candle_core::Result<Tensor> {
    let mut flat = Vec::with_capacity(2 * layers.len());
    for (_, w, b) in layers {
        flat.push(w.flatten_all()?);
        flat.push(b.flatten_all()?);
    }
    let weights = Tensor::cat(&flat, 0)?;
    let stack = layers.iter().map(|&(geometry, w, _)| Ok(ConvLayer { geometry, c_out: w.dim(1)? })).collect::<candle_core::Result<Vec<_>>>()?;
    // Shapes that match the geometry, so no element count could be misread.
    let (_, h, w, c) = x.dims4()?;
    let (mut input, mut chained) = ((h, w, c), true);
    for (layer, (g, weight, bias)) in stack.iter().zip(layers) {
        chained &= (g.height, g.width, g.c_in) == input && weight.dims() == [g.patch(), layer.c_out] && bias.dims() == [layer.c_out];
        input = (g.out_height(), g.out_width(), layer.c_out);
    }
    if !chained {
        return Err(candle_core::Error::Msg("conv-relu: the input, weights and biases do not match the layers' geometry".into()));
    }
    let keep = x.track_op() || weights.track_op();
    x.contiguous()?.apply_op2_arc(&weights, Arc::new(Box::new(ConvStack { layers: stack, keep, saved: Mutex::new(None) })))
}

/// One conv layer with its ReLU, see [`conv_stack_nhwc`]: relu(conv(x) + b).
pub fn conv_relu_nhwc(x: &Tensor, weight: &Tensor, bias: &Tensor, g: ConvGeometry) -> candle_core::Result<Tensor> {
    conv_stack_nhwc(x, &[(g, weight, bias)])
}

/// Global average pooling of NHWC maps (n, h, w, c) → (n, c).
struct AveragePool;

/// Its backward: (n, c) → (n, h, w, c), each pixel the gradient over h·w.
struct AveragePoolGrad(Shape);

impl CustomOp1 for AveragePool {
    fn name(&self) -> &'static str {
        "average-pool"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        fn run<T: Element>(s: &CpuStorage, l: &Layout) -> candle_core::Result<CpuStorage> {
            let (n, h, w, c) = l.shape().dims4()?;
            let maps = contiguous(T::cpu_storage_as_slice(s)?, l, "average-pool")?;
            let scale = T::from_f64(1.0 / (h * w) as f64);
            let mut out = vec![T::default(); n * c];
            for (sum, image) in out.chunks_exact_mut(c).zip(maps.chunks_exact(h * w * c)) {
                for pixel in image.chunks_exact(c) {
                    sum.iter_mut().zip(pixel).for_each(|(s, &v)| *s += v);
                }
                sum.iter_mut().for_each(|s| *s *= scale);
            }
            Ok(T::to_cpu_storage_owned(out))
        }
        let (n, _, _, c) = layout.shape().dims4()?;
        let out = match storage.dtype() {
            DType::F32 => run::<f32>(storage, layout)?,
            DType::F64 => run::<f64>(storage, layout)?,
            _ => return Err(only_floats("average-pool")),
        };
        Ok((out, Shape::from((n, c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&AveragePoolGrad(arg.shape().clone()))?))
    }
}

impl CustomOp1 for AveragePoolGrad {
    fn name(&self) -> &'static str {
        "average-pool-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        fn run<T: Element>(shape: &Shape, s: &CpuStorage, l: &Layout) -> candle_core::Result<CpuStorage> {
            let (_, h, w, c) = shape.dims4()?;
            let grad = contiguous(T::cpu_storage_as_slice(s)?, l, "average-pool-grad")?;
            let scale = T::from_f64(1.0 / (h * w) as f64);
            let mut out = Vec::with_capacity(shape.elem_count());
            for g in grad.chunks_exact(c) {
                let pixel: Vec<T> = g.iter().map(|&v| v * scale).collect();
                (0..h * w).for_each(|_| out.extend_from_slice(&pixel));
            }
            Ok(T::to_cpu_storage_owned(out))
        }
        let out = match storage.dtype() {
            DType::F32 => run::<f32>(&self.0, storage, layout)?,
            DType::F64 => run::<f64>(&self.0, storage, layout)?,
            _ => return Err(only_floats("average-pool-grad")),
        };
        Ok((out, self.0.clone()))
    }
}

/// The mean over pixels of NHWC maps (n, h, w, c) → (n, c), in one pass each way.
pub fn average_pool_nhwc(maps: &Tensor) -> candle_core::Result<Tensor> {
    maps.contiguous()?.apply_op1(AveragePool)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::seed;
    use candle_core::{Device, Var};
    use rand::Rng;

    /// Random tensor from kdlab's RNG.
    pub(crate) fn random(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        let mut rng = seed::rng(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    /// The fused conv + ReLU against candle's own conv2d + relu, values and gradients (input,
    /// weight, bias), in f64 so that the only differences are summation order. Batches of 3
    /// and 19 images: one block, and three blocks of which the last is partial. The strided
    /// 1-D case has width 9: candle's conv2d backward derives one output padding from the
    /// height and applies it to both axes, so it returns a wrongly shaped input gradient when
    /// the two axes would need different ones.
    #[test]
    fn im2col_conv_matches_candle_conv2d_forward_and_backward() {
        // c_in = 1 with 8, 16 or 32 output channels takes the direct path (with and without
        // striding, on images and on 1-D signals); the rest take im2col.
        let cases = [(7usize, 6usize, 3usize, 4usize, false), (8, 8, 2, 5, true), (9, 7, 1, 3, true), (1, 10, 2, 3, false), (1, 9, 2, 3, true), (7, 6, 1, 8, false), (9, 7, 1, 16, true), (1, 11, 1, 32, false), (5, 5, 1, 8, true)];
        for (&(h, w, c_in, c_out, down), n) in cases.iter().flat_map(|c| [(c, 3), (c, 2 * BLOCK_IMAGES + 3)]) {
            let g = ConvGeometry::new(h, w, c_in, down);
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
            assert!(max_abs_diff(&ours, &theirs) < 1e-5, "forward differs for {h}x{w}, n = {n}");

            let g_ours = (&ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g_theirs = (&theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
                let a = g_ours.get(v.as_tensor()).unwrap();
                let t = g_theirs.get(v.as_tensor()).unwrap();
                assert!(max_abs_diff(a, t) < 1e-5, "{name} gradient differs for {h}x{w}, n = {n}: {}", max_abs_diff(a, t));
            }
        }
    }

    /// The same conv on one thread and on three gives bit-identical values and gradients.
    #[test]
    fn conv_results_do_not_depend_on_the_thread_count() {
        let g = ConvGeometry::new(10, 10, 4, true);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let x = Var::from_tensor(&random(&[4 * BLOCK_IMAGES + 1, 10, 10, 4], 1, DType::F32)).unwrap();
                let wt = Var::from_tensor(&random(&[g.patch(), 6], 2, DType::F32)).unwrap();
                let b = Var::from_tensor(&random(&[6], 3, DType::F32)).unwrap();
                let out = conv_relu_nhwc(x.as_tensor(), wt.as_tensor(), b.as_tensor(), g).unwrap();
                let grads = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                [out, grads.get(x.as_tensor()).unwrap().clone(), grads.get(wt.as_tensor()).unwrap().clone()]
                    .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            })
        };
        assert_eq!(run(1), run(3));
    }

    /// Three layers as one op give bit-identical maps and gradients to the same layers one op
    /// each (where candle adds each layer's input gradient to a zeroed tensor: an exact 0 + g).
    #[test]
    fn a_stack_is_its_layers_composed() {
        let gs = [ConvGeometry::new(9, 9, 1, false), ConvGeometry::new(9, 9, 3, true), ConvGeometry::new(5, 5, 4, true)];
        let c_outs = [3, 4, 2];
        let x = random(&[BLOCK_IMAGES + 2, 9, 9, 1], 1, DType::F32);
        let params: Vec<(Var, Var)> = gs.iter().zip(c_outs).enumerate().map(|(i, (g, c))| {
            (Var::from_tensor(&random(&[g.patch(), c], 10 + i as u64, DType::F32)).unwrap(), Var::from_tensor(&random(&[c], 20 + i as u64, DType::F32)).unwrap())
        }).collect();
        let layers: Vec<(ConvGeometry, &Tensor, &Tensor)> = gs.iter().zip(&params).map(|(&g, (w, b))| (g, w.as_tensor(), b.as_tensor())).collect();
        let stacked = conv_stack_nhwc(&x, &layers).unwrap();
        let mut composed = x.clone();
        for &(g, w, b) in &layers {
            composed = conv_relu_nhwc(&composed, w, b, g).unwrap();
        }
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&stacked), flat(&composed));
        let probe = random(stacked.dims(), 5, DType::F32);
        let a = (&stacked * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let b = (&composed * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for (w, bias) in &params {
            assert_eq!(flat(a.get(w.as_tensor()).unwrap()), flat(b.get(w.as_tensor()).unwrap()));
            assert_eq!(flat(a.get(bias.as_tensor()).unwrap()), flat(b.get(bias.as_tensor()).unwrap()));
        }
    }

    #[test]
    fn average_pool_matches_the_mean_and_its_gradient() {
        let maps = Var::from_tensor(&random(&[3, 4, 5, 6], 1, DType::F64)).unwrap();
        let ours = average_pool_nhwc(maps.as_tensor()).unwrap();
        let theirs = maps.as_tensor().reshape((3, 20, 6)).unwrap().mean(1).unwrap();
        assert!(max_abs_diff(&ours, &theirs) < 1e-12);
        let probe = random(&[3, 6], 2, DType::F64);
        let a = (&ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let b = (&theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_abs_diff(a.get(maps.as_tensor()).unwrap(), b.get(maps.as_tensor()).unwrap()) < 1e-12);
    }
}
