//! Where a running daemon can be found: each daemon lists itself in the runtime directory
//! (`$XDG_RUNTIME_DIR/failover-handler`, else `/run/failover-handler` for root, else
//! `/tmp/failover-handler-<uid>`) with how it was started, so that `status`, `switch`, `pause`
//! and `resume` act on it without repeating its `-c` or `--state-dir`. The entry is removed
//! when the daemon stops; one whose process is gone is ignored and cleared.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::adapters::envfile::write_atomic;

/// The environment variables that shape a daemon's settings and hold no secret: recorded so
/// that a command rebuilds the same settings. Keys and passwords are never recorded.
pub const RECORDED_ENV: [&str; 5] = [
    "FAILOVER_HANDLER_CONFIG",
    "EXT_CLOUD_FAILOVER_LIST",
    "CONNECTION_KEEPALIVE_ORG_ID",
    "CONNECTION_KEEPALIVE_TXN_ID",
    "DD_SITE",
];

/// One running daemon, as it listed itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
    /// Its arguments, without the program name.
    pub args: Vec<String>,
    /// Its working directory, against which relative paths in `args` resolve.
    pub cwd: PathBuf,
    /// [`RECORDED_ENV`] as the daemon saw them (`None`: unset).
    pub env: BTreeMap<String, Option<String>>,
    pub state_dir: PathBuf,
    pub env_file: PathBuf,
}

impl Entry {
    /// This process's entry.
    pub fn of_this_process(state_dir: &Path, env_file: &Path) -> Entry {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let absolute = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            }
        };
        Entry {
            pid: std::process::id(),
            args: std::env::args().skip(1).collect(),
            env: RECORDED_ENV
                .iter()
                .map(|k| (k.to_string(), std::env::var(k).ok()))
                .collect(),
            state_dir: absolute(state_dir),
            env_file: absolute(env_file),
            cwd,
        }
    }

    /// The arguments as one line for people.
    pub fn command_line(&self) -> String {
        if self.args.is_empty() {
            "(no arguments)".to_string()
        } else {
            self.args.join(" ")
        }
    }
}

/// The runtime directory for this user, from `XDG_RUNTIME_DIR` as `env` gives it.
pub fn dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(base) = env("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_absolute()) {
        return Path::new(&base).join("failover-handler");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        PathBuf::from("/run/failover-handler")
    } else {
        PathBuf::from(format!("/tmp/failover-handler-{uid}"))
    }
}

/// A daemon's listing; removed on drop.
#[derive(Debug)]
pub struct Listing {
    path: PathBuf,
}

impl Drop for Listing {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Lists `entry` in `dir` (created 0700 if missing; refused unless owned by this user).
pub fn list(dir: &Path, entry: &Entry) -> io::Result<Listing> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a directory of this user",
        ));
    }
    let path = dir.join(format!("{}.json", entry.pid));
    let text = serde_json::to_string_pretty(entry).map_err(io::Error::other)?;
    write_atomic(&path, format!("{text}\n").as_bytes(), 0o600)?;
    Ok(Listing { path })
}

/// The daemons listed in `dir` whose process still runs with the listed arguments; entries of
/// processes that are gone are removed (when this user may).
pub fn running(dir: &Path) -> Vec<Entry> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for item in read.flatten() {
        let path = item.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(entry) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Entry>(&t).ok())
        else {
            continue;
        };
        if alive(&entry) {
            found.push(entry);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
    found.sort_by_key(|e| e.pid);
    found
}

/// Whether the entry's process runs now with the arguments it listed (a reused pid does not).
fn alive(entry: &Entry) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{}/cmdline", entry.pid)) else {
        return false;
    };
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args == entry.args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry(pid: u32, args: Vec<String>) -> Entry {
        Entry {
            pid,
            args,
            cwd: PathBuf::from("/"),
            env: BTreeMap::new(),
            state_dir: PathBuf::from("/var/lib/failover-handler"),
            env_file: PathBuf::from("/opt/application/tmp/ext_cloud.env"),
        }
    }

    #[test]
    fn a_listing_is_found_while_its_process_runs_and_gone_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let me = Entry::of_this_process(Path::new("state"), Path::new("/x.env"));
        assert!(me.state_dir.is_absolute());
        let listing = list(&dir, &me).unwrap();
        let mode = fs::metadata(dir.join(format!("{}.json", me.pid)))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(running(&dir), vec![me.clone()]);
        drop(listing);
        assert!(running(&dir).is_empty());
    }

    #[test]
    fn a_stale_or_reused_pid_is_ignored_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // This process, but listed with other arguments: its pid was reused.
        let reused = entry(
            std::process::id(),
            vec!["run".into(), "-c".into(), "x".into()],
        );
        let _kept = list(dir, &reused).unwrap();
        let gone = entry(u32::MAX - 1, vec![]);
        let stale = dir.join(format!("{}.json", gone.pid));
        fs::write(&stale, serde_json::to_string(&gone).unwrap()).unwrap();
        assert!(running(dir).is_empty());
        assert!(!stale.exists());
    }

    #[test]
    fn the_directory_follows_xdg_runtime_dir() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        assert_eq!(dir(&env), PathBuf::from("/run/user/1000/failover-handler"));
        let relative = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "run".to_string());
        assert_ne!(dir(&relative), PathBuf::from("run/failover-handler"));
    }
}
