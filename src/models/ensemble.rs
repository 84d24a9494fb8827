//! Network teachers (`kind = "cnn"` or `"mlp"`): `members` networks trained on labels, each
//! with its own derived seed, reduced to one prediction by a stated [`Reduction`].
//!
//! A member is exactly a student of the same kind trained on one-hot labels (soft
//! cross-entropy at T = 1) with early stopping on its own validation split of the teacher's
//! training rows: the same network, optimiser and schedule keys as a student, plus `members`,
//! `reduction` and `member_augment` (one augmentation per member, for teacher pairs trained
//! under different augmentation).

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::loss::LossTerm;
use super::student::{self, NeuralSpec, Network, StudentKind};
use super::{Result, Teacher};
use crate::data::Rows;
use crate::data::validation_split;
use crate::seed;

/// How an ensemble's members are combined.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// softmax of the members' mean logits, (1/m) Σ z_i.
    MeanLogits,
    /// The members' mean probabilities, (1/m) Σ softmax(z_i) (the usual deep-ensemble
    /// predictive distribution).
    #[default]
    MeanProbabilities,
}

fn default_members() -> usize {
    1
}

/// `kind = "cnn"` or `"mlp"` in `[teacher]`: the keys of a student of that kind, plus
/// `members`, `reduction` and `member_augment`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkTeacherSpec {
    pub members: usize,
    pub reduction: Reduction,
    /// Member i trains under `member_augment[i]` instead of the network's `augment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_augment: Option<Vec<crate::augment::AugmentSpec>>,
    /// Serialised nested (for the config hash), so its `kind` does not repeat the teacher's.
    pub network: NeuralSpec,
}

impl<'de> Deserialize<'de> for NetworkTeacherSpec {
    /// `members` and `reduction` are taken out first and the other keys read as a `cnn`
    /// student's, so an unknown key is reported as for a student (serde cannot deny unknown
    /// fields beside a flattened struct).
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default = "default_members")]
            members: usize,
            #[serde(default)]
            reduction: Reduction,
            #[serde(default)]
            member_augment: Option<Vec<crate::augment::AugmentSpec>>,
            #[serde(flatten)]
            rest: toml::Table,
        }
        let raw = Raw::deserialize(de)?;
        let mut network = NeuralSpec::deserialize(toml::Value::Table(raw.rest)).map_err(|e| serde::de::Error::custom(e.message().trim()))?;
        network.kind = StudentKind::Cnn;
        Ok(NetworkTeacherSpec { members: raw.members, reduction: raw.reduction, member_augment: raw.member_augment, network })
    }
}

impl NetworkTeacherSpec {
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.members == 0 || self.members > 1000 {
            return Err(("members", format!("must be between 1 and 1000, got {}", self.members)));
        }
        if let Some(list) = &self.member_augment {
            if list.len() != self.members {
                return Err(("member_augment", format!("must list one augmentation per member ({}), got {}", self.members, list.len())));
            }
            for a in list {
                a.check().map_err(|(key, message)| ("member_augment", format!("`{key}` {message}")))?;
            }
        }
        if self.network.kind == StudentKind::Linear {
            return Err(("kind", "a network teacher is \"cnn\" or \"mlp\"".into()));
        }
        self.network.check()
    }

    /// The network of member i (its own augmentation, when `member_augment` is set).
    pub fn member_spec(&self, i: usize) -> NeuralSpec {
        let mut spec = self.network.clone();
        if let Some(list) = &self.member_augment {
            spec.augment = Some(list[i].clone());
        }
        spec
    }

    /// Trains the members on (rows, y); member i uses seed derive(seed, ["member", i]).
    pub fn fit(&self, rows: Rows, y: &[usize], n_classes: usize, seed: u64) -> Result<NetworkEnsemble> {
        self.fit_members(rows, y, n_classes, seed, false)
    }

    /// [`Self::fit`], each member keeping its weights after every epoch in [`Network::route`]
    /// (what route-constrained distillation follows).
    pub fn fit_keeping_route(&self, rows: Rows, y: &[usize], n_classes: usize, seed: u64) -> Result<NetworkEnsemble> {
        self.fit_members(rows, y, n_classes, seed, true)
    }

    fn fit_members(&self, rows: Rows, y: &[usize], n_classes: usize, seed: u64, keep_route: bool) -> Result<NetworkEnsemble> {
        let x = rows.x;
        let members = (0..self.members)
            .map(|i| {
                let spec = self.member_spec(i);
                let member_seed = seed::derive(seed, &["member", &i.to_string()]);
                let (fit, val) = validation_split(y.len(), spec.validation_fraction, seed::derive(member_seed, &["split"]));
                let y_fit: Vec<usize> = fit.iter().map(|&r| y[r]).collect();
                let y_val: Vec<usize> = val.iter().map(|&r| y[r]).collect();
                let terms = [LossTerm::soft_ce(1.0, 1.0, student::one_hot(&y_fit, n_classes))];
                let x_fit = x.select(Axis(0), &fit);
                let training = student::Training { keep_route, ..student::Training::default() };
                student::train_with(&spec, rows.with(x_fit.view()), &terms, x.select(Axis(0), &val).view(), &y_val, n_classes, member_seed, training)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NetworkEnsemble { members, reduction: self.reduction })
    }
}

/// Trained members and their reduction.
pub struct NetworkEnsemble {
    pub members: Vec<Network>,
    pub reduction: Reduction,
}

/// Row-wise softmax of f64 logits.
fn softmax_rows(mut z: Array2<f64>) -> Array2<f64> {
    for mut row in z.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    z
}

impl NetworkEnsemble {
    /// The ensemble's logits: the members' mean logits, or, for a probability average, its
    /// log (floored at the smallest positive f64), whose softmax is that average.
    pub fn try_predict_logits(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        match self.reduction {
            Reduction::MeanLogits => {
                let mut acc: Option<Array2<f64>> = None;
                for member in &self.members {
                    let z = member.predict_logits(x)?;
                    acc = Some(match acc {
                        Some(a) => a + z,
                        None => z,
                    });
                }
                Ok(acc.expect("an ensemble has at least one member") / self.members.len() as f64)
            }
            Reduction::MeanProbabilities => Ok(self.try_predict_proba(x)?.mapv(|p| p.max(f64::MIN_POSITIVE).ln())),
        }
    }

    pub fn try_predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let m = self.members.len() as f64;
        let mut acc: Option<Array2<f64>> = None;
        for member in &self.members {
            let z = member.predict_logits(x)?;
            let part = match self.reduction {
                Reduction::MeanLogits => z,
                Reduction::MeanProbabilities => softmax_rows(z),
            };
            acc = Some(match acc {
                Some(a) => a + part,
                None => part,
            });
        }
        let mean = acc.expect("an ensemble has at least one member") / m;
        Ok(match self.reduction {
            Reduction::MeanLogits => softmax_rows(mean),
            Reduction::MeanProbabilities => mean,
        })
    }
}

impl Teacher for NetworkEnsemble {
    /// A candle failure (not expected once the fit succeeded) gives NaN rows, which the runner
    /// turns into failed rows rather than a panic.
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let k = self.members.first().map_or(1, Network::n_classes);
        self.try_predict_proba(x).unwrap_or_else(|_| Array2::from_elem((x.nrows(), k), f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halves(n: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        crate::models::cnn::stripes(n, 6, seed)
    }

    fn spec(members: usize, reduction: Reduction) -> NetworkTeacherSpec {
        let network = NeuralSpec { kind: StudentKind::Cnn, widths: Some(vec![4, 8]), epochs: 5, patience: 5, ..NeuralSpec::default() };
        NetworkTeacherSpec { members, reduction, member_augment: None, network }
    }

    #[test]
    fn the_logits_softmax_to_the_probabilities() {
        let (x, y) = halves(40, 2);
        for reduction in [Reduction::MeanLogits, Reduction::MeanProbabilities] {
            let ensemble = spec(2, reduction).fit(Rows::new(x.view(), Some((6, 6))), &y, 2, 5).unwrap();
            let z = ensemble.try_predict_logits(x.view()).unwrap();
            let p = softmax_rows(z);
            let diff = (&p - &ensemble.predict_proba(x.view())).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
            assert!(diff < 1e-12, "{reduction:?}: {diff}");
        }
    }

    #[test]
    fn an_ensemble_of_identical_members_equals_the_member() {
        let (x, y) = halves(60, 1);
        for reduction in [Reduction::MeanLogits, Reduction::MeanProbabilities] {
            let single = spec(1, reduction).fit(Rows::new(x.view(), Some((6, 6))), &y, 2, 3).unwrap();
            let member = single.members.into_iter().next().unwrap();
            let p_member = member.predict_proba(x.view()).unwrap();
            // Three bit-identical members: the same seed trains the same network.
            let copies = (0..3).map(|_| spec(1, reduction).fit(Rows::new(x.view(), Some((6, 6))), &y, 2, 3).unwrap().members.remove(0)).collect();
            let ensemble = NetworkEnsemble { members: copies, reduction };
            let p = ensemble.predict_proba(x.view());
            let diff = (&p - &p_member).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
            // f32 softmax (the member) against f64 softmax of its f32 logits (the ensemble).
            assert!(diff < 1e-6, "{reduction:?}: {diff}");
            for row in p.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn reductions_differ_in_general_and_members_have_their_own_seeds() {
        let (x, y) = halves(60, 2);
        let a = spec(3, Reduction::MeanLogits).fit(Rows::new(x.view(), Some((6, 6))), &y, 2, 4).unwrap();
        let z0 = a.members[0].predict_logits(x.view()).unwrap();
        let z1 = a.members[1].predict_logits(x.view()).unwrap();
        assert_ne!(z0, z1, "members must differ");
        let logits = a.predict_proba(x.view());
        let probs = NetworkEnsemble { members: a.members, reduction: Reduction::MeanProbabilities }.predict_proba(x.view());
        assert_ne!(logits, probs);
    }

    #[test]
    fn the_serialised_teacher_nests_its_network() {
        let json = serde_json::to_string(&crate::models::TeacherSpec::Cnn(spec(3, Reduction::MeanLogits))).unwrap();
        assert_eq!(json.matches("\"kind\":\"cnn\"").count(), 2, "{json}"); // the teacher's and its network's
        assert!(json.starts_with("{\"kind\":\"cnn\",\"members\":3,\"reduction\":\"mean-logits\",\"network\":{"), "{json}");
    }

    #[test]
    fn a_cnn_without_an_image_shape_is_an_error() {
        let (x, y) = halves(20, 3);
        let err = spec(1, Reduction::MeanLogits).fit(Rows::tabular(x.view()), &y, 2, 1).err().unwrap().to_string();
        assert!(err.contains("needs image data"), "{err}");
    }
}
