//! The `[health]` section: health checks a study silences, each with its reason.
//!
//! ```toml
//! [health.silence]
//! not-converged = "fixed-epoch protocol of the paper: students train exactly 40 epochs"
//! ```

use toml::{Table, Value};

use super::{Ctx, Step, StudyError};

/// The health checks a study may silence: `verdicts::health::CHECKS` by name (a test holds
/// the two lists equal; the study reader cannot import the verdict engine, which reads it).
pub const HEALTH_CHECKS: &[&str] = &["not-converged", "teacher-no-better", "at-chance", "unequal-budget", "collapsed", "diverged"];

impl Ctx<'_> {
    /// The silenced checks as (name, reason), in the file's order of keys.
    pub(super) fn silenced(&self, table: &Table) -> Result<Vec<(String, String)>, StudyError> {
        let Some(section) = table.get("health") else { return Ok(Vec::new()) };
        let Value::Table(section) = section else {
            return Err(self.err(&[Step::Key("health")], format!("must be a table, got {}", section.type_str())));
        };
        if let Some(k) = section.keys().find(|k| *k != "silence") {
            return Err(self.unknown_key(&[Step::Key("health"), Step::Key(k)], k, &["silence"], "[health] key"));
        }
        let Some(silence) = section.get("silence") else { return Ok(Vec::new()) };
        let Value::Table(silence) = silence else {
            return Err(self.err_hint(&[Step::Key("health"), Step::Key("silence")], format!("must be a table of check = \"reason\", got {}", silence.type_str()), Some("e.g. [health.silence] not-converged = \"why it does not apply\"".into())));
        };
        let mut out = Vec::new();
        for (check, reason) in silence {
            let path = [Step::Key("health"), Step::Key("silence"), Step::Key(check)];
            if !HEALTH_CHECKS.contains(&check.as_str()) {
                return Err(self.unknown_key(&path, check, HEALTH_CHECKS, "health check"));
            }
            match reason {
                Value::String(r) if !r.trim().is_empty() => out.push((check.clone(), r.trim().to_string())),
                _ => return Err(self.err(&path, "must be the reason, a non-empty string: a check is silenced only with its reason, which the report prints")),
            }
        }
        Ok(out)
    }
}
