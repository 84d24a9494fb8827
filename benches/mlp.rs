//! Training steps per second of kdlab's MLP student (`student::train`, the loop every study
//! runs) at the shapes the studies use; `scripts/bench-mlp.sh` runs it beside PyTorch.
//!
//! Shapes (`KDLAB_BENCH_SHAPE`): `tabular` (the default), 10 features → 32 → 2 classes, batch
//! 32, 2,000 rows (the semiparametric studies' default student on MAGIC-sized tables);
//! `fidelity`, 40 → 128 → 128 → 10, batch 128, 4,096 rows (the fidelity studies' MNIST-1D
//! student). Gaussian features and random labels from a fixed seed, one-hot targets
//! (cross-entropy), AdamW (kdlab's defaults: learning rate 0.01, weight decay 1e-4), no
//! validation rows (so no early stopping), `KDLAB_BENCH_EPOCHS` epochs (default 20) after one
//! warm-up run of 2 epochs. Threads: candle's gemm uses RAYON_NUM_THREADS.

use std::time::Instant;

use kdlab::data::Rows;
use kdlab::models::loss::LossTerm;
use kdlab::models::student::{one_hot, train, NeuralSpec, StudentKind};
use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;

/// (name, features, hidden widths, classes, batch, rows) of the shape `KDLAB_BENCH_SHAPE` names.
fn shape() -> (&'static str, usize, Vec<usize>, usize, usize, usize) {
    match std::env::var("KDLAB_BENCH_SHAPE").as_deref() {
        Ok("fidelity") => ("fidelity", 40, vec![128, 128], 10, 128, 4096),
        _ => ("tabular", 10, vec![32], 2, 32, 2000),
    }
}

fn main() {
    if std::env::var("KDLAB_BENCH_GLIBC_DEFAULTS").is_err() {
        kdlab::malloc::keep_freed_memory(); // as the kdlab binary does
    }
    let epochs: usize = std::env::var("KDLAB_BENCH_EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let threads = candle_core::utils::get_num_threads();
    let (name, features, hidden, classes, batch, rows) = shape();
    let mut rng = kdlab::seed::rng(1);
    let x = Array2::from_shape_fn((rows, features), |_| rng.sample::<f64, _>(StandardNormal));
    let y: Vec<usize> = (0..rows).map(|_| rng.gen_range(0..classes)).collect();
    let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&y, classes))];
    let no_validation = Array2::<f64>::zeros((0, features));
    let run = |epochs: usize| {
        let spec = NeuralSpec { kind: StudentKind::Mlp, hidden: Some(hidden.clone()), epochs, batch_size: batch, validation_fraction: 0.0, ..NeuralSpec::default() };
        let start = Instant::now();
        train(&spec, Rows::tabular(x.view()), &terms, no_validation.view(), &[], classes, 2).expect("the bench network trains");
        start.elapsed().as_secs_f64()
    };
    run(2);
    let steps = epochs * rows.div_ceil(batch);
    let rate = steps as f64 / run(epochs);
    println!("kdlab mlp: {rate:.1} steps/s ({threads} threads, {name}: {features}-{}-{classes}, batch {batch}, {rows} rows, {epochs} epochs)", hidden.iter().map(usize::to_string).collect::<Vec<_>>().join("-"));
}
