//! Fidelity protocols: how closely a student matches its teacher, and whether that matters
//! (Stanton et al. 2021, "Does knowledge distillation really work?"; Guo et al. 2024, "Why
//! does knowledge distillation work?").
//!
//! A study with a `[fidelity]` section distils network teachers (`kind = "mlp"` or `"cnn"`,
//! kept in memory) into network students on a *distillation stream*: the student's training
//! rows plus optional extra rows (fresh draws of the generator, uniform noise, or
//! out-of-distribution images). The teacher labels every batch as the student sees it, so an
//! augmented or mixed batch gets the teacher's probabilities of the augmented rows. Arms:
//! `labels`, `kd` (from this cell's teacher), `kd-logits` (the same, matching the teacher's
//! centred logits by squared error) and `kd-independent`, the control of Stanton et al.: a
//! student distilled the same way from an independent teacher (another seed), whose
//! `agreement` is measured against *this* cell's teacher, i.e. A(t, s′) beside A(t, s).
//!
//! Definitions (stated in every report): agreement is top-1 agreement; KL is
//! KL(teacher ‖ student) at τ = 1 in nats, whatever τ the student was trained at (Stanton's
//! direction; Guo's released code uses the reverse direction times 10, which kdlab does not);
//! *train* fidelity is measured on one seeded pass of the student's augmentation over the
//! distillation stream with the final weights, not on the fly during training.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Tensor;
use ndarray::{concatenate, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::diagnostics::{attention, mi, NullParams};
use crate::distill::{self, DistillSpec};
use crate::method::{self, Arm};
use crate::metrics;
use crate::models::ensemble::NetworkEnsemble;
use crate::models::loss::{distillation_loss, target_tensor, Batch, BatchLoss, LossTerm};
use crate::models::tensor::{from_tensor, to_tensor};
use crate::models::student::{self, one_hot, Architecture, FittedStudent, NeuralSpec, Network};
use crate::data::Rows;
use crate::models::{ModelError, Teacher};
use crate::protocol::{ArmError, ArmFit, Protocol};
use crate::loss_surface::LossSurface;
use crate::seed;

/// Rows appended to the distillation stream beyond the student's training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Extra {
    #[default]
    None,
    /// Fresh, unlabeled draws of the data's generator (the replicate's population sample:
    /// `mnist1d` and the synthetic kinds), unlimited in-distribution data.
    Fresh,
    /// Images of independent uniform noise over the training pixels' range.
    Noise,
    /// An out-of-distribution stand-in: training images under one fixed random pixel
    /// permutation (the pixel statistics of the data, none of its shapes).
    Ood,
}

fn default_surface_points() -> usize {
    15
}
fn default_cam_threshold() -> f64 {
    0.4
}

/// The `[fidelity]` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FidelitySpec {
    #[serde(default)]
    pub extra: Extra,
    /// How many extra rows (ignored when `extra = "none"`).
    #[serde(default)]
    pub n_extra: usize,
    /// Students start at λ·θ_teacher + (1 − λ)·θ_random (Stanton's λ; the student's
    /// architecture must equal the single teacher's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_lambda: Option<f64>,
    /// A 2-D slice of the distillation loss through the teacher's, the initial and the final
    /// student weights (first seed, `kd` arm), drawn as a figure.
    #[serde(default)]
    pub loss_surface: bool,
    /// Grid points per side of that slice.
    #[serde(default = "default_surface_points")]
    pub surface_points: usize,
    /// Attention of the teacher's members: class-activation-map IoU (CNN teachers with two or
    /// more members).
    #[serde(default)]
    pub attention: bool,
    /// Threshold on min–max normalised maps (Guo et al.'s released code: 0.4).
    #[serde(default = "default_cam_threshold")]
    pub cam_threshold: f64,
}

impl FidelitySpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        // `n_extra` without `extra` is allowed (and ignored), so that `extra` can be a grid axis
        // with a level "none"; n_extra = 0 adds no rows.
        if self.n_extra > crate::data::MAX_ROWS {
            return Err(("n_extra", format!("must be at most {}, got {}", crate::data::MAX_ROWS, self.n_extra)));
        }
        if let Some(l) = self.init_lambda {
            if !(0.0..=1.0).contains(&l) {
                return Err(("init_lambda", format!("must be in [0, 1], got {l}")));
            }
        }
        if !(3..=101).contains(&self.surface_points) {
            return Err(("surface_points", format!("must be between 3 and 101, got {}", self.surface_points)));
        }
        if !(self.cam_threshold > 0.0 && self.cam_threshold < 1.0) {
            return Err(("cam_threshold", format!("must be in (0, 1), got {}", self.cam_threshold)));
        }
        Ok(())
    }
}

/// The arms a fidelity study may name.
pub const ARMS: &[Arm] = &[method::LABELS, method::KD, method::KD_LOGITS, method::KD_INDEPENDENT];

/// The two teachers of a fidelity unit: this cell's and the independent one of the control.
pub struct TeacherPair {
    pub main: Arc<NetworkEnsemble>,
    pub independent: Arc<NetworkEnsemble>,
}

/// The main teacher of a pair, as a [`Teacher`].
pub struct MainTeacher(pub Arc<TeacherPair>);

impl Teacher for MainTeacher {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.0.main.predict_proba(x)
    }
}

/// Seed of the independent teacher, from the main teacher's seed.
pub fn independent_seed(teacher_seed: u64) -> u64 {
    seed::derive(teacher_seed, &["independent"])
}

/// Stream rows the loss surface is evaluated on (it costs points² forward passes).
const SURFACE_ROWS: usize = 512;

/// Everything one unit's fidelity students share.
pub struct Unit<'a> {
    pub spec: &'a FidelitySpec,
    pub distill: &'a DistillSpec,
    pub student: &'a NeuralSpec,
    pub fit: &'a Dataset,
    pub val: &'a Dataset,
    pub test: &'a Dataset,
    /// The replicate's fresh sample (`extra = "fresh"`).
    pub population: &'a Dataset,
    pub teachers: &'a TeacherPair,
    pub seed: u64,
    /// The teachers' spec (for their attention maps) and the seed they were fitted with.
    pub teacher_spec: Option<&'a crate::models::ensemble::NetworkTeacherSpec>,
    pub teacher_seed: u64,
    /// The replicate is the first: draw the loss slice when the study asks for it.
    pub first_seed: bool,
}

/// A fitted fidelity student with its extra metrics (and the loss slice, when asked for).
pub struct Fitted {
    pub network: Network,
    pub metrics: BTreeMap<String, f64>,
    pub surface: Option<LossSurface>,
}

impl Unit<'_> {
    /// The distillation stream: the training rows, then the extra rows.
    pub fn stream(&self) -> Result<Array2<f64>, String> {
        let x = &self.fit.x;
        let n = self.spec.n_extra;
        let extra = match self.spec.extra {
            _ if n == 0 => return Ok(x.clone()),
            Extra::None => return Ok(x.clone()),
            Extra::Fresh => {
                if self.population.len() < n {
                    return Err(format!("fidelity.extra = \"fresh\" needs {n} fresh rows; the data kind gives {} (set data.n_population >= n_extra; only generated kinds have fresh draws)", self.population.len()));
                }
                self.population.x.slice(ndarray::s![..n, ..]).to_owned()
            }
            Extra::Noise => {
                let (lo, hi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
                let mut rng = seed::rng(seed::derive(self.seed, &["noise-rows"]));
                Array2::from_shape_fn((n, x.ncols()), |_| rand::Rng::gen_range(&mut rng, lo..=hi))
            }
            Extra::Ood => {
                use rand::seq::SliceRandom;
                let mut rng = seed::rng(seed::derive(self.seed, &["ood-rows"]));
                let mut permutation: Vec<usize> = (0..x.ncols()).collect();
                permutation.shuffle(&mut rng);
                let rows: Vec<usize> = (0..n).map(|_| rand::Rng::gen_range(&mut rng, 0..x.nrows())).collect();
                let picked = x.select(Axis(0), &rows);
                picked.select(Axis(1), &permutation)
            }
        };
        concatenate(Axis(0), &[x.view(), extra.view()]).map_err(|e| e.to_string())
    }

    /// The teacher an arm distils from (`labels` students are scored against the main one).
    fn teacher_of(&self, arm: Arm) -> &Arc<NetworkEnsemble> {
        match arm.needs().independent_teacher {
            true => &self.teachers.independent,
            false => &self.teachers.main,
        }
    }

    /// Fits one arm's student on the stream and measures its train-side and augmented-test
    /// fidelity; `first_seed` adds the loss slice when the study asks for it.
    pub fn train_arm(&self, arm: Arm, first_seed: bool) -> Result<Fitted, ModelError> {
        let k = self.fit.n_classes;
        let stream = self.stream().map_err(|reason| ModelError::Fit { model: "fidelity stream", reason })?;
        let teacher = self.teacher_of(arm).clone();
        let t = self.distill.temperature;
        let alpha = self.distill.alpha;
        let mut terms = Vec::new();
        if !arm.needs().teacher {
            terms.push(LossTerm::soft_ce(1.0, 1.0, one_hot(&self.fit.y, k)));
        } else if arm.needs().teacher_logits {
            terms.push(LossTerm::new(alpha, OnlineLogitMatching::new(teacher.clone(), stream.view())?));
        } else {
            let targets = distill::tempered(teacher.predict_proba(stream.view()).view(), t);
            terms.push(LossTerm::new(alpha, OnlineSoftCrossEntropy::new(t, targets.view(), teacher.clone())));
            }
        if arm.needs().teacher && alpha < 1.0 {
            // Only the training rows carry labels (the study refuses extra rows with α < 1).
            terms.push(LossTerm::soft_ce(1.0 - alpha, 1.0, one_hot(&self.fit.y, k)));
        }
        let start = match self.spec.init_lambda {
            Some(lambda) if arm.needs().teacher => Some(interpolated_start(self.student, &teacher, lambda, self.fit.rows().with(stream.view()), k, self.seed)?),
            _ => None,
        };
        // A labels student trains on the labelled rows only.
        let x_train = if !arm.needs().teacher { self.fit.x.view() } else { stream.view() };
        let network = student::train_from(self.student, self.fit.rows().with(x_train), &terms, self.val.x.view(), &self.val.y, k, self.seed, start.as_deref())?;
        let metrics = self.measure(arm, &network, &stream)?;
        let surface = match first_seed && self.spec.loss_surface && arm == method::KD {
            true => Some(self.surface(&network, &teacher, &stream, start.as_deref())?),
            false => None,
        };
        Ok(Fitted { network, metrics, surface })
    }

    /// Train-side fidelity (one augmented pass over the stream), augmented-test fidelity and
    /// MI, train accuracies, the generalisation gaps and the distillation loss reached.
    fn measure(&self, arm: Arm, net: &Network, stream: &Array2<f64>) -> Result<BTreeMap<String, f64>, ModelError> {
        let mut m = BTreeMap::new();
        let own_teacher = self.teacher_of(arm);
        let main = &self.teachers.main;
        let augment = |x: ArrayView2<f64>, label: &str| -> Array2<f64> {
            match (&self.student.augment, self.fit.image_shape) {
                (Some(a), Some((h, w))) if !a.is_identity() => a.apply(x, h, w, seed::derive(self.seed, &["fidelity", label])).x,
                _ => x.to_owned(),
            }
        };
        let num = |r: metrics::Result<f64>| r.unwrap_or(f64::NAN);
        // Train fidelity: against the teacher the student was distilled from.
        let stream_aug = augment(stream.view(), "stream");
        let p_s = net.predict_proba(stream_aug.view())?;
        let p_t = own_teacher.predict_proba(stream_aug.view());
        m.insert("train_agreement".into(), num(metrics::agreement(p_s.view(), p_t.view())));
        m.insert("train_kl".into(), num(metrics::kl_rows(p_t.view(), p_s.view())));
        // The distillation objective reached on the clean stream, at the training temperature.
        let t = self.distill.temperature;
        let p_s_clean = net.predict_proba(stream.view())?;
        let p_t_clean = own_teacher.predict_proba(stream.view());
        m.insert("final_train_kl".into(), num(metrics::kl_rows(distill::tempered(p_t_clean.view(), t).view(), distill::tempered(p_s_clean.view(), t).view())));
        // Train accuracy on the labelled rows, clean and as augmented for training.
        let n_fit = self.fit.len();
        let clean = num(metrics::accuracy(p_s_clean.slice(ndarray::s![..n_fit, ..]), &self.fit.y));
        let augmented = num(metrics::accuracy(p_s.slice(ndarray::s![..n_fit, ..]), &self.fit.y));
        let p_test = net.predict_proba(self.test.x.view())?;
        let test_accuracy = num(metrics::accuracy(p_test.view(), &self.test.y));
        m.insert("train_accuracy".into(), clean);
        m.insert("train_accuracy_augmented".into(), augmented);
        m.insert("generalisation_gap".into(), augmented - test_accuracy);
        m.insert("generalisation_gap_clean".into(), clean - test_accuracy);
        m.insert("ece_unweighted".into(), num(metrics::ece_unweighted(p_test.view(), &self.test.y, 10)));
        // Test fidelity under the student's augmentation (Guo's val_aug), against this cell's
        // teacher, which labels the same augmented rows.
        let test_aug = augment(self.test.x.view(), "test");
        let p_s = net.predict_proba(test_aug.view())?;
        let p_t = main.predict_proba(test_aug.view());
        m.insert("agreement_augmented".into(), num(metrics::agreement(p_s.view(), p_t.view())));
        m.insert("kl_augmented".into(), num(metrics::kl_rows(p_t.view(), p_s.view())));
        let labels = |p: &Array2<f64>| p.rows().into_iter().map(metrics::argmax).collect::<Vec<usize>>();
        // Each MI with the 97.5% point of its permutation null (200 seeded permutations).
        let mut put_mi = |name: &str, teacher: &[usize], student: &[usize]| {
            let null = NullParams { permutations: NullParams::default().permutations, seed: seed::derive(self.seed, &["fidelity", name, "null"]) };
            if let Ok(d) = mi::discrete_mi(teacher, student, Some(null)) {
                m.insert(name.into(), d.bits);
                if let Some(band) = d.null {
                    m.insert(format!("{name}_null_high"), band.high);
                }
            }
        };
        put_mi("mi_augmented", &labels(&p_t), &labels(&p_s));
        put_mi("mi_clean", &labels(&main.predict_proba(self.test.x.view())), &labels(&p_test));
        Ok(m)
    }

    /// The distillation loss on the plane through θ₀, θ_final and θ_teacher.
    fn surface(&self, net: &Network, teacher: &NetworkEnsemble, stream: &Array2<f64>, start: Option<&[Tensor]>) -> Result<LossSurface, ModelError> {
        let k = self.fit.n_classes;
        let member = teacher.members.first().ok_or_else(|| ModelError::Fit { model: "loss surface", reason: "the teacher has no members".into() })?;
        let probe = student::initial_network(self.student, self.fit.rows().with(stream.view()), k, self.seed)?;
        let theta0 = match start {
            Some(s) => s.to_vec(),
            None => probe.weights()?,
        };
        let flat = |w: &[Tensor]| -> Result<Vec<f64>, ModelError> {
            let mut out = Vec::new();
            for t in w {
                out.extend(t.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?);
            }
            Ok(out)
        };
        let (w0, wf, wt) = (flat(&theta0)?, flat(&net.weights()?)?, flat(&member.weights()?)?);
        if w0.len() != wt.len() {
            return Err(ModelError::Fit { model: "loss surface", reason: "needs the student's architecture to equal the teacher's".into() });
        }
        let u: Vec<f64> = wf.iter().zip(&w0).map(|(a, b)| a - b).collect();
        let v: Vec<f64> = wt.iter().zip(&w0).map(|(a, b)| a - b).collect();
        let (e1, e2, fin, teach) = plane_basis(&u, &v);
        let n_rows = stream.nrows().min(SURFACE_ROWS);
        let rows: Vec<usize> = (0..n_rows).map(|i| i * stream.nrows() / n_rows).collect();
        let x = stream.select(Axis(0), &rows);
        let t = self.distill.temperature;
        let target = distill::tempered(teacher.predict_proba(x.view()).view(), t);
        let points = self.spec.surface_points;
        let span = |vals: [f64; 3]| {
            let (lo, hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            let pad = 0.25 * (hi - lo).max(1e-3);
            (0..points).map(|i| lo - pad + (hi - lo + 2.0 * pad) * i as f64 / (points - 1) as f64).collect::<Vec<f64>>()
        };
        let alpha = span([0.0, fin.0, teach.0]);
        let beta = span([0.0, fin.1, teach.1]);
        let shapes: Vec<Vec<usize>> = theta0.iter().map(|t| t.dims().to_vec()).collect();
        let mut loss = vec![vec![0.0; points]; points];
        for (i, &a) in alpha.iter().enumerate() {
            for (j, &b) in beta.iter().enumerate() {
                let w: Vec<f64> = (0..w0.len()).map(|p| w0[p] + a * e1[p] + b * e2[p]).collect();
                let mut offset = 0;
                let mut tensors = Vec::new();
                for shape in &shapes {
                    let len: usize = shape.iter().product();
                    let part: Vec<f32> = w[offset..offset + len].iter().map(|&v| v as f32).collect();
                    tensors.push(Tensor::from_vec(part, shape.as_slice(), &candle_core::Device::Cpu)?);
                    offset += len;
                }
                probe.set_weights(&tensors)?;
                let p = distill::tempered(probe.predict_proba(x.view())?.view(), t);
                loss[i][j] = metrics::kl_rows(target.view(), p.view()).unwrap_or(f64::NAN);
            }
        }
        Ok(LossSurface { cell_index: 0, seed: 0, arm: method::KD.name().into(), alpha, beta, loss, initial: (0.0, 0.0), fin, teacher: teach })
    }
}

/// Orthonormal e1 ∥ u and e2 ⟂ e1 in span(u, v), with the coordinates of u and v in that
/// basis. A degenerate v (parallel to u) gets an arbitrary orthogonal e2.
pub fn plane_basis(u: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>, (f64, f64), (f64, f64)) {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let norm_u = dot(u, u).sqrt().max(1e-12);
    let e1: Vec<f64> = u.iter().map(|x| x / norm_u).collect();
    let along = dot(v, &e1);
    let mut rest: Vec<f64> = v.iter().zip(&e1).map(|(x, e)| x - along * e).collect();
    let mut norm_rest = dot(&rest, &rest).sqrt();
    if norm_rest < 1e-12 {
        // Any unit vector orthogonal to e1: a coordinate axis, orthogonalised.
        let axis = e1.iter().enumerate().min_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map_or(0, |(i, _)| i);
        rest = e1.iter().enumerate().map(|(i, e)| f64::from(u8::from(i == axis)) - e1[axis] * e).collect();
        norm_rest = dot(&rest, &rest).sqrt().max(1e-12);
        let e2: Vec<f64> = rest.iter().map(|x| x / norm_rest).collect();
        return (e1, e2, (norm_u, 0.0), (along, 0.0));
    }
    let e2: Vec<f64> = rest.iter().map(|x| x / norm_rest).collect();
    (e1, e2, (norm_u, 0.0), (along, norm_rest))
}

/// λ·θ_teacher + (1 − λ)·θ_random, θ_random the student's own seeded initialisation (the
/// teacher's first member, which must have the student's architecture).
fn interpolated_start(spec: &NeuralSpec, teacher: &NetworkEnsemble, lambda: f64, rows: Rows, k: usize, seed: u64) -> Result<Vec<Tensor>, ModelError> {
    let random = student::initial_network(spec, rows, k, seed)?.weights()?;
    let member = teacher.members.first().ok_or_else(|| ModelError::Fit { model: "init_lambda", reason: "the teacher has no members".into() })?;
    let theta_t = member.weights()?;
    if random.len() != theta_t.len() || random.iter().zip(&theta_t).any(|(a, b)| a.dims() != b.dims()) {
        return Err(ModelError::Fit { model: "init_lambda", reason: "needs the student's architecture to equal the teacher's".into() });
    }
    random.iter().zip(&theta_t).map(|(r, t)| Ok(((t * lambda)? + (r * (1.0 - lambda))?)?)).collect()
}

/// Metrics of the teacher row from its members' attention: the IoU of their class-activation
/// maps on the clean test images (the released sum-over-classes map, and the predicted-class
/// map), on the test images under the student's augmentation, and how far the sum-CAM
/// direction Σ_c w_c moved from its initial value.
pub fn teacher_attention(spec: &FidelitySpec, teacher: &NetworkEnsemble, teacher_spec: &crate::models::ensemble::NetworkTeacherSpec, test: &Dataset, student: &NeuralSpec, seed_value: u64, teacher_seed: u64) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let cnns: Vec<&crate::models::cnn::Cnn> = teacher
        .members
        .iter()
        .filter_map(|n| match &n.architecture {
            Architecture::Cnn(c) => Some(c),
            Architecture::Mlp(_) => None,
        })
        .collect();
    if cnns.len() != teacher.members.len() {
        return m;
    }
    let threshold = spec.cam_threshold;
    if cnns.len() >= 2 {
        let iou = |x: ArrayView2<f64>, kind: attention::CamKind| -> Option<f64> {
            let masks: Vec<Vec<Vec<bool>>> = cnns.iter().map(|c| attention::attention_masks(c, x, kind, threshold).ok()).collect::<Option<_>>()?;
            attention::pooled_iou(&masks, attention::IOU_BATCH).ok()
        };
        if let Some(v) = iou(test.x.view(), attention::CamKind::SumOfClasses) {
            m.insert("teacher_iou_sumcam".into(), v);
        }
        if let Some(v) = iou(test.x.view(), attention::CamKind::PredictedClass) {
            m.insert("teacher_iou_classcam".into(), v);
        }
        if let (Some(a), Some((h, w))) = (&student.augment, test.image_shape) {
            if !a.is_identity() {
                let x = a.apply(test.x.view(), h, w, seed::derive(seed_value, &["fidelity", "test"])).x;
                if let Some(v) = iou(x.view(), attention::CamKind::SumOfClasses) {
                    m.insert("teacher_iou_sumcam_augmented".into(), v);
                }
            }
        }
    }
    // Σ_c w_c gets no gradient from CE or KD (Σ_c (p_c − y_c) = 0): only weight decay or an
    // adaptive optimiser moves it.
    let mut drift = Vec::new();
    for (i, c) in cnns.iter().enumerate() {
        let member_seed = seed::derive(teacher_seed, &["member", &i.to_string()]);
        let spec = teacher_spec.member_spec(i);
        let Ok(init) = student::initial_network(&spec, test.rows(), c.shape.n_classes, member_seed) else { continue };
        let Architecture::Cnn(c0) = &init.architecture else { continue };
        if let (Ok(a), Ok(b)) = (attention::class_sum_direction(c), attention::class_sum_direction(c0)) {
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
            let base = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-12);
            drift.push(diff / base);
        }
    }
    if !drift.is_empty() {
        m.insert("sumcam_direction_drift".into(), drift.iter().sum::<f64>() / drift.len() as f64);
    }
    m
}

impl Protocol for Unit<'_> {
    fn teacher_metrics(&self) -> BTreeMap<String, f64> {
        match self.teacher_spec {
            Some(teacher_spec) if self.spec.attention => teacher_attention(self.spec, &self.teachers.main, teacher_spec, self.test, self.student, self.seed, self.teacher_seed),
            _ => BTreeMap::new(),
        }
    }

    fn fit_arm(&self, arm: Arm) -> Result<ArmFit, ArmError> {
        let fitted = self.train_arm(arm, self.first_seed)?;
        Ok(ArmFit { metrics: fitted.metrics, surface: fitted.surface, ..ArmFit::new(FittedStudent::Network(fitted.network)) })
    }
}

/// Soft cross-entropy against a teacher that labels each training batch as the student sees
/// it: on an augmented (or mixed) batch the teacher's tempered probabilities of the augmented
/// rows replace the stored targets (Stanton et al.'s distillation stream).
pub struct OnlineSoftCrossEntropy {
    temperature: f64,
    /// The teacher's tempered probabilities of the clean stream rows.
    targets: Tensor,
    teacher: Arc<dyn Teacher>,
}

impl OnlineSoftCrossEntropy {
    pub fn new(temperature: f64, targets: ArrayView2<f64>, teacher: Arc<dyn Teacher>) -> OnlineSoftCrossEntropy {
        OnlineSoftCrossEntropy { temperature, targets: target_tensor(targets), teacher }
    }
}

impl BatchLoss for OnlineSoftCrossEntropy {
    fn describe(&self) -> String {
        format!("soft cross-entropy against the teacher on the batch as seen, T = {}", self.temperature)
    }

    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let targets = if batch.augmented {
            let p = self.teacher.predict_proba(from_tensor(batch.x).map_err(|e| candle_core::Error::Msg(e.to_string()))?.view());
            to_tensor(distill::tempered(p.view(), self.temperature).view())?
        } else {
            batch.rows_of(&self.targets)?
        };
        distillation_loss(batch.logits, &targets, self.temperature)
    }
}

/// Logit matching against a teacher that labels each training batch as the student sees it:
/// ‖(z_s − z̄_s) − (z_t − z̄_t)‖² / k, batch mean (the squared-error logit loss of Kim et al.
/// 2021 with PyTorch's mean reduction, centred because a softmax teacher's logits are defined
/// only up to a shift per row). Its gradient, (2/k)·[(z_s − z̄_s) − (z_t − z̄_t)], is twice the
/// τ → ∞ limit of τ²·KL's.
pub struct OnlineLogitMatching {
    /// The teacher's centred logits of the clean stream rows.
    targets: Tensor,
    teacher: Arc<NetworkEnsemble>,
}

impl OnlineLogitMatching {
    pub fn new(teacher: Arc<NetworkEnsemble>, stream: ArrayView2<f64>) -> Result<OnlineLogitMatching, ModelError> {
        let targets = target_tensor(centred(teacher.try_predict_logits(stream)?).view());
        Ok(OnlineLogitMatching { targets, teacher })
    }
}

/// Each row minus its mean.
fn centred(mut z: Array2<f64>) -> Array2<f64> {
    for mut row in z.rows_mut() {
        let mean = row.mean().unwrap_or(0.0);
        row.mapv_inplace(|v| v - mean);
    }
    z
}

impl BatchLoss for OnlineLogitMatching {
    fn describe(&self) -> String {
        "mean squared error of the centred logits against the teacher on the batch as seen".into()
    }

    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let targets = if batch.augmented {
            let x = from_tensor(batch.x).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            let z = self.teacher.try_predict_logits(x.view()).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            to_tensor(centred(z).view())?
        } else {
            batch.rows_of(&self.targets)?
        };
        let z = batch.logits.broadcast_sub(&batch.logits.mean_keepdim(candle_core::D::Minus1)?)?;
        (z - targets)?.sqr()?.mean_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_basis_is_orthonormal_and_places_the_points() {
        let u = [3.0, 0.0, 4.0];
        let v = [1.0, 2.0, 0.0];
        let (e1, e2, fin, teach) = plane_basis(&u, &v);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        assert!((dot(&e1, &e1) - 1.0).abs() < 1e-12 && (dot(&e2, &e2) - 1.0).abs() < 1e-12 && dot(&e1, &e2).abs() < 1e-12);
        assert!((fin.0 - 5.0).abs() < 1e-12 && fin.1 == 0.0);
        // v is recovered from its coordinates.
        for i in 0..3 {
            assert!((teach.0 * e1[i] + teach.1 * e2[i] - v[i]).abs() < 1e-12);
        }
        let (_, e2, _, teach) = plane_basis(&u, &[6.0, 0.0, 8.0]);
        assert!((dot(&e2, &e2) - 1.0).abs() < 1e-9 && teach == (10.0, 0.0));
    }

    #[test]
    fn logit_matching_ignores_a_shift_and_sees_the_augmented_batch() {
        use crate::models::ensemble::{NetworkTeacherSpec, Reduction};
        use crate::models::student::StudentKind;
        let (x, y) = crate::models::cnn::stripes(24, 6, 7);
        let network = NeuralSpec { kind: StudentKind::Cnn, widths: Some(vec![4]), epochs: 2, patience: 2, ..NeuralSpec::default() };
        let spec = NetworkTeacherSpec { members: 2, reduction: Reduction::MeanLogits, member_augment: None, network };
        let teacher = Arc::new(spec.fit(crate::data::Rows::new(x.view(), Some((6, 6))), &y, 2, 3).unwrap());
        let loss = OnlineLogitMatching::new(teacher.clone(), x.view()).unwrap();
        let z = teacher.try_predict_logits(x.view()).unwrap();
        let rows = Tensor::arange(0u32, x.nrows() as u32, &candle_core::Device::Cpu).unwrap();
        let x_t = to_tensor(x.view()).unwrap();
        let value = |logits: Array2<f64>, augmented: bool| -> f64 {
            let logits = to_tensor(logits.view()).unwrap();
            let batch = Batch { x: &x_t, augmented, logits: &logits, activations: None, rows: &rows, mix: None };
            loss.loss(&batch).unwrap().to_scalar::<f32>().unwrap() as f64
        };
        // The teacher's own logits plus a per-row shift: no loss, from stored or fresh targets.
        let shifted = &z + &Array2::from_shape_fn(z.dim(), |(i, _)| i as f64);
        assert!(value(shifted.clone(), false) < 1e-8 && value(shifted, true) < 1e-8);
        // Moving one logit of every row by 1 costs ((1 − 1/k)² + (k − 1)/k²) / k = 1/4 per row,
        // k = 2.
        let mut moved = z.clone();
        moved.column_mut(0).mapv_inplace(|v| v + 1.0);
        assert!((value(moved, true) - 0.25).abs() < 1e-4);
    }

    #[test]
    fn extra_rows_are_bounded_and_lambda_a_fraction() {
        let spec = FidelitySpec { extra: Extra::Noise, n_extra: crate::data::MAX_ROWS + 1, init_lambda: None, loss_surface: false, surface_points: 15, attention: false, cam_threshold: 0.4 };
        assert_eq!(spec.check().unwrap_err().0, "n_extra");
        let spec = FidelitySpec { n_extra: 0, init_lambda: Some(1.5), ..spec };
        assert_eq!(spec.check().unwrap_err().0, "init_lambda");
    }
}
