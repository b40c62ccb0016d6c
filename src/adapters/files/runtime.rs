//! Where a running daemon can be found: each daemon lists itself in the runtime directory
//! (see [`dir`]) with how it was started, so that `status`, `check`, `switch`, `pause` and
//! `resume` act on it without repeating its `-c` or `--state-dir`. The entry is removed when
//! the daemon stops; one whose process is gone is ignored and cleared. Since a listing lends a
//! config (and so a supervisorctl to run), only what another user cannot have planted counts.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::envfile::write_atomic;
use super::trust;

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

/// The variable that names the listing directory itself, for tests and for operators who
/// run several daemons apart; the directory it names is trusted only as any other is.
pub const DIR_VAR: &str = "FAILOVER_HANDLER_RUNTIME_DIR";

/// The listing directory for this user, from the environment as `env` gives it.
pub fn dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    dir_for(env, trust::euid())
}

/// `FAILOVER_HANDLER_RUNTIME_DIR`; else, for root, `/run/failover-handler` whatever
/// `XDG_RUNTIME_DIR` says (so that `su`, `sudo` and SSH sessions find the same daemon); else
/// `$XDG_RUNTIME_DIR/failover-handler`; else `/tmp/failover-handler-<uid>`.
fn dir_for(env: &dyn Fn(&str) -> Option<String>, uid: u32) -> PathBuf {
    let absolute = |name| env(name).filter(|d: &String| Path::new(d).is_absolute());
    if let Some(dir) = absolute(DIR_VAR) {
        return PathBuf::from(dir);
    }
    if uid == 0 {
        return PathBuf::from("/run/failover-handler");
    }
    match absolute("XDG_RUNTIME_DIR") {
        Some(base) => Path::new(&base).join("failover-handler"),
        None => PathBuf::from(format!("/tmp/failover-handler-{uid}")),
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

/// Lists `entry` in `dir` (created 0700 if missing; refused unless this user's and writable
/// by nobody else).
pub fn list(dir: &Path, entry: &Entry) -> io::Result<Listing> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Err(why) = trust::open_private_dir(dir) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    }
    let path = dir.join(format!("{}.json", entry.pid));
    let text = serde_json::to_string_pretty(entry).map_err(io::Error::other)?;
    write_atomic(&path, format!("{text}\n").as_bytes(), 0o600)?;
    Ok(Listing { path })
}

/// What a look in the listing directory found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The daemons that run now, by pid.
    pub daemons: Vec<Entry>,
    /// One line for each directory or entry not trusted, saying why it was skipped.
    pub skipped: Vec<String>,
}

/// The daemons listed in `dir` whose process is this user's, runs this binary and has the
/// listed arguments. Only a directory and entries of this user's, writable by nobody else and
/// not symbolic links, are read; entries of processes that are gone are removed.
pub fn running(dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let handle = match trust::open_private_dir(dir) {
        Ok(Some(handle)) => handle,
        Ok(None) => return scan,
        Err(why) => {
            scan.skipped
                .push(format!("skipped the listing dir {}: {why}", dir.display()));
            return scan;
        }
    };
    let Ok(read) = fs::read_dir(dir) else {
        return scan;
    };
    for item in read.flatten() {
        let name = item.file_name();
        if Path::new(&name).extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let path = dir.join(&name);
        let entry = trust::read_private_file(&handle, &name).and_then(|text| {
            serde_json::from_str::<Entry>(&text).map_err(|e| format!("it is not a listing: {e}"))
        });
        let why = match entry {
            Ok(entry) => match alive(&entry) {
                Ok(()) => {
                    scan.daemons.push(entry);
                    continue;
                }
                Err(stale) => {
                    trust::remove_at(&handle, &name);
                    match stale {
                        Some(why) => why,
                        None => continue,
                    }
                }
            },
            Err(why) => why,
        };
        scan.skipped
            .push(format!("skipped the listing {}: {why}", path.display()));
    }
    scan.daemons.sort_by_key(|e| e.pid);
    scan
}

/// Whether the entry's process runs now: this user's, this binary, with the arguments it
/// listed (a reused pid does not count, nor does kthreadd's empty command line). `Err(None)`:
/// the process is gone; `Err(Some(why))`: another program has its pid.
fn alive(entry: &Entry) -> Result<(), Option<String>> {
    let pid = entry.pid;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(None);
    }
    if !trust::runs_this_binary(pid) {
        return Err(Some(format!(
            "pid {pid} is not a running failover-handler of this user"
        )));
    }
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return Err(None);
    };
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args == entry.args {
        Ok(())
    } else {
        Err(None)
    }
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
        assert_eq!(running(&dir).daemons, vec![me.clone()]);
        drop(listing);
        assert_eq!(running(&dir), Scan::default());
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
        assert_eq!(running(dir), Scan::default());
        assert!(!stale.exists());
    }

    #[test]
    fn the_directory_follows_xdg_runtime_dir_except_for_root() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        let run = PathBuf::from("/run/user/1000/failover-handler");
        assert_eq!(dir_for(&env, 1000), run);
        assert_eq!(dir_for(&env, 0), PathBuf::from("/run/failover-handler"));
        let none = |_: &str| None;
        assert_eq!(
            dir_for(&none, 1000),
            PathBuf::from("/tmp/failover-handler-1000")
        );
        let relative = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "run".to_string());
        assert_eq!(
            dir_for(&relative, 1000),
            PathBuf::from("/tmp/failover-handler-1000")
        );
        let named = |k: &str| match k {
            DIR_VAR => Some("/srv/fh/run".to_string()),
            _ => env(k),
        };
        assert_eq!(dir_for(&named, 0), PathBuf::from("/srv/fh/run"));
        assert_eq!(dir_for(&named, 1000), PathBuf::from("/srv/fh/run"));
    }

    #[test]
    fn a_listing_dir_open_to_others_is_neither_used_nor_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let me = Entry::of_this_process(Path::new("/state"), Path::new("/x.env"));
        assert!(list(&dir, &me).is_err());
        let text = serde_json::to_string(&me).unwrap();
        fs::write(dir.join(format!("{}.json", me.pid)), text).unwrap();
        let scan = running(&dir);
        assert!(scan.daemons.is_empty());
        assert_eq!(
            scan.skipped,
            [format!(
                "skipped the listing dir {}: it is writable by group or others (mode 0777)",
                dir.display()
            )]
        );
    }
}
