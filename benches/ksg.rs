//! Run-time benchmark of kdlab's KSG mutual-information estimator (k = 3, bits).
//!
//! Reads the CSV named by `KDLAB_BENCH_DATA` (header `x0..x{dx-1},y0..y{dy-1}`; the case is
//! named after the file stem) or, without it, generates the two standard cases itself:
//! correlated Gaussians with ρ = 0.8 per coordinate, n = 50,000, 1+1-D (true MI 0.737 bits)
//! and 10+10-D (true MI 7.37 bits). Runs `KDLAB_BENCH_REPEATS` times (default 3) and prints
//! one line per case: `kdlab ksg ksg-1d: 0.012 s, 0.7391 bits (median of 3, 2 threads)`.
//! `scripts/bench-ksg.sh` runs it next to NPEET on the same files.

use std::time::Instant;

use kdlab::diagnostics::mi::{ksg_mi, KsgParams};
use ndarray::{s, Array2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 50_000;
const RHO: f64 = 0.8;

struct Case {
    name: String,
    x: Array2<f64>,
    y: Array2<f64>,
}

fn read_csv(path: &str) -> Case {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("empty CSV")
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    let dx = header.iter().filter(|h| h.starts_with('x')).count();
    let dy = header.iter().filter(|h| h.starts_with('y')).count();
    assert!(
        dx > 0 && dy > 0 && dx + dy == header.len(),
        "header must be x0..,y0..: {header:?}"
    );
    let mut values = Vec::new();
    let mut rows = 0;
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        for cell in line.split(',') {
            let v: f64 = cell
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("row {i}: bad value {cell}"));
            values.push(v);
        }
        rows += 1;
    }
    let all = Array2::from_shape_vec((rows, dx + dy), values).expect("ragged CSV");
    let name = std::path::Path::new(path)
        .file_stem()
        .map_or_else(|| "data".to_string(), |s| s.to_string_lossy().into_owned());
    Case {
        name,
        x: all.slice(s![.., ..dx]).to_owned(),
        y: all.slice(s![.., dx..]).to_owned(),
    }
}

/// x ~ N(0, I_d), y = ρ x + √(1 − ρ²) ε: MI = −(d/2) log2(1 − ρ²).
fn generate(name: &str, d: usize, seed: u64) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((N, d), |_| StandardNormal.sample(&mut rng));
    let noise: Array2<f64> = Array2::from_shape_fn((N, d), |_| StandardNormal.sample(&mut rng));
    let y = &x * RHO + &noise * (1.0 - RHO * RHO).sqrt();
    Case {
        name: name.to_string(),
        x,
        y,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; there are no other arguments to honour.
    let repeats: usize = std::env::var("KDLAB_BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    let cases = match std::env::var("KDLAB_BENCH_DATA") {
        Ok(path) if !path.is_empty() => vec![read_csv(&path)],
        _ => vec![generate("ksg-1d", 1, 1), generate("ksg-10d", 10, 2)],
    };
    let params = KsgParams::default();
    for case in cases {
        let mut times = Vec::with_capacity(repeats);
        let mut bits = f64::NAN;
        for _ in 0..repeats {
            let start = Instant::now();
            let r = ksg_mi(case.x.view(), case.y.view(), &params).expect("KSG failed");
            times.push(start.elapsed().as_secs_f64());
            bits = r.bits;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "kdlab ksg {}: {:.4} s, {:.4} bits (median of {repeats}, {} threads)",
            case.name,
            times[repeats / 2],
            bits,
            rayon::current_num_threads()
        );
    }
}
