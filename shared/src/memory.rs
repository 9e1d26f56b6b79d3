//! Keeping the resident memory of a long process close to what its largest step needs. glibc's
//! allocator keeps what a thread freed in that thread's arena for reuse, and after a large block
//! is freed it raises its threshold for serving blocks straight from the operating system (up to
//! 32 MB), so later blocks of tens of megabytes come from the arenas and stay there. The steps of
//! a full process run on different worker threads, so without care the peak resident memory of
//! a full process is the sum of every step's leftovers rather than the largest step (measured:
//! 167 MB against 105 MB for the largest step on a million rows). That peak is what a Lambda
//! function's memory setting has to cover, and what it is billed for. Both functions here act on
//! the whole process, so the library never calls them: a binary does, [`tune_allocator`] first
//! thing in `main` and [`release_free_memory`] as its pipeline's
//! [`between_steps`](crate::steps::Pipeline::between_steps) hook (the Lambda entry point in
//! `shared::lambda` and the CLI both do). Elsewhere (musl, macOS) they do nothing.

/// Blocks of at least this size are mapped from the operating system and returned to it when
/// freed. Fixing the threshold also stops glibc from raising it as large blocks come and go.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Arenas: one per core is enough for the two or three threads a step keeps busy, and fewer
/// arenas means freed memory is found again by the next step instead of idling in another.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Sets the allocator up as above, once per process; call it before the work starts threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static TUNED: std::sync::Once = std::sync::Once::new();
        TUNED.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; any value is accepted or refused.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
        });
    }
}

/// Returns free memory at the end of every allocator arena to the operating system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
