//! The process's own file descriptors against its limit (`RLIMIT_NOFILE`): how many more it
//! may open. The status server asks before each accept, so that a flood of connections never
//! takes the descriptors a probe or the env file needs.

/// How many more descriptors this process may open; `None` when it cannot be known (no
/// `/proc`, or no limit).
pub fn headroom() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let open = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir.count() as u64,
        // Not even the one descriptor to look: none left.
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Some(0),
        Err(_) => return None,
    };
    Some(limit.rlim_cur.saturating_sub(open))
}
