//! The state directory: small files that outlive the process (a restart left unfinished, later
//! the pin, the pause and the journal). If it cannot be created the daemon warns and runs
//! without it: nothing here may stop a failover. What fails is returned; the caller tells it.

use std::fs;
use std::io;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::envfile::write_atomic;
use super::trust;
use crate::config::ConfigError;

const RESTART_PENDING: &str = "restart-pending";

/// Held by the daemon for its life: one daemon per state dir (and so per env file).
const DAEMON_LOCK: &str = "daemon.lock";

/// Refuses an existing state dir that is not this user's or that others may write into:
/// whoever can write there can plant the pause, the pin or a symbolic link.
pub fn refuse_untrusted(dir: &Path) -> Result<(), ConfigError> {
    let Ok(meta) = fs::metadata(dir) else {
        return Ok(());
    };
    let uid = trust::euid();
    let shown = dir.display();
    if meta.uid() != uid {
        return Err(ConfigError::new(
            "--state-dir",
            format!(
                "{shown} is owned by uid {}, not by this user (uid {uid}): run `chown {uid} {shown}` or choose another --state-dir",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ConfigError::new(
            "--state-dir",
            format!(
                "{shown} is writable by group or others (mode {:04o}): run `chmod go-w {shown}` or choose another --state-dir",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The daemon's exclusive hold on its state dir, released with its process.
#[derive(Debug)]
pub struct DaemonLock {
    _file: Option<fs::File>,
    /// The lock could not be taken, or the pid not recorded: the daemon runs on.
    pub failed: Option<WriteFailed>,
}

/// Which write in the state directory failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWrite {
    /// The daemon's lock: nothing stops a second daemon on the dir.
    Lock,
    /// The daemon's pid beside its lock.
    Pid,
    /// The marker of a restart under way.
    MarkRestart,
    /// The marker's removal after the restart.
    ClearRestart,
}

/// A write in the state directory that failed, and why.
#[derive(Debug)]
pub struct WriteFailed {
    pub write: StateWrite,
    pub error: io::Error,
}

/// The state directory, or nothing when it could not be had.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: Option<PathBuf>,
    /// Why the directory could not be had, for the caller to tell.
    unusable: Option<String>,
}

impl StateDir {
    /// Creates `dir` (mode 0700) if missing; on failure returns a disabled one that says why
    /// ([`StateDir::unusable`]).
    pub fn open(dir: &Path) -> Self {
        let result = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| {
                // Made afresh, never through what is there: a leftover of a killed start, or a
                // symbolic link planted to have the probe truncate another file, is removed.
                let probe = dir.join(".writable");
                if let Err(e) = fs::remove_file(&probe)
                    && e.kind() != io::ErrorKind::NotFound
                {
                    return Err(e);
                }
                trust::create_new(&probe)?;
                fs::remove_file(&probe)
            });
        match result {
            Ok(()) => {
                remove_stale_temp_files(dir);
                StateDir {
                    dir: Some(dir.to_path_buf()),
                    unusable: None,
                }
            }
            Err(e) => StateDir {
                dir: None,
                unusable: Some(e.to_string()),
            },
        }
    }

    /// Why [`StateDir::open`] could not have the directory, if it could not.
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// Takes the daemon's exclusive lock on the state dir and records its pid there. Another
    /// daemon holding it is a configuration error naming that daemon; a lock that cannot be
    /// taken otherwise is returned in [`DaemonLock::failed`], and the daemon runs on.
    pub fn lock_for_daemon(&self) -> Result<DaemonLock, ConfigError> {
        let Some(path) = self.file(DAEMON_LOCK) else {
            return Ok(DaemonLock {
                _file: None,
                failed: None,
            });
        };
        let opened = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let failed = |error: io::Error| {
            Ok(DaemonLock {
                _file: None,
                failed: Some(WriteFailed {
                    write: StateWrite::Lock,
                    error,
                }),
            })
        };
        let mut file = match opened {
            Ok(file) => file,
            Err(e) => return failed(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let pid = fs::read_to_string(&path).unwrap_or_default();
                let pid = Some(pid.trim())
                    .filter(|p| !p.is_empty())
                    .unwrap_or("unknown");
                return Err(ConfigError::new(
                    "--state-dir",
                    format!(
                        "another daemon (pid {pid}) runs on the state dir {}: stop it first, or give this one its own --state-dir and --env-file",
                        path.parent().unwrap_or(&path).display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return failed(e),
        }
        let failed = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .err()
            .map(|error| WriteFailed {
                write: StateWrite::Pid,
                error,
            });
        Ok(DaemonLock {
            _file: Some(file),
            failed,
        })
    }

    /// A state directory that reads what is there and never creates anything (one-shot reads).
    pub fn read_only(dir: &Path) -> Self {
        StateDir {
            dir: dir.is_dir().then(|| dir.to_path_buf()),
            unusable: None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A file in the state dir, if there is one.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// Writes a state file atomically with mode 0600; errors are returned for the caller to log.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        match self.file(name) {
            Some(path) => write_atomic(&path, bytes, 0o600),
            None => Ok(()),
        }
    }

    pub fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.file(name)?).ok()
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        match self.file(name) {
            Some(path) => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Records that a restart for `region` is under way, so that a crash mid-way is finished
    /// at the next start even though the env file already names the region.
    pub fn mark_restart_pending(&self, region: &str) -> Result<(), WriteFailed> {
        self.write(RESTART_PENDING, format!("{region}\n").as_bytes())
            .map_err(|error| WriteFailed {
                write: StateWrite::MarkRestart,
                error,
            })
    }

    pub fn clear_restart_pending(&self) -> Result<(), WriteFailed> {
        self.remove(RESTART_PENDING).map_err(|error| WriteFailed {
            write: StateWrite::ClearRestart,
            error,
        })
    }

    /// When the restart that is still pending was marked (the marker's modification time).
    pub fn restart_pending_since(&self) -> Option<std::time::SystemTime> {
        fs::metadata(self.file(RESTART_PENDING)?)
            .and_then(|m| m.modified())
            .ok()
    }

    /// The region of a restart that was started and not finished, if any.
    pub fn restart_pending(&self) -> Option<String> {
        self.read(RESTART_PENDING)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// A state write takes milliseconds: a temp file older than this was left by a writer that was
/// killed before its rename. Younger ones may belong to another process writing right now
/// (the daemon and one-shot commands such as `pause` share the directory without a lock).
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Removes the `.<name>.*.tmp` files of killed writes from the state directory.
fn remove_stale_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
        if name.starts_with('.') && name.ends_with(".tmp") && stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Mode bits of a file, for tests and checks.
pub fn mode(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(&dir.path().join("state"));
        assert_eq!(s.restart_pending(), None);
        let before = std::time::SystemTime::now() - Duration::from_secs(1);
        s.mark_restart_pending("EU").unwrap();
        assert_eq!(s.restart_pending().as_deref(), Some("EU"));
        assert!(s.restart_pending_since().is_some_and(|t| t > before));
        assert_eq!(mode(&s.file(RESTART_PENDING).unwrap()), Some(0o600));
        assert_eq!(mode(s.path().unwrap()), Some(0o700));
        s.clear_restart_pending().unwrap();
        assert_eq!(s.restart_pending(), None);
        assert_eq!(s.restart_pending_since(), None);
    }

    #[test]
    fn opening_removes_old_temp_files_of_a_killed_write_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        let old = state.join(".restart-pending.Ab12Cd.tmp");
        let young = state.join(".pin.Zz99Yy.tmp");
        fs::write(&old, "E").unwrap();
        fs::write(&young, "A").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        fs::write(state.join("restart-pending"), "EU\n").unwrap();
        let s = StateDir::open(&state);
        assert!(!old.exists());
        assert!(young.exists(), "a write in progress elsewhere was removed");
        assert_eq!(s.restart_pending().as_deref(), Some("EU"));
    }

    #[test]
    fn unusable_dir_disables_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let s = StateDir::open(&blocker.join("state"));
        assert!(s.path().is_none());
        s.mark_restart_pending("EU").unwrap();
        assert_eq!(s.restart_pending(), None);
    }
}
