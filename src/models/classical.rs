//! Classical teachers served by linfa: multinomial logistic regression, Gaussian naive Bayes,
//! and k-nearest-neighbour class frequencies on a linfa-nn k-d tree.
//!
//! linfa returns probability columns for the classes it saw, in sorted order; [`spread`] puts
//! them back into kdlab's fixed 0..k columns so a class missing from a training set gets
//! probability 0 instead of shifting the columns.

use linfa::prelude::*;
use linfa::Dataset as LinfaDataset;
use linfa_bayes::{GaussianNb, NaiveBayes as _};
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use linfa_nn::{distance::L2Dist, CommonNearestNeighbour, NearestNeighbour};
use ndarray::{Array1, Array2, ArrayView2};

use super::{ModelError, Result, Teacher};

/// Copies `columns` (one per class in `classes`) into an n × k matrix in class order.
fn spread(columns: &Array2<f64>, classes: &[usize], n_classes: usize) -> Array2<f64> {
    let mut out = Array2::zeros((columns.nrows(), n_classes));
    for (j, &c) in classes.iter().enumerate() {
        out.column_mut(c).assign(&columns.column(j));
    }
    out
}

pub struct Logistic {
    model: MultiFittedLogisticRegression<f64, usize>,
    n_classes: usize,
}

impl Logistic {
    pub fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, alpha: f64, max_iterations: u64) -> Result<Self> {
        let data = LinfaDataset::new(x.to_owned(), Array1::from(y.to_vec()));
        let model = MultiLogisticRegression::default()
            .alpha(alpha)
            .max_iterations(max_iterations)
            .fit(&data)
            .map_err(|e| ModelError::Fit { model: "logistic", reason: e.to_string() })?;
        Ok(Logistic { model, n_classes })
    }
}

impl Teacher for Logistic {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let p = self.model.predict_probabilities(&x);
        spread(&p, self.model.classes(), self.n_classes)
    }
}

pub struct NaiveBayes {
    model: GaussianNb<f64, usize>,
    n_classes: usize,
}

impl NaiveBayes {
    pub fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, var_smoothing: f64) -> Result<Self> {
        let data = LinfaDataset::new(x.to_owned(), Array1::from(y.to_vec()));
        let model = GaussianNb::params()
            .var_smoothing(var_smoothing)
            .fit(&data)
            .map_err(|e| ModelError::Fit { model: "naive-bayes", reason: e.to_string() })?;
        Ok(NaiveBayes { model, n_classes })
    }
}

impl Teacher for NaiveBayes {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let (p, classes) = self.model.predict_proba(x);
        let classes: Vec<usize> = classes.into_iter().copied().collect();
        spread(&p, &classes, self.n_classes)
    }
}

/// k-NN probabilities: the fraction of the k nearest training points in each class.
pub struct Knn {
    x: Array2<f64>,
    y: Vec<usize>,
    n_classes: usize,
    k: usize,
}

impl Knn {
    pub fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, k: usize) -> Result<Self> {
        if x.nrows() == 0 {
            return Err(ModelError::Fit { model: "knn", reason: "no training rows".into() });
        }
        Ok(Knn { x: x.to_owned(), y: y.to_vec(), n_classes, k: k.min(x.nrows()) })
    }
}

impl Teacher for Knn {
    fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        // The index borrows the training rows, so it is built per call rather than stored.
        let index = CommonNearestNeighbour::KdTree.from_batch(&self.x, L2Dist).expect("training rows are non-empty");
        let mut out = Array2::zeros((x.nrows(), self.n_classes));
        for (i, row) in x.rows().into_iter().enumerate() {
            let neighbours = index.k_nearest(row, self.k).expect("query has the training dimension");
            for (_, j) in &neighbours {
                out[[i, self.y[*j]]] += 1.0 / neighbours.len() as f64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{gaussian_mixture::GaussianMixture, Problem};

    fn rows_sum_to_one(p: &Array2<f64>) {
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9, "{row}");
        }
    }

    #[test]
    fn classical_teachers_give_probabilities_that_beat_chance() {
        let problem = GaussianMixture { dim: 2, radius: 1.0 };
        let train = problem.sample(400, 1);
        let test = problem.sample(400, 2);
        let teachers: Vec<Box<dyn Teacher>> = vec![
            Box::new(Logistic::fit(train.x.view(), &train.y, 2, 1e-3, 100).unwrap()),
            Box::new(NaiveBayes::fit(train.x.view(), &train.y, 2, 1e-9).unwrap()),
            Box::new(Knn::fit(train.x.view(), &train.y, 2, 15).unwrap()),
        ];
        for t in teachers {
            let p = t.predict_proba(test.x.view());
            rows_sum_to_one(&p);
            let acc = crate::metrics::accuracy(p.view(), &test.y).unwrap();
            // Bayes accuracy here is Φ(√2·1) ≈ 0.92; 0.8 leaves a wide margin for n = 400.
            assert!(acc > 0.8, "accuracy {acc}");
        }
    }

    #[test]
    fn one_nn_memorises_its_training_points() {
        let problem = GaussianMixture { dim: 2, radius: 0.3 };
        let train = problem.sample(200, 3);
        let p = Knn::fit(train.x.view(), &train.y, 2, 1).unwrap().predict_proba(train.x.view());
        assert_eq!(crate::metrics::accuracy(p.view(), &train.y).unwrap(), 1.0);
    }

    #[test]
    fn missing_class_gets_a_zero_column() {
        let p = spread(&ndarray::array![[0.3, 0.7]], &[0, 2], 3);
        assert_eq!(p, ndarray::array![[0.3, 0.0, 0.7]]);
    }
}
