//! The mark of a switch by hand that is restarting the programs: a file in the state dir
//! (`switch-restart`, mode 0600) naming the switch's pid, its region and when its restart
//! began, held under the switch's exclusive lock for as long as the restart runs. The running
//! daemon reads it at each probe: the tunnel's refusals are then the switch's own doing.
//!
//! The lock, not the pid, says whether the switch still runs: a switch killed mid-restart
//! releases it with its process, and its mark then counts for nothing, whatever pid the
//! system hands out next. The mark is made whole under another name and renamed into place,
//! so that a reader never finds it unlocked or half written while its switch runs.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::state::StateDir;
use super::trust;

const MARK: &str = "switch-restart";

/// A switch's restart as its mark tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRestart {
    pub pid: u32,
    pub region: String,
    pub began: SystemTime,
}

/// What the state dir shows of a switch's restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchMarkState {
    /// No mark: no switch is restarting the programs.
    None,
    /// A switch holds its mark: its restart is under way.
    Running(SwitchRestart),
    /// A mark nobody holds: its switch ended (killed) before its restart did.
    Abandoned(SwitchRestart),
}

/// The mark of this process's switch, removed when it is dropped: the restart ended, failed
/// or was interrupted.
#[derive(Debug)]
pub struct Mark {
    path: PathBuf,
    _held: fs::File,
}

impl Mark {
    /// Marks the state dir: this process restarts the programs for `region` from now on.
    /// Only one switch runs at a time (the switches' own lock), so a mark already there is a
    /// killed switch's leftover, and is replaced.
    pub fn begin(state: &StateDir, region: &str) -> io::Result<Mark> {
        let (Some(path), Some(dir)) = (state.file(MARK), state.path()) else {
            return Err(io::Error::other("the state directory is not usable"));
        };
        let pid = std::process::id();
        let temp = dir.join(format!(".{MARK}.{pid}.tmp"));
        if let Err(e) = fs::remove_file(&temp)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(e);
        }
        let made = (|| {
            let mut file = trust::create_new(&temp)?;
            file.lock()?;
            let began = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            write!(file, "pid={pid}\nregion={region}\nbegan_ms={began}\n")?;
            fs::rename(&temp, &path)?;
            Ok(file)
        })();
        match made {
            Ok(file) => Ok(Mark { path, _held: file }),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        // Removed while still held: a reader in between finds it held, then nothing.
        let _ = fs::remove_file(&self.path);
    }
}

/// What the state dir shows now of a switch's restart. A mark that cannot be read, or that
/// does not read as one, counts for nothing.
pub fn read(state: &StateDir) -> SwitchMarkState {
    let Some(path) = state.file(MARK) else {
        return SwitchMarkState::None;
    };
    let Ok(file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    else {
        return SwitchMarkState::None;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return SwitchMarkState::None;
    }
    let mut text = String::new();
    if (&file).take(512).read_to_string(&mut text).is_err() {
        return SwitchMarkState::None;
    }
    let Some(mark) = parse(&text) else {
        return SwitchMarkState::None;
    };
    match file.try_lock_shared() {
        Err(fs::TryLockError::WouldBlock) => SwitchMarkState::Running(mark),
        Ok(()) => SwitchMarkState::Abandoned(mark),
        Err(fs::TryLockError::Error(_)) => SwitchMarkState::None,
    }
}

fn parse(text: &str) -> Option<SwitchRestart> {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let region = value("region").filter(|r| !r.is_empty())?.to_string();
    Some(SwitchRestart {
        pid: value("pid")?.parse().ok()?,
        region,
        began: UNIX_EPOCH + Duration::from_millis(value("began_ms")?.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state"));
        (dir, state)
    }

    #[test]
    fn a_held_mark_is_running_and_gone_once_dropped() {
        let (_dir, s) = state();
        assert_eq!(read(&s), SwitchMarkState::None);
        let mark = Mark::begin(&s, "NAM").unwrap();
        let SwitchMarkState::Running(r) = read(&s) else {
            panic!("{:?}", read(&s));
        };
        assert_eq!((r.pid, r.region.as_str()), (std::process::id(), "NAM"));
        assert!(r.began.elapsed().unwrap() < Duration::from_secs(5));
        let path = s.file(MARK).unwrap();
        assert_eq!(crate::adapters::files::state::mode(&path), Some(0o600));
        drop(mark);
        assert_eq!(read(&s), SwitchMarkState::None);
        assert!(!path.exists());
    }

    #[test]
    fn a_mark_nobody_holds_is_abandoned_and_the_next_switch_replaces_it() {
        let (_dir, s) = state();
        let left = "pid=4242\nregion=EU\nbegan_ms=1000\n";
        std::fs::write(s.file(MARK).unwrap(), left).unwrap();
        let abandoned = SwitchRestart {
            pid: 4242,
            region: "EU".into(),
            began: UNIX_EPOCH + Duration::from_secs(1),
        };
        assert_eq!(read(&s), SwitchMarkState::Abandoned(abandoned));
        let _mark = Mark::begin(&s, "NAM").unwrap();
        assert!(matches!(read(&s), SwitchMarkState::Running(r) if r.region == "NAM"));
    }

    #[test]
    fn a_mark_that_does_not_read_as_one_or_a_link_counts_for_nothing() {
        let (dir, s) = state();
        let path = s.file(MARK).unwrap();
        std::fs::write(&path, "region=\npid=x\n").unwrap();
        assert_eq!(read(&s), SwitchMarkState::None);
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "pid=1\nregion=EU\nbegan_ms=1\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(read(&s), SwitchMarkState::None);
    }
}
