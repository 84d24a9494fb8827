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
//! backward: g    = ∂out · 1[out > 0]          (applied by the layer above when it wrote ∂out)
//!           ∂[W; b] = colsᵀ @ g               one gemm (the bias row sums g)
//!           ∂h   = col2im(g @ Wᵀ) · 1[h > 0]  one gemm and a gather; skipped for the input
//! ```
//!
//! Forward im2col and gemm, and backward gemm and col2im, run chunk by chunk of a few images,
//! so each chunk's columns are read back while still in cache. col2im gathers each input
//! pixel's taps in registers and writes it once, with the ReLU mask of the layer below
//! applied, so that layer's backward pass needs no mask of its own.
//!
//! **A single input channel is convolved directly.** An image's first layer has im2col rows
//! only kh·kw + 1 long, so copying them and a gemm with 8–32 output columns cost far more than
//! the arithmetic; there runs of output pixels accumulate their channels in registers instead
//! (`direct_forward`, `direct_weight_grad`), on a copy of the images with their zero padding
//! written out so that no tap needs a bounds test. These kernels use fused multiply-adds, as
//! gemm's do.
//!
//! **Blocks.** Each pass runs on fixed blocks of [`BLOCK_IMAGES`] images: blocks run in
//! parallel on the rayon pool's idle threads (a unit with a core to spare, such as the last
//! unit of a study, uses it). The weight gradient is the sum of the blocks' gradients in block
//! order, and every block's gemm is single-threaded, so the result does not depend on the
//! thread count.

use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Storage, StorageRef, Tensor, WithDType};
use rayon::prelude::*;

/// Images per block: a batch of 64 splits evenly across 2 or 4 threads.
pub const BLOCK_IMAGES: usize = 16;

/// Elements of im2col columns or their gradient handled at once (128 KiB of f32): they stay in
/// a core's L2 cache between the two steps that write and read them.
const CHUNK_ELEMENTS: usize = 32 * 1024;

/// Output pixels a chunk has at least (small images with many channels): a gemm over fewer
/// rows costs more in its set-up than the cache saves.
const CHUNK_MIN_PIXELS: usize = 256;

/// Output channel counts of a single-channel layer that is convolved directly (each a
/// compile-time width, so a pixel's accumulator stays in registers).
const DIRECT_CHANNELS: [usize; 3] = [8, 16, 32];

/// The float types the ops compute in.
trait Element: WithDType + Default + PartialOrd + std::ops::AddAssign + std::ops::MulAssign + std::ops::Mul<Output = Self> + Send + Sync {
    /// `self · a + b` rounded once: one instruction on CPUs with FMA, as gemm's kernels use.
    fn mul_add(self, a: Self, b: Self) -> Self;
}
impl Element for f32 {
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}
impl Element for f64 {
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}

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

/// im2col of NHWC images into `rows`, each `patch + 1` long, the last element 1 (so the bias
/// is the weight matrix's last row and its gradient comes out of the same gemm). Every
/// element is written once, padding taps as zeros, so `rows` needs no zeroing first.
fn im2col<'r, T: Element>(g: &ConvGeometry, images: &[T], rows: &'r mut [MaybeUninit<T>]) -> &'r [T] {
    match g.c_in {
        8 => im2col_fixed::<T, 8>(g, images, rows),
        16 => im2col_fixed::<T, 16>(g, images, rows),
        24 => im2col_fixed::<T, 24>(g, images, rows),
        32 => im2col_fixed::<T, 32>(g, images, rows),
        64 => im2col_fixed::<T, 64>(g, images, rows),
        128 => im2col_fixed::<T, 128>(g, images, rows),
        _ => im2col_fixed::<T, 0>(g, images, rows),
    }
    // SAFETY: im2col_fixed wrote every element of `rows`.
    unsafe { &*(rows as *mut [MaybeUninit<T>] as *const [T]) }
}

/// [`im2col`] for `C` input channels (0: a count known only at run time). A kernel row whose
/// three taps all fall inside the image is one copy of constant length 3·C, a few vector
/// moves; copies of a run's length compiled to a memmove call or to scalar moves.
fn im2col_fixed<T: Element, const C: usize>(g: &ConvGeometry, images: &[T], rows: &mut [MaybeUninit<T>]) {
    let (c, k, run) = (g.c_in, g.patch() + 1, g.kw * g.c_in);
    let zero = T::default();
    let mut pixels = rows.chunks_exact_mut(k);
    for img in images.chunks_exact(g.pixels_in() * c) {
        for oy in 0..g.out_height() {
            for ox in 0..g.out_width() {
                let (lo, hi, x0) = row_taps(g, ox);
                let (taps, last) = pixels.next().expect("a row per output pixel").split_at_mut(k - 1);
                for (ky, taps) in taps.chunks_exact_mut(run).enumerate() {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.height as isize {
                        taps.iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                        continue;
                    }
                    let q = (iy as usize * g.width + (x0 + lo as isize) as usize) * c;
                    if C > 0 && lo == 0 && hi == 3 {
                        let (to, from) = (&mut taps[..3 * C], &img[q..q + 3 * C]);
                        for i in 0..3 * C {
                            to[i] = MaybeUninit::new(from[i]);
                        }
                        continue;
                    }
                    taps[..lo * c].iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                    taps[lo * c..hi * c].iter_mut().zip(&img[q..q + (hi - lo) * c]).for_each(|(t, &v)| *t = MaybeUninit::new(v));
                    taps[hi * c..].iter_mut().for_each(|t| *t = MaybeUninit::new(zero));
                }
                last[0] = MaybeUninit::new(T::from_f64(1.0));
            }
        }
    }
}

/// The taps kx in [lo, hi) of output column `ox` that fall inside the image row, and the
/// input column of tap 0 (negative in the padding).
fn row_taps(g: &ConvGeometry, ox: usize) -> (usize, usize, isize) {
    let x0 = (ox * g.sw) as isize - g.pw as isize;
    let lo = (-x0).clamp(0, g.kw as isize) as usize;
    let hi = (g.width as isize - x0).clamp(lo as isize, g.kw as isize) as usize;
    (lo, hi, x0)
}

/// The adjoint of [`im2col`] without its constant column: `cols` rows are `patch` long. Each input element gathers the taps that read it (in the order of
/// [`gather_table`]) in registers and is written once, as 0 where `mask` (the input, a ReLU's
/// output) is not positive: scattering overlapping runs instead stalled on store forwarding.
fn col2im<'d, T: Element>(g: &ConvGeometry, table: &GatherTable, cols: &[T], mask: Option<&[T]>, images: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    match g.c_in {
        8 => col2im_fixed::<T, 8>(g, table, cols, mask, images),
        16 => col2im_fixed::<T, 16>(g, table, cols, mask, images),
        24 => col2im_fixed::<T, 24>(g, table, cols, mask, images),
        32 => col2im_fixed::<T, 32>(g, table, cols, mask, images),
        64 => col2im_fixed::<T, 64>(g, table, cols, mask, images),
        c if c % 32 == 0 => col2im_fixed::<T, 32>(g, table, cols, mask, images),
        c if c % 8 == 0 => col2im_fixed::<T, 8>(g, table, cols, mask, images),
        _ => col2im_fixed::<T, 1>(g, table, cols, mask, images),
    }
}

/// For each input pixel of an image, where [`col2im`] finds the taps that read it in a
/// block's gradient columns: `sources[starts[q]..starts[q + 1]]`, offsets of channel 0, in
/// (oy, ky, ox, kx) order.
type GatherTable = (Vec<usize>, Vec<usize>);

fn gather_table(g: &ConvGeometry) -> GatherTable {
    // Along one axis: for each input position, the (output position, tap) pairs reading it.
    let axis = |len: usize, out_len: usize, kernel: usize, stride: usize, pad: usize| {
        let mut read_by = vec![Vec::new(); len];
        for o in 0..out_len {
            for t in 0..kernel {
                if let Some(i) = (o * stride + t).checked_sub(pad).filter(|&i| i < len) {
                    read_by[i].push((o, t));
                }
            }
        }
        read_by
    };
    let rows = axis(g.height, g.out_height(), g.kh, g.sh, g.ph);
    let columns = axis(g.width, g.out_width(), g.kw, g.sw, g.pw);
    let (mut starts, mut sources) = (vec![0], Vec::new());
    for row in &rows {
        for column in &columns {
            for &(oy, ky) in row {
                for &(ox, kx) in column {
                    sources.push((oy * g.out_width() + ox) * g.patch() + (ky * g.kw + kx) * g.c_in);
                }
            }
            starts.push(sources.len());
        }
    }
    (starts, sources)
}

/// [`col2im`] with the channels taken `C` at a time (`C` divides c_in).
fn col2im_fixed<'d, T: Element, const C: usize>(g: &ConvGeometry, (starts, sources): &GatherTable, cols: &[T], mask: Option<&[T]>, images: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    let c = g.c_in;
    let zero = T::default();
    for (n, (img, taps)) in images.chunks_exact_mut(g.pixels_in() * c).zip(cols.chunks_exact(g.pixels_out() * g.patch())).enumerate() {
        for (q, pixel) in img.chunks_exact_mut(c).enumerate() {
            let from = &sources[starts[q]..starts[q + 1]];
            let keep = mask.map(|m| &m[(n * g.pixels_in() + q) * c..][..c]);
            for (b, out) in pixel.chunks_exact_mut(C).enumerate() {
                let mut acc = [zero; C];
                for &at in from {
                    let tap = &taps[at + b * C..][..C];
                    for i in 0..C {
                        acc[i] += tap[i];
                    }
                }
                if let Some(keep) = keep {
                    let keep = &keep[b * C..][..C];
                    for i in 0..C {
                        acc[i] = if keep[i] > zero { acc[i] } else { zero };
                    }
                }
                for i in 0..C {
                    out[i] = MaybeUninit::new(acc[i]);
                }
            }
        }
    }
    // SAFETY: every channel of every pixel of every image was written above.
    unsafe { &mut *(images as *mut [MaybeUninit<T>] as *mut [T]) }
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
        let g = &self.geometry;
        g.c_in == 1 && g.kw == 3 && DIRECT_CHANNELS.contains(&self.c_out)
    }

    /// Elements per chunk of input images and of output maps: whole images, about
    /// [`CHUNK_ELEMENTS`] of im2col columns and at least [`CHUNK_MIN_PIXELS`] output pixels.
    fn chunks(&self) -> (usize, usize) {
        let g = &self.geometry;
        let by_size = CHUNK_ELEMENTS / (g.pixels_out() * (g.patch() + 1));
        let images = by_size.max(CHUNK_MIN_PIXELS.div_ceil(g.pixels_out())).clamp(1, BLOCK_IMAGES);
        (images * g.pixels_in() * g.c_in, images * g.pixels_out() * self.c_out)
    }

    /// relu(im2col(x) @ [W; b]), or the direct convolution's, and each block's columns (none
    /// for a direct layer), which the backward pass reuses.
    fn forward<T: Element>(&self, x: &[T], w: &[T]) -> (Vec<T>, Vec<Vec<T>>) {
        let (g, k, c_out) = (&self.geometry, self.geometry.patch() + 1, self.c_out);
        let len = x.len() / (g.pixels_in() * g.c_in) * g.pixels_out() * c_out;
        let mut out = Vec::with_capacity(len);
        let columns = out.spare_capacity_mut()[..len]
            .par_chunks_mut(self.block_out())
            .zip(x.par_chunks(self.block_in()))
            .map(|(out, images)| {
                let mut cols = Vec::new();
                let out = match self.direct() {
                    true => direct_forward(g, c_out, images, w, out),
                    false => {
                        // Chunk by chunk, so that gemm reads each chunk's columns while they are
                        // still in cache; the block's columns are kept for the backward pass.
                        let rows = out.len() / c_out * k;
                        cols.reserve_exact(rows);
                        let (chunk_in, chunk_out) = self.chunks();
                        let chunks = images.chunks(chunk_in).zip(cols.spare_capacity_mut()[..rows].chunks_mut(chunk_out / c_out * k));
                        for (out, (images, rows)) in out.chunks_mut(chunk_out).zip(chunks) {
                            gemm(out, Mat::row_major(im2col(g, images, rows), out.len() / c_out, k, k), Mat::row_major(w, k, c_out, c_out));
                        }
                        // SAFETY: im2col wrote every row, and gemm every element of `out`.
                        unsafe {
                            cols.set_len(rows);
                            &mut *(out as *mut [MaybeUninit<T>] as *mut [T])
                        }
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

    /// ∂[W; b] (blocks summed in order) and, when asked, ∂x, from the layer's input, output,
    /// output gradient and the forward pass's columns. `grad_masked`: `grad` is already zero
    /// where the output is (the layer above applied this layer's ReLU when it wrote it).
    #[allow(clippy::too_many_arguments)]
    fn backward<T: Element>(&self, w: &[T], x: &[T], out: &[T], grad: &[T], grad_masked: bool, columns: &[Vec<T>], input_grad: Option<InputGrad>) -> (Vec<T>, Option<Vec<T>>) {
        let (g, c_out) = (&self.geometry, self.c_out);
        let blocks = x.len().div_ceil(self.block_in());
        // Without an input gradient each block gets a one-element stand-in chunk, left unused.
        let len = if input_grad.is_some() { x.len() } else { blocks };
        let mut grad_x = Vec::with_capacity(len);
        let block_in = if input_grad.is_some() { self.block_in() } else { 1 };
        let grad_w_blocks: Vec<Vec<T>> = columns
            .par_iter()
            .zip(x.par_chunks(self.block_in()))
            .zip(out.par_chunks(self.block_out()).zip(grad.par_chunks(self.block_out())))
            .zip(grad_x.spare_capacity_mut()[..len].par_chunks_mut(block_in))
            .map(|(((cols, images), (out, grad)), grad_x)| {
                let pre = if grad_masked { std::borrow::Cow::Borrowed(grad) } else { std::borrow::Cow::Owned(relu_grad(out, grad)) };
                let grad_x = input_grad.map(|through| (through, grad_x));
                match self.direct() {
                    true => self.direct_backward(w, images, &pre, grad_x),
                    false => self.im2col_backward(w, images, cols, &pre, grad_x),
                }
            })
            .collect();
        // SAFETY: every block wrote every element of its chunk; without an input gradient
        // nothing was written and the length stays 0.
        unsafe { grad_x.set_len(if input_grad.is_some() { len } else { 0 }) };
        let mut grad_w = vec![T::default(); (g.patch() + 1) * c_out];
        for block in &grad_w_blocks {
            grad_w.iter_mut().zip(block).for_each(|(s, &b)| *s += b);
        }
        (grad_w, input_grad.map(|_| grad_x))
    }

    /// One block's ∂[W; b] = colsᵀ @ pre and, when asked, ∂x = col2im(pre @ Wᵀ).
    fn im2col_backward<T: Element>(&self, w: &[T], images: &[T], cols: &[T], pre: &[T], grad_x: Option<(InputGrad, &mut [MaybeUninit<T>])>) -> Vec<T> {
        let (g, c_out) = (&self.geometry, self.c_out);
        let (patch, k, m) = (g.patch(), g.patch() + 1, pre.len() / c_out);
        if let Some((through, grad_x)) = grad_x {
            // Chunk by chunk (whole images), so col2im reads the gradient columns from cache.
            let (table, mut grad_cols) = (gather_table(g), Vec::new());
            let (chunk_in, chunk_out) = self.chunks();
            for ((pre, images), grad_x) in pre.chunks(chunk_out).zip(images.chunks(chunk_in)).zip(grad_x.chunks_mut(chunk_in)) {
                let m = pre.len() / c_out;
                grad_cols.reserve(m * patch);
                let grad_cols = gemm(&mut grad_cols.spare_capacity_mut()[..m * patch], Mat::row_major(pre, m, c_out, c_out), Mat::row_major(w, patch, c_out, c_out).t());
                col2im(g, &table, grad_cols, (through == InputGrad::ThroughRelu).then_some(images), grad_x);
            }
        }
        gemm_new(Mat::row_major(cols, m, k, k).t(), Mat::row_major(pre, m, c_out, c_out))
    }

    /// One block's ∂[W; b] of a direct layer and, when asked, ∂x = col2im(pre @ Wᵀ).
    fn direct_backward<T: Element>(&self, w: &[T], images: &[T], pre: &[T], grad_x: Option<(InputGrad, &mut [MaybeUninit<T>])>) -> Vec<T> {
        let (g, c_out) = (&self.geometry, self.c_out);
        if let Some((through, grad_x)) = grad_x {
            let m = pre.len() / c_out;
            let grad_cols = gemm_new(Mat::row_major(pre, m, c_out, c_out), Mat::row_major(w, g.patch(), c_out, c_out).t());
            col2im(g, &gather_table(g), &grad_cols, (through == InputGrad::ThroughRelu).then_some(images), grad_x);
        }
        direct_weight_grad(g, c_out, images, pre)
    }
}

/// The input gradient a layer's backward pass writes for the layer below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputGrad {
    /// ∂x as it is (the network's input).
    Plain,
    /// ∂x zeroed where x is: x is the ReLU output of the layer below, whose backward pass then
    /// needs no mask of its own.
    ThroughRelu,
}

/// NHWC images with their zero padding written out, so that every output pixel reads all
/// its taps without a bounds test: the images and their padded width.
fn padded<T: Element>(g: &ConvGeometry, images: &[T]) -> (Vec<T>, usize) {
    let (hp, wp, c) = (g.height + 2 * g.ph, g.width + 2 * g.pw, g.c_in);
    let mut out = vec![T::default(); images.len() / g.pixels_in() * hp * wp];
    for (to, from) in out.chunks_exact_mut(hp * wp * c).zip(images.chunks_exact(g.pixels_in() * c)) {
        for (y, row) in from.chunks_exact(g.width * c).enumerate() {
            to[((y + g.ph) * wp + g.pw) * c..][..g.width * c].copy_from_slice(row);
        }
    }
    (out, wp)
}

/// A direct layer's pre-activation b + Σ_taps x·W for a block of single-channel images:
/// bias first, then the taps in (ky, kx) order, per output pixel.
fn direct_forward<'d, T: Element>(g: &ConvGeometry, c_out: usize, images: &[T], w: &[T], out: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    // P·N = 128 sums per run of P pixels: enough independent ones to keep the multiply-add
    // units busy, few enough to stay in registers. KH = 1 is a 1-D signal.
    match (c_out, g.kh) {
        (8, 3) => direct_forward_fixed::<T, 8, 16, 3>(g, images, w, out),
        (8, _) => direct_forward_fixed::<T, 8, 16, 1>(g, images, w, out),
        (16, 3) => direct_forward_fixed::<T, 16, 8, 3>(g, images, w, out),
        (16, _) => direct_forward_fixed::<T, 16, 8, 1>(g, images, w, out),
        (_, 3) => direct_forward_fixed::<T, 32, 4, 3>(g, images, w, out),
        (_, _) => direct_forward_fixed::<T, 32, 4, 1>(g, images, w, out),
    }
}

/// The weight rows [W; b] of a direct layer as arrays of its `N` output channels.
fn rows_of<T: Element, const N: usize>(w: &[T]) -> Vec<[T; N]> {
    w.chunks_exact(N).map(|r| std::array::from_fn(|i| r[i])).collect()
}

/// Each output row in runs of `P` pixels (the last run of a row overlapping the one before,
/// which recomputes identical values), or one pixel at a time in rows shorter than `P`.
fn direct_forward_fixed<'d, T: Element, const N: usize, const P: usize, const KH: usize>(g: &ConvGeometry, images: &[T], w: &[T], out: &'d mut [MaybeUninit<T>]) -> &'d mut [T] {
    let rows = rows_of::<T, N>(w);
    let (bias, taps) = rows.split_last().expect("a bias row");
    let (images, wp) = padded(g, images);
    let wo = g.out_width();
    for (img, maps) in images.chunks_exact((g.height + 2 * g.ph) * wp).zip(out.chunks_exact_mut(g.pixels_out() * N)) {
        for (oy, row) in maps.chunks_exact_mut(wo * N).enumerate() {
            let top = oy * g.sh * wp;
            if wo < P {
                for ox in 0..wo {
                    direct_pixels::<T, N, 1, KH>(&img[top + ox * g.sw..], wp, g.sw, bias, taps, &mut row[ox * N..]);
                }
                continue;
            }
            let mut ox = 0;
            while ox < wo {
                let first = ox.min(wo - P);
                direct_pixels::<T, N, P, KH>(&img[top + first * g.sw..], wp, g.sw, bias, taps, &mut row[first * N..]);
                ox = first + P;
            }
        }
    }
    // SAFETY: every output pixel of every row of every image was written above.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `P` adjacent output pixels, `stride` apart in the padded image whose rows are `wp` long
/// and whose first pixel's tap (0, 0) is `img[0]`. The kernel's bounds are constants, so the
/// loops unroll and the sums stay in registers.
#[inline(always)]
fn direct_pixels<T: Element, const N: usize, const P: usize, const KH: usize>(img: &[T], wp: usize, stride: usize, bias: &[T; N], taps: &[[T; N]], out: &mut [MaybeUninit<T>]) {
    let out = &mut out[..P * N];
    let mut acc = [*bias; P];
    for ky in 0..KH {
        for kx in 0..3 {
            let r = &taps[ky * 3 + kx];
            let at = &img[ky * wp + kx..][..(P - 1) * stride + 1];
            for (j, a) in acc.iter_mut().enumerate() {
                let v = at[j * stride];
                for i in 0..N {
                    a[i] = v.mul_add(r[i], a[i]);
                }
            }
        }
    }
    // Indexed stores, not an iterator over the pixels: they stay vector stores from registers.
    for j in 0..P {
        for i in 0..N {
            out[j * N + i] = MaybeUninit::new(acc[j][i]);
        }
    }
}

/// The gradient before the ReLU: `grad` where the output is positive, else 0.
fn relu_grad<T: Element>(out: &[T], grad: &[T]) -> Vec<T> {
    grad.iter().zip(out).map(|(&d, &o)| if o > T::default() { d } else { T::default() }).collect()
}

/// A direct layer's ∂[W; b] for a block from the gradient before its ReLU: per output
/// channel, the pixels in order, each adding its taps in (ky, kx) order and then the bias.
fn direct_weight_grad<T: Element>(g: &ConvGeometry, c_out: usize, images: &[T], pre: &[T]) -> Vec<T> {
    let (images, wp) = padded(g, images);
    // Sixteen channels at a time: ten rows of sums then fill about half the vector registers.
    let mut grad_w = vec![T::default(); (g.kh * 3 + 1) * c_out];
    for first in (0..c_out).step_by(16) {
        match (c_out - first).min(16) {
            8 if g.kh == 3 => direct_weight_grad_fixed::<T, 8, 3>(g, &images, wp, pre, c_out, first, &mut grad_w),
            8 => direct_weight_grad_fixed::<T, 8, 1>(g, &images, wp, pre, c_out, first, &mut grad_w),
            _ if g.kh == 3 => direct_weight_grad_fixed::<T, 16, 3>(g, &images, wp, pre, c_out, first, &mut grad_w),
            _ => direct_weight_grad_fixed::<T, 16, 1>(g, &images, wp, pre, c_out, first, &mut grad_w),
        }
    }
    grad_w
}

/// Output channels `first..first + M` of [`direct_weight_grad`], their KH·3 + 1 rows of sums
/// held in registers over the whole block.
fn direct_weight_grad_fixed<T: Element, const M: usize, const KH: usize>(g: &ConvGeometry, images: &[T], wp: usize, pre: &[T], c_out: usize, first: usize, grad_w: &mut [T]) {
    let zero = T::default();
    let mut taps = [[zero; M]; 9];
    let mut bias = [zero; M];
    let wo = g.out_width();
    for (img, maps) in images.chunks_exact((g.height + 2 * g.ph) * wp).zip(pre.chunks_exact(g.pixels_out() * c_out)) {
        for (p, pixel) in maps.chunks_exact(c_out).enumerate() {
            let d: [T; M] = std::array::from_fn(|i| pixel[first + i]);
            let at = &img[(p / wo) * g.sh * wp + (p % wo) * g.sw..];
            for ky in 0..KH {
                for kx in 0..3 {
                    let v = at[ky * wp + kx];
                    for i in 0..M {
                        taps[ky * 3 + kx][i] = v.mul_add(d[i], taps[ky * 3 + kx][i]);
                    }
                }
            }
            for i in 0..M {
                bias[i] += d[i];
            }
        }
    }
    for (t, row) in taps[..KH * 3].iter().chain([&bias]).enumerate() {
        grad_w[t * c_out + first..][..M].copy_from_slice(row);
    }
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
            let input_grad = match i {
                0 => x.track_op().then_some(InputGrad::Plain),
                _ => Some(InputGrad::ThroughRelu),
            };
            let input = if i == 0 { x_data } else { &saved.outputs[i - 1] };
            // Below the top layer the gradient arrives already masked by this layer's ReLU.
            let (grad_in, masked) = match grad.as_deref() {
                Some(masked) => (masked, true),
                None => (cpu_data::<T>(&held[3])?, false),
            };
            let (gw, gx) = layer.backward(weights[i], input, out, grad_in, masked, &saved.columns[i], input_grad);
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
