//! The γ-corrected cross-entropy as a training loss (the semiparametric paper's loss
//! correction for networks): T² · (CE(w, softmax(z / T)) + γ · C(z)), w = softmax(log p̂ / T),
//! with the first-order correction C(z) = ⟨∇_p CE_T, y − p̂⟩ of [`super::ce_correction`].

use candle_core::{Device, Tensor, D};
use ndarray::{Array1, ArrayView2};

use crate::models::loss::{target_tensor, Batch, BatchLoss};

/// The corrected loss against per-row teacher probabilities p̂ (clipped below at the clip
/// used for the correction's 1/p̂), labels and per-row γ.
pub struct CorrectedCrossEntropy {
    pub temperature: f64,
    p_hat: Tensor,
    labels: Tensor,
    gamma: Tensor,
}

impl CorrectedCrossEntropy {
    pub fn new(temperature: f64, p_hat: ArrayView2<f64>, labels: ArrayView2<f64>, gamma: &Array1<f64>) -> CorrectedCrossEntropy {
        let gamma = Tensor::from_vec(gamma.iter().map(|&v| v as f32).collect::<Vec<_>>(), (gamma.len(), 1), &Device::Cpu).expect("a column converts to a tensor");
        CorrectedCrossEntropy { temperature, p_hat: target_tensor(p_hat), labels: target_tensor(labels), gamma }
    }
}

impl BatchLoss for CorrectedCrossEntropy {
    fn describe(&self) -> String {
        format!("γ-corrected cross-entropy, T = {}", self.temperature)
    }

    fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let t = self.temperature;
        let (p_hat, labels, gamma) = (batch.rows_of(&self.p_hat)?, batch.rows_of(&self.labels)?, batch.rows_of(&self.gamma)?);
        corrected_cross_entropy(batch.logits, &p_hat, &labels, &gamma, t)? * (t * t)
    }
}

/// Batch mean of CE(w, softmax(z/T)) + γ·C(z), w = softmax(log p̂ / T) (see
/// [`super::ce_correction`] for C and its derivation).
fn corrected_cross_entropy(logits: &Tensor, p_hat: &Tensor, labels: &Tensor, gamma: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let log_q = candle_nn::ops::log_softmax(&(logits / temperature)?, D::Minus1)?; // (b, k)
    let w = {
        let powered = p_hat.powf(1.0 / temperature)?;
        powered.broadcast_div(&powered.sum_keepdim(D::Minus1)?)?
    };
    let u = ((labels / p_hat)? - 1.0)?.mul(&w)?; // (b, k)
    let w_log_q = w.mul(&log_q)?.sum_keepdim(D::Minus1)?; // (b, 1)
    let c = ((u.sum_keepdim(D::Minus1)? * &w_log_q)? - u.mul(&log_q)?.sum_keepdim(D::Minus1)?)?; // (b, 1)
    let c = ((c / temperature)? * gamma)?;
    let ce = w_log_q.neg()?; // (b, 1)
    (ce + c)?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::loss::LossTerm;
    use crate::models::student::test_support::cnn_spec;
    use crate::models::student::{one_hot, train};

    /// The stripes task of the student tests (a Bayes error far below 1e-6 per image): a CNN
    /// trained on the corrected loss classifies 90 % of 400 test images only if it learned the
    /// task; at chance that has probability below 1e-60, so this fails by chance far less
    /// often than 1 in 1000.
    #[test]
    fn a_cnn_learns_a_separable_image_task_with_the_corrected_loss() {
        let (x, y) = crate::models::cnn::stripes(200, 6, 1);
        let (x_val, y_val) = crate::models::cnn::stripes(60, 6, 2);
        let (x_test, y_test) = crate::models::cnn::stripes(400, 6, 3);
        let onehot = one_hot(&y, 2);
        let p_hat = onehot.mapv(|p| 0.8 * p + 0.1);
        let terms = [LossTerm::new(1.0, CorrectedCrossEntropy::new(1.0, p_hat.view(), onehot.view(), &Array1::from_elem(y.len(), 0.5)))];
        let net = train(&cnn_spec(), crate::data::Rows::new(x.view(), Some((6, 6))), &terms, x_val.view(), &y_val, 2, 5).unwrap();
        let acc = crate::metrics::accuracy(net.predict_proba(x_test.view()).unwrap().view(), &y_test).unwrap();
        assert!(acc > 0.9, "accuracy {acc}");
    }
}
