//! How the server's allocator hands memory back.
//!
//! Webhook bodies are read whole (up to the body limit) before their
//! signature is checked. glibc's malloc serves a freed buffer that large from
//! `mmap` only until the first one is freed: it then raises its mmap
//! threshold (up to 32 MiB) and later bodies land in per-thread arenas, which
//! keep the pages after the body is dropped. Under a burst of large bodies the
//! resident size then grows well past the body budget. Fixing the threshold
//! keeps every large buffer in its own mapping, returned to the system the
//! moment it is dropped, so the budget bounds the memory bodies really hold.

/// Large allocations (1 MiB and more) always get their own mapping.
pub fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tuning; it is called once at
    // startup and takes plain integers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
