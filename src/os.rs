//! Process-wide settings of the operating system that the engine's speed depends on.

/// Turns transparent huge pages off for this process (Linux; elsewhere a no-op).
///
/// mimalloc asks for huge pages (`MADV_HUGEPAGE`) on its arenas. The engine allocates and
/// frees many small objects on several threads while the memory store keeps growing;
/// with huge pages, every fresh 2 MiB region is faulted in and zeroed at once and
/// mimalloc's purges of freed pages split them again: kernel time spent zeroing pages the
/// engine never fills.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers, touches no memory of ours and
        // only changes how the kernel backs this process's future page faults.
        let failed = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
        if failed {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot turn transparent huge pages off; keeping the kernel's setting"
            );
        }
    }
}
