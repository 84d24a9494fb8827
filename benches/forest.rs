//! Fit-time benchmark of kdlab's random forest classifier.
//!
//! Reads the CSV named by `KDLAB_BENCH_DATA` (header `f0..f19,label`; the first 10,000 rows
//! train, the rest test) or, without it, generates a 3-class, 20-feature problem itself.
//! Fits 100 trees with sqrt features three times and prints one line:
//! `kdlab forest fit: 0.412 s (median of 3), test accuracy 0.873`.
//! `scripts/bench-forest.sh` runs it next to scikit-learn on the same file.

use std::time::Instant;

use kdlab::models::forest::{ForestParams, MaxFeatures, RandomForestClassifier};
use ndarray::Array2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const N_TRAIN: usize = 10_000;
const N_TEST: usize = 5_000;
const N_FEATURES: usize = 20;
const N_CLASSES: usize = 3;

struct Data {
    x: Array2<f64>,
    y: Vec<usize>,
}

fn read_csv(path: &str) -> Data {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("empty CSV").split(',').collect();
    let label_col = header
        .iter()
        .position(|h| h.trim() == "label")
        .expect("CSV needs a `label` column");
    let p = header.len() - 1;
    let (mut xs, mut y) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        for (j, cell) in line.split(',').enumerate() {
            let cell = cell.trim();
            if j == label_col {
                let v: f64 = cell
                    .parse()
                    .unwrap_or_else(|_| panic!("row {i}: bad label {cell}"));
                y.push(v as usize);
            } else {
                xs.push(
                    cell.parse::<f64>()
                        .unwrap_or_else(|_| panic!("row {i}: bad value {cell}")),
                );
            }
        }
    }
    let x = Array2::from_shape_vec((y.len(), p), xs).expect("ragged CSV");
    Data { x, y }
}

/// Gaussian clusters on hypercube vertices in 7 informative dimensions, 4 linear mixtures
/// of them and 9 noise columns, with 1% of labels flipped (like sklearn's make_classification).
fn generate(seed: u64) -> Data {
    let mut rng = SmallRng::seed_from_u64(seed);
    let normal = move |rng: &mut SmallRng| {
        let (u, v): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let n_inf = 7;
    let centroids: Vec<Vec<f64>> = (0..2 * N_CLASSES)
        .map(|_| {
            (0..n_inf)
                .map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    let mix: Vec<Vec<f64>> = (0..4)
        .map(|_| (0..n_inf).map(|_| normal(&mut rng)).collect())
        .collect();
    let n = N_TRAIN + N_TEST;
    let mut x = Array2::zeros((n, N_FEATURES));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let cluster = rng.gen_range(0..2 * N_CLASSES);
        let mut label = cluster % N_CLASSES;
        for j in 0..n_inf {
            x[[i, j]] = centroids[cluster][j] + normal(&mut rng);
        }
        for (r, coef) in mix.iter().enumerate() {
            x[[i, n_inf + r]] = (0..n_inf).map(|j| coef[j] * x[[i, j]]).sum();
        }
        for j in n_inf + 4..N_FEATURES {
            x[[i, j]] = normal(&mut rng);
        }
        if rng.gen::<f64>() < 0.01 {
            label = rng.gen_range(0..N_CLASSES);
        }
        y.push(label);
    }
    Data { x, y }
}

fn main() {
    let data = match std::env::var("KDLAB_BENCH_DATA") {
        Ok(path) if !path.is_empty() => read_csv(&path),
        _ => generate(1),
    };
    let n_train = N_TRAIN.min(data.y.len());
    let x_train = data.x.slice(ndarray::s![..n_train, ..]);
    let x_test = data.x.slice(ndarray::s![n_train.., ..]);
    let (y_train, y_test) = data.y.split_at(n_train);
    let n_classes = data.y.iter().max().map_or(N_CLASSES, |m| m + 1);
    let params = ForestParams {
        n_trees: 100,
        max_features: MaxFeatures::Sqrt,
        ..ForestParams::default()
    };

    let mut times = Vec::new();
    let mut model = None;
    for _ in 0..3 {
        let t = Instant::now();
        let m = RandomForestClassifier::fit(&params, x_train, y_train, n_classes, 0)
            .expect("forest fit");
        times.push(t.elapsed().as_secs_f64());
        model = Some(m);
    }
    times.sort_by(f64::total_cmp);
    let model = model.expect("three fits");
    let pred = model.predict(x_test);
    let correct = pred.iter().zip(y_test).filter(|(p, y)| p == y).count();
    let accuracy = correct as f64 / y_test.len().max(1) as f64;
    println!(
        "kdlab forest fit: {:.3} s (median of 3), test accuracy {:.3}",
        times[1], accuracy
    );

    // A 10-fold cross-fitted 100-tree teacher: out-of-fold probabilities for every training row.
    let teacher = kdlab::models::TeacherSpec::Forest(kdlab::models::ForestTeacherSpec {
        n_trees: 100,
        max_depth: None,
        min_samples_leaf: 1,
        max_features: kdlab::models::MaxFeaturesSpec::Name("sqrt".into()),
    });
    let spec = kdlab::distill::DistillSpec { crossfit_folds: 10, stratified: false, ..Default::default() };
    let mut times = Vec::new();
    let mut oof_accuracy = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        let cf = kdlab::distill::cross_fit(&teacher, kdlab::data::Rows::tabular(x_train), y_train, n_classes, &spec, 0).expect("cross-fit");
        times.push(t.elapsed().as_secs_f64());
        let correct = cf.out_of_fold.rows().into_iter().zip(y_train).filter(|(p, &y)| {
            let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
            best == y
        });
        oof_accuracy = correct.count() as f64 / y_train.len() as f64;
    }
    times.sort_by(f64::total_cmp);
    println!("kdlab crossfit 10x100: {:.3} s (median of 3), out-of-fold accuracy {:.3}", times[1], oof_accuracy);
}
