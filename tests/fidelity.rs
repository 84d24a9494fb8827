//! Invariants of the fidelity measurements (agreement, KL, ensemble reduction, the KD gradient,
//! ECE variants, attention IoU and the sum-CAM direction) and the λ = 1 sanity check of the
//! fidelity protocol: a student that starts at its teacher and follows the gradient of the
//! distillation loss stays there.

mod common;

use kdlab::data::Rows;
use candle_core::{Device, Tensor, Var};
use kdlab::diagnostics::attention;
use kdlab::metrics;
use kdlab::models::cnn::{Cnn, CnnShape};
use kdlab::models::ensemble::{NetworkEnsemble, Reduction};
use kdlab::models::loss::{distillation_loss, LossTerm};
use kdlab::models::student::{self, one_hot, Architecture, NeuralSpec, StudentKind};
use kdlab::models::Teacher;
use kdlab::models::optim::OptimizerKind;
use ndarray::{array, Array2};
use rand::{Rng, SeedableRng};

fn random_probabilities(n: usize, k: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut p = Array2::from_shape_fn((n, k), |_| rng.gen_range(0.0..1.0f64).powi(3));
    for mut row in p.rows_mut() {
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
    p
}

#[test]
fn agreement_is_symmetric_and_bounded_by_the_accuracies() {
    let k = 5;
    let y: Vec<usize> = (0..400).map(|i| (i * 7) % k).collect();
    for seed in 0..20 {
        let a = random_probabilities(400, k, seed);
        let b = random_probabilities(400, k, 1000 + seed);
        let ab = metrics::agreement(a.view(), b.view()).unwrap();
        assert_eq!(ab, metrics::agreement(b.view(), a.view()).unwrap());
        assert_eq!(metrics::agreement(a.view(), a.view()).unwrap(), 1.0);
        let (acc_a, acc_b) = (metrics::accuracy(a.view(), &y).unwrap(), metrics::accuracy(b.view(), &y).unwrap());
        // max(0, a_f + a_g − 1) ≤ A ≤ 1 − |a_f − a_g| (exact counting identities, no tolerance
        // beyond float rounding of the fractions).
        assert!(ab >= (acc_a + acc_b - 1.0).max(0.0) - 1e-12, "{ab} {acc_a} {acc_b}");
        assert!(ab <= 1.0 - (acc_a - acc_b).abs() + 1e-12, "{ab} {acc_a} {acc_b}");
    }
}

#[test]
fn kl_is_zero_on_itself_nonnegative_and_directional() {
    let p = random_probabilities(50, 4, 1);
    let q = random_probabilities(50, 4, 2);
    assert!(metrics::kl_rows(p.view(), p.view()).unwrap().abs() < 1e-12);
    let (pq, qp) = (metrics::kl_rows(p.view(), q.view()).unwrap(), metrics::kl_rows(q.view(), p.view()).unwrap());
    assert!(pq > 0.0 && qp > 0.0);
    assert!((pq - qp).abs() > 1e-3, "forward {pq} and reverse {qp} differ in general");
}

fn mlp_member(weights: &[f32], bias: &[f32], k: usize) -> kdlab::models::student::Network {
    // A linear "network" (one layer) with the given weights: logits = x W + b.
    let spec = NeuralSpec { kind: StudentKind::Linear, ..NeuralSpec::default() };
    let net = student::initial_network(&spec, Rows::tabular(ndarray::Array2::zeros((0, weights.len() / k)).view()), k, 0).unwrap();
    let w = Tensor::from_vec(weights.to_vec(), (weights.len() / k, k), &Device::Cpu).unwrap();
    let b = Tensor::from_vec(bias.to_vec(), k, &Device::Cpu).unwrap();
    net.set_weights(&[w, b]).unwrap();
    net
}

#[test]
fn ensemble_reductions_are_shift_invariant_and_differ_in_argmax() {
    // Two members on one input x = [1]: member logits (4, 0, 3.9) and (0, 4, 3.9).
    let a = mlp_member(&[4.0, 0.0, 3.9], &[0.0, 0.0, 0.0], 3);
    let b = mlp_member(&[0.0, 4.0, 3.9], &[0.0, 0.0, 0.0], 3);
    let x = array![[1.0]];
    let mean_logits = NetworkEnsemble { members: vec![a, b], reduction: Reduction::MeanLogits }.predict_proba(x.view());
    let (a, b) = (mlp_member(&[4.0, 0.0, 3.9], &[0.0; 3], 3), mlp_member(&[0.0, 4.0, 3.9], &[0.0; 3], 3));
    let mean_probs = NetworkEnsemble { members: vec![a, b], reduction: Reduction::MeanProbabilities }.predict_proba(x.view());
    // Mean logits (2, 2, 3.9) favour class 2.
    let argmax = |p: &Array2<f64>| (0..3).fold(0, |b, j| if p[[0, j]] > p[[0, b]] { j } else { b });
    assert_eq!(argmax(&mean_logits), 2);
    assert_ne!(mean_logits, mean_probs);
    // A common shift of every member's logits (the head bias) changes no reduced probability.
    let (a, b) = (mlp_member(&[4.0, 0.0, 3.9], &[5.0; 3], 3), mlp_member(&[0.0, 4.0, 3.9], &[5.0; 3], 3));
    let shifted = NetworkEnsemble { members: vec![a, b], reduction: Reduction::MeanLogits }.predict_proba(x.view());
    let diff = (&shifted - &mean_logits).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
    assert!(diff < 1e-6, "{diff}");
    // Members (3, 0, 2.2) and (0, 3, 2.2): mean logits (1.5, 1.5, 2.2) pick class 2, mean
    // probabilities (0.35, 0.35, 0.30) pick class 0.
    let (a, b) = (mlp_member(&[3.0, 0.0, 2.2], &[0.0; 3], 3), mlp_member(&[0.0, 3.0, 2.2], &[0.0; 3], 3));
    let l = NetworkEnsemble { members: vec![a, b], reduction: Reduction::MeanLogits }.predict_proba(x.view());
    let (a, b) = (mlp_member(&[3.0, 0.0, 2.2], &[0.0; 3], 3), mlp_member(&[0.0, 3.0, 2.2], &[0.0; 3], 3));
    let p = NetworkEnsemble { members: vec![a, b], reduction: Reduction::MeanProbabilities }.predict_proba(x.view());
    assert_eq!(argmax(&l), 2);
    assert_ne!(argmax(&p), 2, "{p:?}");
}

fn softmax(z: &[f64], t: f64) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b / t));
    let e: Vec<f64> = z.iter().map(|v| (v / t - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// τ²·KL(σ(z_t/τ) ‖ σ(z_s/τ)) in f64, the quantity the training loss differs from by a constant.
fn kd_kl(zs: &[f64], zt: &[f64], t: f64) -> f64 {
    let (p, q) = (softmax(zt, t), softmax(zs, t));
    t * t * p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum::<f64>()
}

#[test]
fn the_kd_gradient_matches_finite_differences_and_tends_to_logit_matching() {
    let zs = [0.3, -1.2, 2.0, 0.5];
    let zt = [1.0, 0.2, -0.5, 1.5];
    for t in [1.0, 2.0, 4.0] {
        let var = Var::from_tensor(&Tensor::from_vec(zs.map(|v| v as f32).to_vec(), (1, 4), &Device::Cpu).unwrap()).unwrap();
        let targets = Tensor::from_vec(softmax(&zt, t).iter().map(|&v| v as f32).collect::<Vec<_>>(), (1, 4), &Device::Cpu).unwrap();
        let loss = distillation_loss(var.as_tensor(), &targets, t).unwrap();
        let grads = loss.backward().unwrap();
        let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let (ps, pt) = (softmax(&zs, t), softmax(&zt, t));
        for j in 0..4 {
            let closed = t * (ps[j] - pt[j]);
            let h = 1e-5;
            let (mut up, mut down) = (zs, zs);
            up[j] += h;
            down[j] -= h;
            let fd = (kd_kl(&up, &zt, t) - kd_kl(&down, &zt, t)) / (2.0 * h);
            // f32 autograd against f64 closed form and central differences (error O(h²)).
            assert!((g[j] as f64 - closed).abs() < 1e-5, "τ = {t}: autograd {} closed {closed}", g[j]);
            assert!((fd - closed).abs() < 1e-7, "τ = {t}: fd {fd} closed {closed}");
        }
    }
    // As τ → ∞ the gradient tends to (1/c)·(centred z_s − centred z_t).
    let centred = |z: &[f64]| {
        let m = z.iter().sum::<f64>() / z.len() as f64;
        z.iter().map(|v| v - m).collect::<Vec<f64>>()
    };
    let (cs, ct) = (centred(&zs), centred(&zt));
    let limit: Vec<f64> = (0..4).map(|j| (cs[j] - ct[j]) / 4.0).collect();
    let mut previous = f64::INFINITY;
    for t in [4.0, 20.0, 100.0, 1000.0] {
        let (ps, pt) = (softmax(&zs, t), softmax(&zt, t));
        let distance = (0..4).map(|j| (t * (ps[j] - pt[j]) - limit[j]).powi(2)).sum::<f64>().sqrt();
        assert!(distance < previous, "τ = {t}: {distance} after {previous}");
        previous = distance;
    }
    assert!(previous < 1e-3, "{previous}");
}

#[test]
fn weighted_and_unweighted_ece_differ_on_skewed_confidences() {
    // 90 confident, correct points and 10 unsure, wrong ones: the weighted ECE barely sees the
    // unsure bin; the unweighted mean over bins gives it a tenth of the weight.
    let mut p = Array2::zeros((100, 2));
    let mut y = Vec::new();
    for i in 0..100 {
        if i < 90 {
            p[[i, 0]] = 0.95;
            p[[i, 1]] = 0.05;
            y.push(0);
        } else {
            p[[i, 0]] = 0.55;
            p[[i, 1]] = 0.45;
            y.push(1);
        }
    }
    let weighted = metrics::ece(p.view(), &y, 10).unwrap();
    let unweighted = metrics::ece_unweighted(p.view(), &y, 10).unwrap();
    // Weighted: 0.9·|1 − 0.95| + 0.1·|0 − 0.55| = 0.1; unweighted: (0.05 + 0.55) / 10 = 0.06.
    assert!((weighted - 0.1).abs() < 1e-12, "{weighted}");
    assert!((unweighted - 0.06).abs() < 1e-12, "{unweighted}");
}

#[test]
fn sgd_without_weight_decay_never_moves_the_sum_cam_direction() {
    // CE and KD gradients of the head satisfy Σ_c ∂L/∂w_c = 0, so Σ_c w_c stays at its initial
    // value under SGD without weight decay (f32 rounding only); weight decay shrinks it.
    let (x, y) = kdlab::models::cnn::stripes(120, 8, 3);
    let k = 2;
    let base = NeuralSpec { kind: StudentKind::Cnn, widths: Some(vec![4, 8]), epochs: 15, learning_rate: 0.05, weight_decay: 0.0, optimizer: OptimizerKind::SgdNesterov, validation_fraction: 0.0, ..NeuralSpec::default() };
    let terms = [LossTerm::soft_ce(1.0, 1.0, one_hot(&y, k))];
    let direction = |net: &kdlab::models::student::Network| match &net.architecture {
        Architecture::Cnn(c) => attention::class_sum_direction(c).unwrap(),
        Architecture::Mlp(_) => unreachable!(),
    };
    let drift = |spec: &NeuralSpec| {
        let rows = Rows::new(x.view(), Some((8, 8)));
        let start = direction(&student::initial_network(spec, rows, k, 9).unwrap());
        let trained = student::train(spec, rows, &terms, x.slice(ndarray::s![..0, ..]), &[], k, 9).unwrap();
        let end = direction(&trained);
        start.iter().zip(&end).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max)
    };
    assert!(drift(&base) < 1e-5, "{}", drift(&base));
    let decayed = NeuralSpec { weight_decay: 0.05, ..base.clone() };
    assert!(drift(&decayed) > 1e-3, "{}", drift(&decayed));
}

#[test]
fn attention_iou_of_a_network_with_itself_is_one() {
    let shape = CnnShape { height: 12, width: 12, channels: vec![4, 8, 8], downsample: vec![false, true, true], n_classes: 3 };
    let cnn = Cnn::new(shape, 2).unwrap();
    let (x, _) = kdlab::models::cnn::stripes(30, 12, 4);
    let m = attention::attention_masks(&cnn, x.view(), attention::CamKind::SumOfClasses, 0.4).unwrap();
    assert_eq!(attention::pooled_iou(&[m.clone(), m], 128).unwrap(), 1.0);
}

const LAMBDA_STUDY: &str = r#"
name = "lambda-sanity"
claim = "a student started at its teacher stays there"
seeds = 2
arms = ["kd", "kd-logits", "kd-independent"]

[data]
kind = "mnist1d"
n_train = 300
n_test = 300

[teacher]
kind = "mlp"
hidden = [32]
epochs = 40
validation_fraction = 0.0

[student]
kind = "mlp"
hidden = [32]
epochs = 20
optimizer = "sgd-nesterov"
learning_rate = 0.05
weight_decay = 0.0
validation_fraction = 0.0

[distill]
temperature = 4.0

[fidelity]
init_lambda = [0.0, 1.0]
"#;

#[test]
fn a_student_started_at_its_teacher_agrees_with_it_everywhere() {
    let (_, rows) = common::run_study(LAMBDA_STUDY);
    let arm = |name: &str, lambda: &str| rows.iter().filter(|r| r.arm == name && r.levels[0] == lambda).cloned().collect::<Vec<_>>();
    // θ = θ_t is the global minimum of KL(teacher ‖ student) and of the squared error of the
    // centred logits: the gradient is zero up to f32 rounding, so SGD without weight decay
    // cannot move the student off its teacher, whichever it matches.
    for r in arm("kd", "1").into_iter().chain(arm("kd-logits", "1")) {
        assert_eq!(r.get("agreement"), Some(1.0), "{}, λ = 1, seed {}", r.arm, r.seed);
        assert_eq!(r.get("train_agreement"), Some(1.0), "{}, λ = 1, seed {}", r.arm, r.seed);
        assert!(r.get("kl_teacher_student").unwrap() < 1e-6, "{}: {:?}", r.arm, r.get("kl_teacher_student"));
    }
    // From a random start the same training does not reach the teacher.
    for r in arm("kd", "0") {
        assert!(r.get("agreement").unwrap() < 0.99, "λ = 0, seed {}: {:?}", r.seed, r.get("agreement"));
    }
}

const FIDELITY_STUDY: &str = r#"
name = "fidelity-errors"
claim = "a valid fidelity study to break"
seeds = 4
arms = ["kd", "kd-independent"]

[data]
kind = "mnist1d"
n_train = 100
n_test = 100

[teacher]
kind = "mlp"
hidden = [16]

[student]
kind = "mlp"
hidden = [16]

[distill]
alpha = 1.0

[fidelity]
init_lambda = 0.5

[[predictions]]
id = "near-one"
metric = "agreement"
compare = ["kd", 0.9]
expect = "higher"

[[predictions]]
id = "tracks"
metric = "agreement"
correlate = "accuracy"
arm = "kd"
expect = "higher"
"#;

fn fidelity_error(from: &str, to: &str) -> kdlab::study::StudyError {
    assert!(FIDELITY_STUDY.contains(from), "test edit `{from}` does not apply");
    kdlab::study::parse(std::path::Path::new("f.toml"), &FIDELITY_STUDY.replacen(from, to, 1), &kdlab::study::LoadOptions::default()).unwrap_err()
}

#[test]
fn fidelity_studies_refuse_what_the_protocol_cannot_do() {
    let ok = kdlab::study::parse(std::path::Path::new("f.toml"), FIDELITY_STUDY, &kdlab::study::LoadOptions::default()).unwrap();
    assert_eq!(ok.predictions.len(), 2);
    let cases = [
        (r#"arms = ["kd", "kd-independent"]"#, r#"arms = ["kd"]"#, "arms", "independent-student control"),
        (r#"arms = ["kd", "kd-independent"]"#, r#"arms = ["kd", "kd-independent", "crossfit"]"#, "arms[2]", "not part of the fidelity protocol"),
        ("alpha = 1.0\n\n[fidelity]\ninit_lambda = 0.5", "alpha = 0.5\n\n[fidelity]\nextra = \"noise\"\nn_extra = 10", "distill.alpha", "carry no labels"),
        ("[student]\nkind = \"mlp\"\nhidden = [16]", "[student]\nkind = \"mlp\"\nhidden = [32]", "fidelity.init_lambda", "architecture"),
        ("init_lambda = 0.5", "attention = true", "fidelity.attention", "CNN teacher"),
        ("init_lambda = 0.5", "init_lambda = 2.0", "fidelity.init_lambda", "[0, 1]"),
        ("[teacher]\nkind = \"mlp\"\nhidden = [16]", "[teacher]\nkind = \"forest\"", "teacher.kind", "network teacher"),
        ("correlate = \"accuracy\"", "correlate = \"agreement\"", "predictions[1].correlate", "itself"),
        ("correlate = \"accuracy\"", "correlate = \"acuracy\"", "predictions[1].correlate", "accuracy"),
    ];
    for (from, to, key, message) in cases {
        let e = fidelity_error(from, to);
        assert_eq!(e.key.as_deref(), Some(key), "{from} -> {to}: {e}");
        assert!(e.to_string().contains(message), "{from} -> {to}: {e}");
    }
    // The control outside the fidelity protocol.
    let e = fidelity_error("[fidelity]\ninit_lambda = 0.5", "");
    assert_eq!(e.key.as_deref(), Some("arms[1]"), "{e}");
}

#[test]
fn constant_and_correlation_predictions_decide_on_the_right_pairs() {
    use kdlab::results::Row;
    use std::collections::BTreeMap;
    let study = kdlab::study::parse(std::path::Path::new("f.toml"), FIDELITY_STUDY, &kdlab::study::LoadOptions::default()).unwrap();
    // Agreement 0.95 + 0.01·s (all above 0.9) and accuracy rising with it: both supported.
    let row = |seed: usize, agreement: f64, accuracy: f64| Row {
        cell_index: 0,
        cell_id: study.cells[0].id.clone(),
        levels: Vec::new(),
        seed,
        arm: "kd".into(),
        failure: None,
        metrics: BTreeMap::from([("agreement".to_string(), agreement), ("accuracy".to_string(), accuracy)]),
        reliability: Vec::new(),
    };
    let rows: Vec<Row> = (0..4).map(|s| row(s, 0.95 + 0.01 * s as f64, 0.5 + 0.1 * s as f64 + 0.001 * (s * s) as f64)).collect();
    let decisions = kdlab::verdicts::evaluate(&study, &rows).decisions;
    let constant = decisions[0].test.as_ref().unwrap();
    assert!((constant.effect - 0.065).abs() < 1e-12, "mean − 0.9: {}", constant.effect);
    assert_eq!(decisions[0].verdict, kdlab::stats::Verdict::Supported);
    // One cell: the within-cell correlation over the 3 Helmert contrasts of the 4 seeds.
    let r = decisions[1].test.as_ref().unwrap();
    assert_eq!(r.method, kdlab::verdicts::seed_tests::Method::CorrelationContrasts);
    assert!(r.effect > 0.99 && r.seeds == 4 && r.units == 3, "r = {}", r.effect);
    // Reversed accuracy: the correlation is negative, so the positive prediction is contradicted
    // or inconclusive, never supported.
    let rows: Vec<Row> = (0..4).map(|s| row(s, 0.95 + 0.01 * s as f64, 0.9 - 0.1 * s as f64)).collect();
    let decisions = kdlab::verdicts::evaluate(&study, &rows).decisions;
    assert!(decisions[1].test.as_ref().unwrap().effect < -0.99);
    assert_ne!(decisions[1].verdict, kdlab::stats::Verdict::Supported);
}
