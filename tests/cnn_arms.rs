//! Every distillation arm runs with a CNN teacher (an ensemble of two) and a CNN student, on
//! the same loss-term path as the MLP students: targets are built by `distill`, the student is
//! fit by `student::fit`, and its probabilities are finite rows that sum to 1. Small images
//! (6×6 stripes), tiny networks and few epochs: this checks the plumbing, not accuracy.

use kdlab::distill::{self, DistillLoss, DistillSpec, Gamma};
use kdlab::method::{GammaRule, TargetInputs, BUILTIN};
use kdlab::models::student::{self, StudentSpec};
use kdlab::data::Rows;
use kdlab::models::TeacherSpec;
use kdlab::study::{parse, LoadOptions};
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};

/// Horizontal (class 0) or vertical (class 1) stripes with uniform noise in ±0.5.
fn stripes(n: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let x = Array2::from_shape_fn((n, 36), |(i, p)| {
        let on = if y[i] == 0 { (p / 6) % 2 == 0 } else { (p % 6) % 2 == 0 };
        f64::from(u8::from(on)) + rng.gen_range(-0.5..0.5)
    });
    (x, y)
}

const STUDY: &str = r#"
name = "cnn-arms"
claim = "every arm runs with CNNs"
arms = ["labels", "kd"]
[data]
kind = "gaussian-mixture"
n_train = 60
[teacher]
kind = "cnn"
members = 2
reduction = "mean-logits"
widths = [4]
epochs = 3
[student]
kind = "cnn"
widths = [4, 4]
epochs = 3
optimizer = "sgd-nesterov"
schedule = "cosine"
"#;

#[test]
fn every_arm_trains_a_cnn_student_from_a_cnn_teacher() {
    let study = parse(std::path::Path::new("cnn-arms.toml"), STUDY, &LoadOptions::default()).unwrap();
    let cfg = &study.cells[0].config;
    let (teacher_spec, student_spec): (&TeacherSpec, &StudentSpec) = (&cfg.teacher, &cfg.student);
    let (x, y) = stripes(60, 1);
    let (x_val, y_val) = stripes(20, 2);
    let k = 2;
    let rows = Rows::new(x.view(), Some((6, 6)));
    let teacher = teacher_spec.fit(rows, &y, k, 3).unwrap();
    let p_teacher = teacher.predict_proba(x.view());
    let small = DistillSpec { crossfit_folds: 3, cv_folds: 2, c_grid: vec![0.01, 1.0], temperature: 2.0, alpha: 0.7, ..DistillSpec::default() };
    let crossfit = distill::cross_fit(teacher_spec, rows, &y, k, &small, 4).unwrap();
    for loss in [DistillLoss::Ce, DistillLoss::MseP, DistillLoss::MseLogp] {
        let spec = DistillSpec { loss: Some(loss), ..small.clone() };
        // Arms that read the teacher network train in `method::network` (tests/methods.rs); here
        // every arm's targets, which for those arms are plain KD's.
        for &arm in BUILTIN {
            let source = if arm.needs().out_of_fold { &crossfit.out_of_fold } else { &p_teacher };
            let gamma = match arm.gamma_rule() {
                GammaRule::Zero => Gamma::Zero,
                GammaRule::Constant => Gamma::Constant(spec.gamma),
                GammaRule::Full => Gamma::Full,
                GammaRule::VarianceAware => {
                    let (c, _) = distill::select_c(&spec, student_spec, rows, &y, source.view(), x_val.view(), &y_val, k, 5).unwrap();
                    Gamma::VarianceAware { c }
                }
            };
            let inputs = TargetInputs { y: &y, teacher: source.view(), gamma, n_classes: k, distill: &spec, student: student_spec };
            let targets = arm.targets(&inputs).unwrap();
            let fitted = student::fit(student_spec, rows, &targets, x_val.view(), &y_val, k, 6).unwrap();
            let p = fitted.predict_proba(x_val.view()).unwrap();
            assert_eq!(p.dim(), (20, 2));
            for row in p.axis_iter(Axis(0)) {
                assert!(row.iter().all(|v| v.is_finite()) && (row.sum() - 1.0).abs() < 1e-5, "{loss:?} {}: {row}", arm.name());
            }
        }
    }
}

/// Augmentation of the training stream, mixup included (its target mixing is tested in
/// `augment`): training is deterministic for a seed, and a different seed changes the student.
#[test]
fn augmented_training_with_mixup_is_deterministic_per_seed() {
    let with_augment = STUDY.replace("schedule = \"cosine\"", "schedule = \"cosine\"\naugment = \"strong\"");
    let study = parse(std::path::Path::new("cnn-arms.toml"), &with_augment.replace("kind = \"gaussian-mixture\"", "kind = \"digits\"\nsmall = true"), &LoadOptions::default()).unwrap();
    let student_spec: &StudentSpec = &study.cells[0].config.student;
    let StudentSpec::Neural(n) = student_spec else { panic!("a network student") };
    assert!(n.augment.as_ref().is_some_and(|a| a.mixup > 0.0), "the strong level uses mixup");
    let (x, y) = stripes(60, 1);
    let (x_val, y_val) = stripes(20, 2);
    let spec = DistillSpec { temperature: 2.0, ..DistillSpec::default() };
    let soft = Array2::from_shape_fn((60, 2), |(i, c)| if c == y[i] { 0.8 } else { 0.2 });
    let targets = distill::student_targets(&y, Some(soft.view()), Gamma::Zero, 2, &spec, student_spec);
    let fit = |seed| student::fit(student_spec, Rows::new(x.view(), Some((6, 6))), &targets, x_val.view(), &y_val, 2, seed).unwrap().predict_proba(x_val.view()).unwrap();
    assert_eq!(fit(7), fit(7), "augmented training must be reproducible for a seed");
    assert_ne!(fit(7), fit(8));
}

#[test]
fn augmentation_on_tabular_data_is_refused() {
    let source = STUDY.replace("kind = \"cnn\"\nwidths = [4, 4]", "kind = \"mlp\"\nhidden = [4]\naugment = \"weak\"");
    let err = parse(std::path::Path::new("cnn-arms.toml"), &source, &LoadOptions::default()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("student.augment"), "{err}");
    assert!(err.to_string().contains("needs image data"), "{err}");
}
