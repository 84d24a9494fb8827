//! The KD-method arms: each loss's value against its f64 reference and its gradient against
//! central finite differences, and the arms as a study runs them (exact identities where the
//! method must reduce to plain KD).

mod common;

use candle_core::{DType, Device, Tensor, Var};
use kdlab::distill::{feature, relational};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn random_matrix(rows: usize, cols: usize, seed: u64, positive: bool) -> Array2<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| if positive { rng.gen_range(0.1..2.0) } else { rng.gen_range(-2.0..2.0) })
}

fn tensor(x: &Array2<f64>) -> Tensor {
    Tensor::from_vec(x.iter().copied().collect::<Vec<f64>>(), x.dim(), &Device::Cpu).unwrap()
}

/// Checks autograd's gradient of `loss` in the student matrix against central differences of
/// the same loss (f64 throughout), and returns the loss value at `student`.
fn check_gradient(name: &str, student: &Array2<f64>, loss: &dyn Fn(&Tensor) -> Tensor) -> f64 {
    let var = Var::from_tensor(&tensor(student)).unwrap();
    let value = loss(var.as_tensor());
    let grads = value.backward().unwrap();
    let grad: Vec<f64> = grads.get(var.as_tensor()).expect("a gradient").flatten_all().unwrap().to_vec1().unwrap();
    let at = |x: &Array2<f64>| loss(&tensor(x)).to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let h = 1e-6;
    for (i, g) in grad.iter().enumerate() {
        let (r, c) = (i / student.ncols(), i % student.ncols());
        let (mut up, mut down) = (student.clone(), student.clone());
        up[[r, c]] += h;
        down[[r, c]] -= h;
        let fd = (at(&up) - at(&down)) / (2.0 * h);
        // Central differences in f64 are accurate to ~1e-8 here; 1e-5 relative leaves room for
        // the losses' curvature without hiding a wrong gradient (those are off by O(1)).
        assert!((g - fd).abs() <= 1e-5 * (1.0 + fd.abs()), "{name}: ∂/∂x[{r},{c}] autograd {g} vs finite difference {fd}");
    }
    value.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn feature_losses_match_their_references_and_finite_differences() {
    let (b, d_s, d_t) = (6, 3, 4);
    let student = random_matrix(b, d_s, 1, false);
    let teacher = random_matrix(b, d_t, 2, false);
    let weight = random_matrix(d_s, d_t, 3, false);
    let bias = random_matrix(1, d_t, 4, false).row(0).to_owned();
    let norms = [feature::Normalisation::None, feature::Normalisation::L2, feature::Normalisation::BatchStandardise { eps: 1e-5 }];
    let losses = [feature::FeatureLoss::SquaredError, feature::FeatureLoss::LogSum { alpha: 2.0 }, feature::FeatureLoss::LogSum { alpha: 4.0 }];
    for norm in norms {
        for loss in losses {
            let w = tensor(&weight);
            let bias_t = Tensor::from_vec(bias.to_vec(), d_t, &Device::Cpu).unwrap();
            let t = tensor(&teacher);
            let f = |s: &Tensor| feature::feature_distillation_loss(s, &w, Some(&bias_t), &t, norm, loss).unwrap();
            let value = check_gradient(&format!("feature {norm:?} {loss:?}"), &student, &f);
            let reference = feature::feature_distillation_loss_f64(student.view(), weight.view(), Some(bias.view()), teacher.view(), norm, loss).unwrap();
            assert!((value - reference).abs() <= 1e-10 * (1.0 + reference.abs()), "{norm:?} {loss:?}: {value} vs reference {reference}");
        }
    }
}

#[test]
fn relational_losses_match_their_references_and_finite_differences() {
    // Student and teacher widths differ: the relational losses compare batch geometry only.
    let student = random_matrix(5, 3, 5, true);
    let teacher = random_matrix(5, 7, 6, true);
    let t = tensor(&teacher);
    let distance = check_gradient("rkd distance", &student, &|s| relational::rkd_distance_loss(s, &t).unwrap());
    assert!((distance - relational::rkd_distance_loss_f64(student.view(), teacher.view()).unwrap()).abs() < 1e-10);
    let angle = check_gradient("rkd angle", &student, &|s| relational::rkd_angle_loss(s, &t).unwrap());
    assert!((angle - relational::rkd_angle_loss_f64(student.view(), teacher.view()).unwrap()).abs() < 1e-10);
    for (k, power) in [(None, 1), (None, 2), (Some(2), 1)] {
        let g = check_gradient(&format!("gkd k={k:?} p={power}"), &student, &|s| relational::gkd_loss(s, &t, k, power).unwrap());
        let reference = relational::gkd_loss_f64(student.view(), teacher.view(), k, power).unwrap();
        assert!((g - reference).abs() < 1e-10, "gkd k={k:?} p={power}: {g} vs {reference}");
    }
    // The study's losses are not trivially zero on these inputs.
    assert!(distance > 1e-3 && angle > 1e-3);
}

const METHOD_STUDY: &str = r#"
name = "methods-identities"
claim = "method arms reduce to plain KD where they must"
seeds = 2
arms = ["kd", "london-detached", "london", "rco", "label-smoothing", "meta-distil", "feature-kd"]

[data]
kind = "multiclass-synthetic"
dim = 6
n_classes = 4
signal = 2.0
n_train = 300
n_test = 300
n_population = 300

[teacher]
kind = "mlp"
hidden = [24, 24]
epochs = 15
validation_fraction = 0.0

[student]
kind = "mlp"
hidden = [8, 8]
epochs = 12
validation_fraction = 0.0

[distill]
temperature = 2.0
alpha = 0.5

[method]
rco_anchors = 1
london_weight = 0.01
"#;

/// The released LONDON (σ without gradient) adds a constant to the loss, so it trains exactly
/// the same student as KD; the differentiable version does not. RCO with a single anchor is
/// KD from the final teacher for all epochs. Exact equality holds because the arms share the
/// initialisation, batches and targets (every arm's student seed is the same).
#[test]
fn released_london_and_one_anchor_rco_train_the_kd_student() {
    let (_, rows) = common::run_study(METHOD_STUDY);
    let get = |arm: &str, seed: usize, metric: &str| rows.iter().find(|r| r.arm == arm && r.seed == seed).and_then(|r| r.get(metric)).unwrap_or_else(|| panic!("{arm} seed {seed} {metric}"));
    for seed in 0..2 {
        for metric in ["accuracy", "log_loss", "kl_teacher_student", "congruence_kl", "geometry_agreement"] {
            let kd = get("kd", seed, metric);
            assert_eq!(get("london-detached", seed, metric), kd, "london-detached {metric}, seed {seed}");
            assert_eq!(get("rco", seed, metric), kd, "one-anchor rco {metric}, seed {seed}");
        }
        assert_ne!(get("london", seed, "log_loss"), get("kd", seed, "log_loss"), "the differentiable LONDON must change training");
        assert_ne!(get("label-smoothing", seed, "log_loss"), get("kd", seed, "log_loss"));
        assert_ne!(get("meta-distil", seed, "log_loss"), get("kd", seed, "log_loss"));
        assert_ne!(get("feature-kd", seed, "log_loss"), get("kd", seed, "log_loss"));
        // Both σ gaps are measured; matching σ with the gradient flowing lowers the gap.
        assert!(get("london", seed, "sigma_gap") < get("kd", seed, "sigma_gap"), "seed {seed}");
    }
}

fn method_error(from: &str, to: &str) -> kdlab::study::StudyError {
    assert!(METHOD_STUDY.contains(from), "test edit `{from}` does not apply");
    kdlab::study::parse(std::path::Path::new("m.toml"), &METHOD_STUDY.replacen(from, to, 1), &kdlab::study::LoadOptions::default()).unwrap_err()
}

#[test]
fn method_studies_refuse_what_the_arms_cannot_do() {
    kdlab::study::parse(std::path::Path::new("m.toml"), METHOD_STUDY, &kdlab::study::LoadOptions::default()).unwrap();
    let cases = [
        ("[teacher]\nkind = \"mlp\"\nhidden = [24, 24]\nepochs = 15\nvalidation_fraction = 0.0", "[teacher]\nkind = \"forest\"", "arms[1]", "teacher network"),
        ("rco_anchors = 1", "rco_anchors = 0", "method.rco_anchors", "at least 1"),
        ("hidden = [8, 8]", "hidden = [8]", "arms[1]", "as many hidden layers"),
        ("\"feature-kd\"]", "\"feature-kd\", \"crossfit\"]", "arms[7]", "beside method arms"),
        ("rco_anchors = 1", "rco_anchors = 1\nprojector = \"identity\"", "arms[6]", "penultimate widths"),
        ("london_weight = 0.01", "london_weight = -1.0", "method.london_weight", ">= 0"),
        ("london_weight = 0.01", "london_wieght = 0.01", "method.london_wieght", "london_weight"),
        ("london_weight = 0.01", "normalisation = \"batch-norm\"", "method.normalisation", "batch-standardise"),
    ];
    for (from, to, key, message) in cases {
        let e = method_error(from, to);
        assert_eq!(e.key.as_deref(), Some(key), "{from} -> {to}: {e}");
        assert!(e.to_string().contains(message), "{from} -> {to}: {e}");
    }
}
