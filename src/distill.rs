//! Distillation arms: how a student's training targets are built from labels and a teacher.
//!
//! Every arm of a cell sees the same data split, the same teacher and the same student
//! initialisation for a given seed, so arms compare paired by seed. Adding an arm is a change
//! here only: a variant of [`Arm`], its entry in [`Arm::ALL`], and its [`Arm::loss_terms`].

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::models::student::{one_hot, LossTerm};

/// The `[distill]` section: temperature and the weight of the soft-target term.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// Softmax temperature T of the teacher targets and the student's soft term.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight α of the soft term; the label term gets 1 − α.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_alpha() -> f64 {
    1.0
}

impl Default for DistillSpec {
    fn default() -> Self {
        DistillSpec { temperature: default_temperature(), alpha: default_alpha() }
    }
}

impl DistillSpec {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(("temperature", format!("must be finite and > 0, got {}", self.temperature)));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(("alpha", format!("must be in [0, 1], got {}", self.alpha)));
        }
        Ok(())
    }
}

/// A distillation recipe a study can name in `arms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// No distillation: cross-entropy on the labels.
    Labels,
    /// Hinton KD from a teacher fit on the same training points:
    /// (1 − α)·CE(y, softmax z) + α·T²·CE(softmax(log p̂ / T), softmax(z / T)).
    Kd,
}

impl Arm {
    pub const ALL: &'static [Arm] = &[Arm::Labels, Arm::Kd];

    pub fn name(self) -> &'static str {
        match self {
            Arm::Labels => "labels",
            Arm::Kd => "kd",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Arm::Labels => "no distillation: cross-entropy on the training labels",
            Arm::Kd => "Hinton KD: (1-α)·CE(labels) + α·T²·CE(teacher at T, student at T); teacher fit on the same training points",
        }
    }

    pub fn from_name(name: &str) -> Option<Arm> {
        Arm::ALL.iter().copied().find(|a| a.name() == name)
    }

    pub fn names() -> Vec<&'static str> {
        Arm::ALL.iter().map(|a| a.name()).collect()
    }

    /// The student's loss terms on its fit rows, given their labels and the teacher's
    /// probabilities on them.
    pub fn loss_terms(self, y_fit: &[usize], teacher_fit: ArrayView2<f64>, n_classes: usize, spec: &DistillSpec) -> Vec<LossTerm> {
        let labels = LossTerm { weight: 1.0, temperature: 1.0, targets: one_hot(y_fit, n_classes) };
        match self {
            Arm::Labels => vec![labels],
            Arm::Kd => {
                let soft = LossTerm {
                    weight: spec.alpha,
                    temperature: spec.temperature,
                    targets: tempered(teacher_fit, spec.temperature),
                };
                if spec.alpha >= 1.0 {
                    vec![soft]
                } else {
                    vec![LossTerm { weight: 1.0 - spec.alpha, ..labels }, soft]
                }
            }
        }
    }
}

/// softmax(log p / T) row-wise, computed as p^(1/T) / Σ p^(1/T) so zero probabilities stay 0.
pub fn tempered(p: ArrayView2<f64>, temperature: f64) -> Array2<f64> {
    let mut out = p.mapv(|v| v.max(0.0).powf(1.0 / temperature));
    for mut row in out.rows_mut() {
        let s = row.sum();
        if s > 0.0 {
            row.mapv_inplace(|v| v / s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tempered_at_one_is_identity_and_flattens_with_temperature() {
        let p = array![[0.7, 0.2, 0.1, 0.0]];
        let same = tempered(p.view(), 1.0);
        assert!(same.iter().zip(p.iter()).all(|(a, b)| (a - b).abs() < 1e-15));
        let t = tempered(p.view(), 4.0);
        assert!((t.sum() - 1.0).abs() < 1e-12);
        assert!(t[[0, 0]] < 0.7 && t[[0, 2]] > 0.1 && t[[0, 3]] == 0.0);
    }

    #[test]
    fn arm_names_round_trip() {
        for &arm in Arm::ALL {
            assert_eq!(Arm::from_name(arm.name()), Some(arm));
        }
        assert_eq!(Arm::from_name("kdd"), None);
    }

    #[test]
    fn kd_with_alpha_mixes_label_and_soft_terms() {
        let spec = DistillSpec { temperature: 2.0, alpha: 0.25 };
        let terms = Arm::Kd.loss_terms(&[1], array![[0.2, 0.8]].view(), 2, &spec);
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].weight, 0.75);
        assert_eq!(terms[1].temperature, 2.0);
    }
}
