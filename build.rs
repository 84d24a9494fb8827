//! Fingerprints the code that computes results: a SHA-256 over every `.rs` file under `src/`,
//! the data compiled into the binary (`data/optdigits-small/`), `Cargo.toml`, `Cargo.lock`,
//! the compiler's version, the build profile, the target and the compiler flags. Stored shards
//! and cached teachers carry it, so a run never reuses what other code computed.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Data files compiled into the binary (`include_str!`), which results depend on.
const EMBEDDED_DATA: &str = "data/optdigits-small";

/// The files under `dir`; only `.rs` files when `rust_only` (editor backups are not code).
fn files_under(dir: &Path, rust_only: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, rust_only, out);
        } else if !rust_only || path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    files_under(&root.join("src"), true, &mut files);
    files_under(&root.join(EMBEDDED_DATA), false, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file).to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(file).unwrap_or_default();
        hasher.update((relative.len() as u64).to_le_bytes());
        hasher.update(relative.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = std::process::Command::new(rustc).arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    hasher.update(&rustc_version);
    for var in ["PROFILE", "TARGET", "CARGO_ENCODED_RUSTFLAGS"] {
        hasher.update(std::env::var(var).unwrap_or_default().as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=KDLAB_CODE_FINGERPRINT={hex}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed={EMBEDDED_DATA}");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
