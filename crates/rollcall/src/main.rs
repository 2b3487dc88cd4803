//! The `rollcall` binary: tune the allocator, then hand the command line to the library.

fn main() -> std::process::ExitCode {
    keep_freed_memory_for_reuse();
    rollcall::cli::run()
}

/// Detection allocates and frees buffers of 1–13 MB per pyramid level. By default glibc maps
/// such buffers fresh, or trims them off the heap when they are freed, and the next frame faults
/// every page in again. Buffers below 32 MB are served from the heap here, and the heap is
/// trimmed only past 64 MB of free space. Each arena keeps its own free memory, so arenas are
/// limited to one per core (a single one made FaceNet's two threads wait on its lock). The
/// effect is measured in docs/performance.md. Only the binary tunes the allocator: the library
/// leaves its host program's allocator alone.
fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets allocator parameters; it runs before any other thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.max(2) as libc::c_int);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}
