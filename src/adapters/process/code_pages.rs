//! The process's own code pages. Code the daemon runs only while it starts (the command line,
//! the configuration, TLS set-up, the env file at start) would stay mapped for its whole life,
//! and the kernel maps up to 64 KiB of code around each page a process touches: most of an
//! idle daemon's RSS. Once started, the daemon hands those mappings back; what the probe loop
//! runs is mapped again at its next touch, from the page cache (no disk read, no change of
//! content), and the rest no longer counts in the RSS.

use std::io;

/// One executable mapping of a file, as `/proc/self/maps` lists it.
#[derive(Debug, PartialEq, Eq)]
struct CodeRange {
    start: usize,
    end: usize,
}

/// Unmaps this process's executable file mappings (its own code and its shared libraries'),
/// so that only the pages touched from now on count in its RSS. Returns how many bytes of
/// address space were handed back.
pub fn release() -> io::Result<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut released = 0;
    for range in code_ranges(&maps) {
        let len = range.end - range.start;
        // SAFETY: the range is a private, read-only, executable mapping of a file, as the
        // kernel lists it: code, never written (Rust binaries and their libraries carry no
        // text relocations). MADV_DONTNEED only drops its page table entries; the next touch
        // maps the same bytes from the file again, so nothing that runs sees a change.
        let rc =
            unsafe { libc::madvise(range.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        released += len;
    }
    Ok(released)
}

/// The private, read-only, executable mappings of files in a `/proc/<pid>/maps` listing:
/// `[vdso]` and the like, anonymous or writable mappings are left out.
fn code_ranges(maps: &str) -> Vec<CodeRange> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (range, perms) = (fields.next()?, fields.next()?);
            let path = fields.nth(3)?;
            if perms != "r-xp" || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some(CodeRange { start, end })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c8a00000-55d0c8b00000 r--p 00000000 fd:01 131 /usr/bin/failover-handler
55d0c8b00000-55d0c9000000 r-xp 00100000 fd:01 131 /usr/bin/failover-handler
55d0c9000000-55d0c9100000 rw-p 00600000 fd:01 131 /usr/bin/failover-handler
55d0ca000000-55d0ca100000 rw-p 00000000 00:00 0 [heap]
7f1e2c028000-7f1e2c1bd000 r-xp 00028000 fd:01 2048 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1e2c300000-7f1e2c400000 rwxp 00000000 00:00 0
7ffd5a3f0000-7ffd5a3f2000 r-xp 00000000 00:00 0 [vdso]
7f1e2c500000-7f1e2c501000 r-xp 00000000 fd:01 99 /tmp/a file with spaces
";

    #[test]
    fn only_the_code_of_files_is_handed_back() {
        assert_eq!(
            code_ranges(MAPS),
            vec![
                CodeRange {
                    start: 0x55d0c8b00000,
                    end: 0x55d0c9000000
                },
                CodeRange {
                    start: 0x7f1e2c028000,
                    end: 0x7f1e2c1bd000
                },
                CodeRange {
                    start: 0x7f1e2c500000,
                    end: 0x7f1e2c501000
                },
            ]
        );
    }

    fn rss_file_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        (status.lines())
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn a_process_hands_back_its_code_and_runs_on() {
        let before = rss_file_kib();
        let released = release().expect("madvise on this process's code");
        let after = rss_file_kib();
        assert!(released > 0, "no code mapping found in /proc/self/maps");
        assert!(
            after < before,
            "RssFile {before} kB before, {after} kB after"
        );
        // The code runs on, mapped again from the file: a sort exercises plenty of it.
        let mut v: Vec<u64> = (0..10_000).rev().collect();
        v.sort_unstable();
        assert_eq!((v[0], v[9_999]), (0, 9_999));
    }
}
