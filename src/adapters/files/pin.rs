//! The pin of a manual switch: a file in the state dir (mode 0600) naming the region that
//! `switch` moved to. While the active region is pinned, no automatic failback moves away from
//! it; the next outage or `switch --unpin` ends it. Being a file, it survives a restart.

use std::io;

use super::state::StateDir;

const PIN: &str = "pin";

/// The pinned region's name, if a pin is set.
pub fn read(state: &StateDir) -> Option<String> {
    state
        .read(PIN)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn write(state: &StateDir, region: &str) -> io::Result<()> {
    state.write(PIN, format!("{region}\n").as_bytes())
}

pub fn clear(state: &StateDir) -> io::Result<()> {
    state.remove(PIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(&dir.path().join("state"));
        assert_eq!(read(&s), None);
        write(&s, "NAM").unwrap();
        assert_eq!(read(&s).as_deref(), Some("NAM"));
        let path = s.file(PIN).unwrap();
        assert_eq!(crate::adapters::files::state::mode(&path), Some(0o600));
        clear(&s).unwrap();
        assert_eq!(read(&s), None);
        clear(&s).unwrap();
    }
}
