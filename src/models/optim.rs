//! Optimisers and learning-rate schedules of the network students and teachers.
//!
//! - `adamw` (the default): candle's AdamW, decoupled weight decay (Loshchilov & Hutter).
//! - `sgd-nesterov`: SGD with Nesterov momentum μ and L2 weight decay λ folded into the
//!   gradient, PyTorch's `SGD(nesterov=True)` update:
//!   g = ∇f(θ) + λθ;  b ← μb + g (b₀ = 0);  θ ← θ − η(g + μb).
//!
//! Schedules give the learning rate of step t of T planned steps (epochs × batches per epoch;
//! early stopping may end training before T):
//! - `constant` (the default): η₀.
//! - `cosine`: η_min + (η₀ − η_min)(1 + cos(πt/T))/2, from η₀ at t = 0 towards η_min.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    #[default]
    #[serde(rename = "adamw")]
    AdamW,
    #[serde(rename = "sgd-nesterov")]
    SgdNesterov,
}

impl OptimizerKind {
    pub fn is_default(&self) -> bool {
        *self == OptimizerKind::default()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    #[default]
    Constant,
    Cosine,
}

impl Schedule {
    pub fn is_default(&self) -> bool {
        *self == Schedule::default()
    }

    /// The learning rate of step `t` (0-based) of `total` steps.
    pub fn learning_rate(&self, base: f64, min: f64, t: usize, total: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let progress = (t as f64 / total.max(1) as f64).min(1.0);
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// SGD with Nesterov momentum and L2 weight decay (see the module docs for the update).
pub struct SgdNesterov {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl SgdNesterov {
    pub fn new(vars: Vec<Var>, learning_rate: f64, momentum: f64, weight_decay: f64) -> SgdNesterov {
        let buffers = vars.iter().map(|_| None).collect();
        SgdNesterov { vars, buffers, learning_rate, momentum, weight_decay }
    }

    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        for (var, buffer) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var) else { continue };
            let theta = var.as_tensor();
            let g = if self.weight_decay > 0.0 { (grad + (theta * self.weight_decay)?)? } else { grad.clone() };
            let b = match buffer.take() {
                Some(b) => ((b * self.momentum)? + &g)?,
                None => g.clone(),
            };
            let update = (&g + (&b * self.momentum)?)?;
            var.set(&(theta - (update * self.learning_rate)?)?)?;
            *buffer = Some(b);
        }
        Ok(())
    }
}

/// The optimiser a network trains with.
pub enum Opt {
    AdamW(AdamW),
    Sgd(SgdNesterov),
}

impl Opt {
    pub fn new(kind: OptimizerKind, vars: Vec<Var>, learning_rate: f64, momentum: f64, weight_decay: f64) -> candle_core::Result<Opt> {
        Ok(match kind {
            OptimizerKind::AdamW => Opt::AdamW(AdamW::new(vars, ParamsAdamW { lr: learning_rate, weight_decay, ..ParamsAdamW::default() })?),
            OptimizerKind::SgdNesterov => Opt::Sgd(SgdNesterov::new(vars, learning_rate, momentum, weight_decay)),
        })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        match self {
            Opt::AdamW(o) => o.set_learning_rate(lr),
            Opt::Sgd(o) => o.learning_rate = lr,
        }
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        match self {
            Opt::AdamW(o) => o.backward_step(loss),
            Opt::Sgd(o) => o.step(&loss.backward()?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn cosine_schedule_values() {
        let s = Schedule::Cosine;
        assert_eq!(s.learning_rate(0.1, 0.0, 0, 100), 0.1);
        assert!((s.learning_rate(0.1, 0.0, 50, 100) - 0.05).abs() < 1e-15);
        assert!((s.learning_rate(0.1, 0.01, 25, 100) - (0.01 + 0.09 * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2))).abs() < 1e-15);
        assert!((s.learning_rate(0.1, 0.01, 100, 100) - 0.01).abs() < 1e-15);
        assert_eq!(Schedule::Constant.learning_rate(0.1, 0.0, 70, 100), 0.1);
    }

    /// On f(θ) = aθ²/2 the update is linear in the state s = (θ, b):
    /// b' = μb + cθ and θ' = θ − η(cθ + μb') with c = a + λ, so s_t = Mᵗ s₀ with
    /// M = [[1 − ηc(1 + μ), −ημ²], [c, μ]]. Mᵗ is computed in f64 by repeated squaring.
    #[test]
    fn sgd_nesterov_matches_the_closed_form_on_a_quadratic() {
        let (a, lr, mu, wd, theta0, steps) = (3.0, 0.05, 0.9, 0.1, 2.0, 25u32);
        let var = Var::from_tensor(&Tensor::new(&[theta0], &Device::Cpu).unwrap()).unwrap();
        let mut opt = SgdNesterov::new(vec![var.clone()], lr, mu, wd);
        for _ in 0..steps {
            let loss = (var.as_tensor().sqr().unwrap() * (a / 2.0)).unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let got = var.as_tensor().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()[0];

        let c = a + wd;
        let mul = |x: [[f64; 2]; 2], y: [[f64; 2]; 2]| {
            let mut z = [[0.0; 2]; 2];
            for i in 0..2 {
                for j in 0..2 {
                    z[i][j] = x[i][0] * y[0][j] + x[i][1] * y[1][j];
                }
            }
            z
        };
        let (mut power, mut base, mut e) = ([[1.0, 0.0], [0.0, 1.0]], [[1.0 - lr * c * (1.0 + mu), -lr * mu * mu], [c, mu]], steps);
        while e > 0 {
            if e & 1 == 1 {
                power = mul(power, base);
            }
            base = mul(base, base);
            e >>= 1;
        }
        let expected = power[0][0] * theta0; // b₀ = 0
        assert!((got - expected).abs() < 1e-12, "sgd-nesterov {got} vs closed form {expected}");
        assert!(expected.abs() < 0.5 * theta0, "the test must move θ: {expected}");
    }
}
