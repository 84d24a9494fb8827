//! The fingerprint of the code that computes results (a hash of `src/`, `Cargo.toml`,
//! `Cargo.lock`, the build profile and the target, made by `build.rs`). Stored shards and
//! cached teachers carry it; a run reuses only what this same code computed.

/// This build's fingerprint.
pub const CODE: &str = env!("KDLAB_CODE_FINGERPRINT");
