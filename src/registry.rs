//! The methods and metrics a study may name: kdlab's own ([`crate::method::BUILTIN`],
//! [`crate::metric::METRICS`]) plus any a program registers. A study is read against one
//! registry and keeps it, so its results columns, report and verdicts know the same names.

use crate::method::{self, Arm, Method};
use crate::metric::{self, MetricInfo, Section};

/// Known methods and metrics, in the order lists and tables show them.
#[derive(Clone)]
pub struct Registry {
    methods: Vec<Arm>,
    metrics: Vec<&'static MetricInfo>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::builtin()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("methods", &self.arm_names()).field("metrics", &self.metric_names()).finish()
    }
}

impl Registry {
    /// kdlab's own methods and metrics.
    pub fn builtin() -> Registry {
        Registry { methods: method::BUILTIN.to_vec(), metrics: metric::METRICS.iter().collect() }
    }

    /// Adds a method. Names are what studies and results refer to, so a second method under a
    /// taken name is a programming error.
    pub fn with_method(mut self, method: &'static dyn Method) -> Registry {
        assert!(self.arm(method.name()).is_none(), "a method named `{}` is already registered", method.name());
        if let Some(conflict) = method.needs().conflict() {
            panic!("method `{}` states needs that cannot be met: {conflict}", method.name());
        }
        self.methods.push(Arm(method));
        self
    }

    /// Adds a metric (its column follows kdlab's own in the results table).
    pub fn with_metric(mut self, metric: &'static MetricInfo) -> Registry {
        assert!(self.metric(metric.name).is_none(), "a metric named `{}` is already registered", metric.name);
        self.metrics.push(metric);
        self
    }

    pub fn arms(&self) -> &[Arm] {
        &self.methods
    }

    pub fn arm(&self, name: &str) -> Option<Arm> {
        self.methods.iter().copied().find(|a| a.name() == name)
    }

    pub fn arm_names(&self) -> Vec<&'static str> {
        self.methods.iter().map(|a| a.name()).collect()
    }

    pub fn metrics(&self) -> &[&'static MetricInfo] {
        &self.metrics
    }

    pub fn metric(&self, name: &str) -> Option<&'static MetricInfo> {
        self.metrics.iter().copied().find(|m| m.name == name)
    }

    pub fn metric_names(&self) -> Vec<&'static str> {
        self.metrics.iter().map(|m| m.name).collect()
    }

    /// The metrics a report section shows, in table order.
    pub fn in_section(&self, section: Section) -> Vec<&'static str> {
        self.metrics.iter().filter(|m| m.sections.contains(&section)).map(|m| m.name).collect()
    }
}
