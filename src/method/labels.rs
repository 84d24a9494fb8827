//! `labels`: no distillation; the student fits the training labels.

use super::{Method, Needs};

pub struct Labels;

impl Method for Labels {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn description(&self) -> &'static str {
        "no distillation: the student fits the training labels"
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }
}
