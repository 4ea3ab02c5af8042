//! Process-wide settings of the operating system that the engine's speed depends on, and
//! the limits it reads.

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

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`); `None` when unlimited or
/// unknown (or not on Unix).
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into memory we own and touches nothing else.
        let failed = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0;
        if failed || limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        // `rlim_t` is u64 on 64-bit Linux, not on every Unix.
        #[allow(clippy::useless_conversion)]
        u64::try_from(limit.rlim_cur).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}
