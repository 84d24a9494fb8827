//! File output that never leaves a half-written file: write to a temporary file in the same
//! directory, flush and sync it, then rename over the target. Also the output-directory lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically (temp file + rename in the same directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Removes the `.{name}.tmp-{pid}` files of [`write_atomic`] in `dir` (not recursive).
fn remove_stale_temp_files(dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// An exclusive advisory lock (flock) on an output directory, held until dropped; the OS
/// releases it if the process dies. A second process that tries
/// to write the same directory gets an error naming the holder instead of corrupting files.
pub struct DirLock {
    file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        fs::create_dir_all(dir)?;
        let path = dir.join(".lock");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        if file.try_lock().is_err() {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is locked by another kdlab process ({}); wait for it to finish",
                    dir.display(),
                    holder.trim()
                ),
            ));
        }
        file.set_len(0)?;
        writeln!(file, "pid {}", std::process::id())?;
        // Holding the lock, no other process writes here: temp files left by a killed run are
        // litter (their targets were never replaced), so they go.
        remove_stale_temp_files(dir)?;
        remove_stale_temp_files(&dir.join("cells"))?;
        Ok(DirLock { file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn second_lock_is_refused_with_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().expect("second lock must fail");
        assert!(err.to_string().contains("locked by another kdlab process"));
    }
}
