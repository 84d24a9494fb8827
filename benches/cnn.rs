//! Training steps per second of a small CNN, kdlab's im2col network against the same network
//! built on candle's own `conv2d`. `scripts/bench-cnn.sh` runs it beside PyTorch.
//!
//! Network (both): conv 1→16 (3×3, pad 1) → ReLU → conv 16→32 (3×3, stride 2, pad 1) → ReLU →
//! conv 32→64 (3×3, stride 2, pad 1) → ReLU → global average pool → linear 64→10.
//! Batch 64 of 28×28 random images (fixed seed), random labels, cross-entropy, plain SGD
//! (lr 0.01), `KDLAB_BENCH_STEPS` timed steps (default 200) after 10 warm-up steps. Threads:
//! candle's gemm uses RAYON_NUM_THREADS. Allocator settings as in the kdlab binary
//! (`kdlab::malloc`), unless KDLAB_BENCH_GLIBC_DEFAULTS is set.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, SGD};
use kdlab::models::cnn::{Cnn, CnnShape};
use rand::Rng;

const BATCH: usize = 64;
const SIDE: usize = 28;
const CHANNELS: [usize; 3] = [16, 32, 64];
const CLASSES: usize = 10;

fn data(seed: u64) -> (Tensor, Tensor) {
    let mut rng = kdlab::seed::rng(seed);
    let x: Vec<f32> = (0..BATCH * SIDE * SIDE).map(|_| rng.gen_range(0.0..1.0)).collect();
    let y: Vec<u32> = (0..BATCH).map(|_| rng.gen_range(0..CLASSES as u32)).collect();
    (Tensor::from_vec(x, (BATCH, SIDE * SIDE), &Device::Cpu).unwrap(), Tensor::from_vec(y, BATCH, &Device::Cpu).unwrap())
}

/// Runs `warmup + steps` SGD steps of `logits`, returns timed steps per second.
fn time(vars: Vec<Var>, logits: impl Fn(&Tensor) -> Tensor, steps: usize) -> f64 {
    let (x, y) = data(1);
    let mut opt = SGD::new(vars, 0.01).unwrap();
    let mut step = || {
        let loss = candle_nn::loss::cross_entropy(&logits(&x), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    };
    for _ in 0..10 {
        step();
    }
    let t = Instant::now();
    for _ in 0..steps {
        step();
    }
    steps as f64 / t.elapsed().as_secs_f64()
}

/// The same network on candle's NCHW conv2d (weights from the same seeded RNG).
fn candle_conv2d_net() -> (Vec<Var>, impl Fn(&Tensor) -> Tensor) {
    let mut rng = kdlab::seed::rng(2);
    let mut param = |shape: &[usize], fan_in: usize| {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    };
    let mut convs = Vec::new();
    let mut c_in = 1;
    for &c in &CHANNELS {
        convs.push((param(&[c, c_in, 3, 3], 9 * c_in), param(&[c], 9 * c_in)));
        c_in = c;
    }
    let head = (param(&[c_in, CLASSES], c_in), param(&[CLASSES], c_in));
    let vars = convs.iter().chain(std::iter::once(&head)).flat_map(|(w, b)| [w.clone(), b.clone()]).collect();
    let forward = move |x: &Tensor| {
        let mut h = x.reshape((BATCH, 1, SIDE, SIDE)).unwrap();
        for (i, (w, b)) in convs.iter().enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            h = h.conv2d(w.as_tensor(), 1, stride, 1, 1).unwrap().broadcast_add(&b.as_tensor().reshape((1, (), 1, 1)).unwrap()).unwrap().relu().unwrap();
        }
        let pooled = h.flatten_from(2).unwrap().mean(2).unwrap();
        pooled.matmul(head.0.as_tensor()).unwrap().broadcast_add(head.1.as_tensor()).unwrap()
    };
    (vars, forward)
}

fn main() {
    if std::env::var("KDLAB_BENCH_GLIBC_DEFAULTS").is_err() {
        kdlab::malloc::keep_freed_memory(); // as the kdlab binary does
    }
    let steps: usize = std::env::var("KDLAB_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let threads = candle_core::utils::get_num_threads();
    let shape = CnnShape { height: SIDE, width: SIDE, channels: CHANNELS.to_vec(), downsample: vec![false, true, true], n_classes: CLASSES };
    let net = Cnn::new(shape, 2).unwrap();
    let kdlab = time(net.vars(), |x| net.logits(x).unwrap(), steps);
    println!("kdlab cnn: {kdlab:.1} steps/s ({threads} threads, batch {BATCH}, {SIDE}x{SIDE}, {steps} steps)");
    if std::env::var("KDLAB_BENCH_SKIP_CANDLE").is_err() {
        let (vars, forward) = candle_conv2d_net();
        let candle = time(vars, forward, (steps / 4).max(10));
        println!("candle conv2d cnn: {candle:.1} steps/s ({threads} threads)");
    }
}
