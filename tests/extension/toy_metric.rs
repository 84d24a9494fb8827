//! A toy metric, as a program outside kdlab adds one: the test error, 1 − accuracy, computed
//! from each row's test predictions.

use kdlab::metric::{Better, Compute, MetricInfo, Predictions, Section};

pub const TEST_ERROR: MetricInfo = MetricInfo {
    name: "test_error",
    better: Better::Lower,
    unit: "fraction",
    sections: &[Section::Results],
    description: "toy: test error, 1 − accuracy",
    compute: Compute::FromPredictions(test_error),
};

fn test_error(p: &Predictions) -> Option<f64> {
    kdlab::metrics::accuracy(p.test, p.y_test).ok().map(|a| 1.0 - a)
}
