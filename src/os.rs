//! Process-wide settings of the operating system that the engine's speed depends on.

/// Turns transparent huge pages off for this process (Linux; elsewhere a no-op).
///
/// mimalloc asks for huge pages (`MADV_HUGEPAGE`) on its arenas. The engine allocates and
/// frees many small objects on several threads while the memory store keeps growing;
/// with huge pages, every fresh 2 MiB region is faulted in and zeroed at once and
/// mimalloc's purges of freed pages split them again. On the enrollment benchmark
/// (`BENCH_ONCE=100000 cargo bench --bench enrollment`, 200,000 enrollments) that was
/// 3.8–6.1 s of kernel time against 1.7–2.0 s without (user time unchanged), the
/// difference being `clear_page_erms` under huge-page faults in `perf`.
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
