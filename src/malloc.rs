//! Process-wide allocator settings for network training.
//!
//! Every candle op allocates its output afresh, and a CNN step allocates megabyte-sized
//! buffers dozens of times. With glibc's defaults such buffers are mmapped and unmapped (or
//! trimmed off the heap) each time, so every step page-faults and zero-fills them again: in
//! `benches/cnn.rs` that cost about 40 % of a training step. Keeping freed memory in the
//! process (mmap only above 32 MiB, trim only beyond 512 MiB of free heap top) removes it; the
//! price is that a process keeps its peak heap until it exits.

/// Applies the settings above (glibc only; a no-op elsewhere). Call once at start-up, before
/// other threads exist.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}
