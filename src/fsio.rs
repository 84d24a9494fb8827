//! File output that never leaves a half-written file: write to a temporary file in the same
//! directory, flush and sync it, then rename over the target. Also the output-directory lock.
//! Several processes, on several hosts, may write into one directory of a shared file system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Writes `bytes` to `path` atomically (temp file + rename in the same directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique across hosts, processes and calls: on a shared file system, array tasks on two
    // nodes (whose process ids may coincide) can write the same teacher-cache entry at once,
    // each through its own temporary file; the last rename wins with identical bytes.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(".{name}.tmp-{}-{}-{}", hostname(), std::process::id(), CALLS.fetch_add(1, Ordering::Relaxed)));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Removes the `.{name}.tmp-{host}-{pid}-{n}` files of [`write_atomic`] in `dir` (not recursive).
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

/// The machine's host name (the kernel's, as `hostname` prints it), or "unknown"; read once.
pub fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::process::Command::new("hostname").output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    })
}

/// An exclusive advisory lock (flock) on an output directory, held until dropped; the OS
/// releases it if the process dies. A second process that tries
/// to write the same directory gets an error naming the holder instead of corrupting files.
///
/// Exclusive for a local run and for a merge; shared for the array tasks of a cluster run
/// ([`DirLock::acquire_shared`]), which write only their own files and must not wait for
/// each other.
pub struct DirLock {
    file: File,
    exclusive: bool,
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
                    match holder.trim() {
                        "" => "array tasks of a cluster run hold it",
                        h => h,
                    }
                ),
            ));
        }
        file.set_len(0)?;
        writeln!(file, "pid {}", std::process::id())?;
        // Holding the lock exclusively, no other process writes here: temp files left by a
        // killed run are litter (their targets were never replaced), so they go.
        remove_stale_temp_files(dir)?;
        remove_stale_temp_files(&dir.join("cells"))?;
        Ok(DirLock { file, exclusive: true })
    }

    /// A shared lock: any number of holders at once, but none beside an exclusive holder.
    pub fn acquire_shared(dir: &Path) -> io::Result<DirLock> {
        fs::create_dir_all(dir)?;
        let path = dir.join(".lock");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        if file.try_lock_shared().is_err() {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another kdlab process ({}); wait for it to finish", dir.display(), holder.trim()),
            ));
        }
        Ok(DirLock { file, exclusive: false })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

/// A claim on a piece of work that processes sharing a directory should do only once (fitting
/// a teacher that several array tasks need): an exclusive flock on `path`, released on drop.
pub enum Claim {
    /// This process does the work; the others see [`Claim::Busy`] until it is dropped.
    Held(File),
    /// Another process holds the claim: wait with [`wait_released`], then use its result.
    Busy,
    /// The file system cannot lock (or the lock file cannot be made): do the work unclaimed.
    Unsupported,
}

/// Tries to claim `path` without waiting. Never wait for a claim while holding another: with
/// [`try_claim`] first and [`wait_released`] only while holding none, processes cannot deadlock.
pub fn try_claim(path: &Path) -> Claim {
    let file = path.parent().map_or(Ok(()), fs::create_dir_all).and_then(|_| OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path));
    let Ok(file) = file else { return Claim::Unsupported };
    match file.try_lock() {
        Ok(()) => Claim::Held(file),
        Err(std::fs::TryLockError::WouldBlock) => Claim::Busy,
        Err(std::fs::TryLockError::Error(_)) => Claim::Unsupported,
    }
}

/// Blocks until no process holds the claim on `path`.
pub fn wait_released(path: &Path) {
    if let Ok(file) = OpenOptions::new().read(true).open(path) {
        if file.lock_shared().is_ok() {
            let _ = file.unlock();
        }
    }
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// SHA-256 of a file's bytes, in hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    Ok(sha256_hex(&std::fs::read(path)?))
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

    #[test]
    fn a_claim_is_busy_for_others_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims").join("k");
        let Claim::Held(held) = try_claim(&path) else { panic!("the first claim must hold") };
        assert!(matches!(try_claim(&path), Claim::Busy));
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || wait_released(&path)
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "wait_released must wait for the holder");
        drop(held);
        waiter.join().unwrap();
        assert!(matches!(try_claim(&path), Claim::Held(_)));
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let one = DirLock::acquire_shared(dir.path()).unwrap();
        let two = DirLock::acquire_shared(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().expect("an exclusive lock must wait for the shared ones");
        assert!(err.to_string().contains("array tasks"), "{err}");
        drop((one, two));
        let _held = DirLock::acquire(dir.path()).unwrap();
        assert!(DirLock::acquire_shared(dir.path()).is_err());
    }
}
