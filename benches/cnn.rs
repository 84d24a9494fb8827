//! Training steps per second of a small CNN, kdlab's im2col network against the same network
//! built on candle's own `conv2d`, with the arithmetic rate they reach and its share of the
//! machine's peak. `scripts/bench-cnn.sh` runs it beside PyTorch.
//!
//! Networks (`KDLAB_BENCH_SHAPE`): `bench` (the default), conv 1→16 (3×3, pad 1) → ReLU → conv
//! 16→32 (stride 2) → ReLU → conv 32→64 (stride 2) → ReLU → global average pool → linear
//! 64→10; `attention`, the attention-augmentation study's teacher member, conv 8-16-32-32
//! (layers 2 and 3 stride 2), He initialisation. Batch 64 of 28×28 random images (fixed seed),
//! random labels, cross-entropy, plain SGD (lr 0.01), `KDLAB_BENCH_STEPS` timed steps (default
//! 200) after 10 warm-up steps. Threads: candle's gemm uses RAYON_NUM_THREADS. Allocator
//! settings as in the kdlab binary (`kdlab::malloc`), unless KDLAB_BENCH_GLIBC_DEFAULTS is set.
//!
//! GFLOP/s counts the convolutions' and the head's multiply-adds as two flops each: forward,
//! weight gradient and input gradient (none for the first layer's input), per step. Two
//! references for it: a computed peak, f32 lanes of the widest vector unit in /proc/cpuinfo's
//! flags (AVX-512: 16, AVX2: 8) × 2 FMA units × 2 flops × the clock it reports, per core; and
//! a measured rate, the gemm crate's on a 512³ f32 product on one thread. Where the core runs
//! above the clock /proc/cpuinfo reports (turbo), the measured rate exceeds the computed peak.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, SGD};
use kdlab::models::cnn::{Cnn, CnnShape};
use kdlab::models::WeightInit;
use rand::Rng;

const BATCH: usize = 64;
const SIDE: usize = 28;
const CHANNELS: [usize; 3] = [16, 32, 64];
const CLASSES: usize = 10;

/// The network `KDLAB_BENCH_SHAPE` names, and its initialisation.
fn shape() -> (&'static str, CnnShape, WeightInit) {
    let (channels, downsample) = (CHANNELS.to_vec(), vec![false, true, true]);
    match std::env::var("KDLAB_BENCH_SHAPE").as_deref() {
        Ok("attention") => ("attention", CnnShape { height: SIDE, width: SIDE, channels: vec![8, 16, 32, 32], downsample: vec![false, true, true, false], n_classes: CLASSES }, WeightInit::He),
        _ => ("bench", CnnShape { height: SIDE, width: SIDE, channels, downsample, n_classes: CLASSES }, WeightInit::Uniform),
    }
}

/// Flops of one training step: 2 per multiply-add of each conv layer's forward pass, weight
/// gradient and (but for the first layer) input gradient, and of the head's three gemms.
fn flops_per_step(shape: &CnnShape) -> f64 {
    let (mut h, mut w, mut c_in) = (shape.height, shape.width, 1);
    let mut flops = 0.0;
    for (i, (&c_out, &down)) in shape.channels.iter().zip(&shape.downsample).enumerate() {
        if down {
            (h, w) = (h.div_ceil(2), w.div_ceil(2));
        }
        let macs = (BATCH * h * w * (9 * c_in + 1) * c_out) as f64;
        flops += 2.0 * macs * if i == 0 { 2.0 } else { 3.0 };
        c_in = c_out;
    }
    flops + 3.0 * 2.0 * (BATCH * (c_in + 1) * shape.n_classes) as f64
}

/// The computed single-precision peak of one core, GFLOP/s, and how it was computed.
fn peak_per_core() -> Option<(f64, String)> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let flags = info.lines().find(|l| l.starts_with("flags"))?;
    let (lanes, unit) = if flags.contains(" avx512f") { (16.0, "AVX-512") } else if flags.contains(" avx2") { (8.0, "AVX2") } else { (4.0, "SSE") };
    let mhz: f64 = info.lines().find(|l| l.starts_with("cpu MHz"))?.split(':').nth(1)?.trim().parse().ok()?;
    let peak = lanes * 2.0 * 2.0 * mhz / 1000.0;
    Some((peak, format!("{unit}, {lanes} f32 lanes × 2 FMA units × 2 flops × {:.2} GHz", mhz / 1000.0)))
}

/// GFLOP/s of one large f32 product (512³) by the gemm crate on the calling thread, best of
/// three timings: what one core reaches in practice, at the clock it really runs at (the
/// computed peak assumes the nominal clock that /proc/cpuinfo reports).
fn measured_gemm_rate() -> f64 {
    const N: usize = 512;
    let (a, b, mut c) = (vec![1.0f32; N * N], vec![0.5f32; N * N], vec![0.0f32; N * N]);
    let mut product = || {
        // SAFETY: three distinct N × N column-major buffers, every index in bounds.
        unsafe {
            gemm::gemm(
                N, N, N,
                c.as_mut_ptr(), N as isize, 1, false,
                a.as_ptr(), N as isize, 1,
                b.as_ptr(), N as isize, 1,
                0.0, 1.0, false, false, false, gemm::Parallelism::None,
            );
        }
    };
    product();
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            (0..10).for_each(|_| product());
            t.elapsed().as_secs_f64() / 10.0
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (N * N * N) as f64 / best / 1e9
}

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
    let (name, shape, init) = shape();
    let flops = flops_per_step(&shape);
    let net = Cnn::with_init(shape, 2, init).unwrap();
    let kdlab = time(net.vars(), |x| net.logits(x).unwrap(), steps);
    println!("kdlab cnn: {kdlab:.1} steps/s ({threads} threads, {name} network, batch {BATCH}, {SIDE}x{SIDE}, {steps} steps)");
    let gflops = kdlab * flops / 1e9;
    match peak_per_core() {
        Some((peak, how)) => {
            let share = 100.0 * gflops / (peak * threads as f64);
            println!("kdlab cnn: {:.3} GFLOP/step, {gflops:.1} GFLOP/s = {share:.0}% of {threads} core(s)' computed peak of {peak:.0} GFLOP/s each ({how})", flops / 1e9);
        }
        None => println!("kdlab cnn: {:.3} GFLOP/step, {gflops:.1} GFLOP/s (no /proc/cpuinfo for a peak)", flops / 1e9),
    }
    let measured = measured_gemm_rate();
    let share = 100.0 * gflops / (measured * threads as f64);
    println!("kdlab cnn: {gflops:.1} GFLOP/s = {share:.0}% of {threads} core(s)' measured rate of {measured:.0} GFLOP/s each (the gemm crate on a 512x512x512 f32 product, 1 thread)");
    if std::env::var("KDLAB_BENCH_SKIP_CANDLE").is_err() && name == "bench" {
        let (vars, forward) = candle_conv2d_net();
        let candle = time(vars, forward, (steps / 4).max(10));
        println!("candle conv2d cnn: {candle:.1} steps/s ({threads} threads)");
    }
}
