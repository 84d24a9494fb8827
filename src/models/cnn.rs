//! Convolutional networks in candle: conv → ReLU → … → conv → ReLU → global average pooling →
//! linear head (the layout class-activation maps need).
//!
//! Inputs are single-channel images flattened row-major, an n × (height·width) matrix; a 1-D
//! signal is an image of height 1. Each conv layer has kernel 3 and padding 1 along every axis
//! longer than 1 (a height-1 signal gets 1×3 kernels, not 3×3 kernels on zero padding), and
//! stride 2 along those axes where the spec asks for downsampling. No normalisation layers, so
//! the same weights give the same outputs in training and evaluation.
//!
//! Each conv layer with its ReLU is one op of [`super::conv`], and the activations stay
//! channels-last (NHWC) from start to end, so nothing is transposed or permuted.

use candle_core::{Device, Tensor, Var};
use rand::Rng;

use super::conv::{average_pool_nhwc, conv_relu_nhwc, conv_stack_nhwc, ConvGeometry};
use super::WeightInit;
use crate::seed;

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
        self.conv_maps(x, true)
    }

    /// The last conv layer's maps, the layers as one op; `track` false builds no graph.
    fn conv_maps(&self, x: &Tensor, track: bool) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let x = x.reshape((n, self.shape.height, self.shape.width, 1))?; // NHWC, c = 1
        let detached: Vec<(Tensor, Tensor)> = if track { Vec::new() } else { self.convs.iter().map(|(w, b)| (w.as_tensor().detach(), b.as_tensor().detach())).collect() };
        let layers: Vec<(ConvGeometry, &Tensor, &Tensor)> = if track {
            self.geometries.iter().zip(&self.convs).map(|(&g, (w, b))| (g, w.as_tensor(), b.as_tensor())).collect()
        } else {
            self.geometries.iter().zip(&detached).map(|(&g, (w, b))| (g, w, b)).collect()
        };
        if layers.is_empty() {
            return Ok(x);
        }
        conv_stack_nhwc(&x, &layers)
    }

    /// Each conv layer's ReLU maps (NHWC) in order, one op per layer.
    fn conv_stages(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let n = x.dim(0)?;
        let mut h = x.reshape((n, self.shape.height, self.shape.width, 1))?; // NHWC, c = 1
        let mut stages = Vec::with_capacity(self.convs.len());
        for (g, (w, b)) in self.geometries.iter().zip(&self.convs) {
            h = conv_relu_nhwc(&h, w.as_tensor(), b.as_tensor(), *g)?;
            stages.push(h.clone());
        }
        Ok(stages)
    }

    /// Pooled features and logits of the last conv layer's maps.
    fn head_of(&self, maps: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let pooled = average_pool_nhwc(maps)?; // (n, c)
        let logits = pooled.matmul(self.head.0.as_tensor())?.broadcast_add(self.head.1.as_tensor())?;
        Ok((pooled, logits))
    }

    /// Every conv layer's ReLU maps (NHWC), the pooled features and the logits.
    pub fn activations(&self, x: &Tensor) -> candle_core::Result<super::loss::Activations> {
        let stages = self.conv_stages(x)?;
        let (penultimate, logits) = self.head_of(stages.last().unwrap_or(x))?;
        Ok(super::loss::Activations { stages, penultimate, logits })
    }

    /// Logits (n, k) from x of shape (n, height·width).
    pub fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.head_of(&self.feature_maps(x)?)?.1)
    }
}

/// Logits of `x` in chunks of `rows` rows (im2col of a whole evaluation set would not fit in
/// memory), concatenated, with no autograd graph; the result does not depend on `rows` beyond
/// rounding of the gemm.
pub fn logits_chunked(net: &Cnn, x: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    if n == 0 {
        return net.logits(x);
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        let maps = net.conv_maps(&x.narrow(0, start, len)?, false)?;
        parts.push(net.head_of(&maps)?.1.detach());
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
    use crate::models::conv::tests::{max_abs_diff, random};
    use candle_core::DType;

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
