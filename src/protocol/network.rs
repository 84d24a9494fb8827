//! The network-method protocol: students trained from the teacher network itself, by
//! [`crate::method::network::Unit`].

use super::{ArmError, ArmFit, Protocol};
use crate::method::network::Unit;
use crate::method::Arm;
use crate::models::student::FittedStudent;

impl Protocol for Unit<'_> {
    fn fit_arm(&self, arm: Arm) -> Result<ArmFit, ArmError> {
        let fitted = self.train_arm(arm)?;
        Ok(ArmFit { metrics: fitted.metrics, ..ArmFit::new(FittedStudent::Network(fitted.network)) })
    }
}
