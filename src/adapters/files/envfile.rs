//! The env file the application's programs source: the record of the active region.
//! Reading is tolerant (the old script's format, `KEY=value` without `export`); writing is
//! atomic (temp file in the same directory, fsync, rename, fsync the directory) and done under
//! an exclusive lock on `.<name>.lock` beside the file, so that writers never overlap and a temp
//! file left by a killed writer can be removed safely before the next write. `switch` commands
//! also queue on `.<name>.switch.lock`, held for a whole switch, restart included, so that the
//! env file's lock is only ever held around a write.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::kernel::region::{Region, is_safe_token};

/// The largest env file we read; anything bigger is not one we wrote and is reported as such.
const MAX_SIZE: u64 = 64 * 1024;

#[derive(Debug, Error)]
pub enum EnvFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is larger than {MAX_SIZE} bytes: not an env file this tool wrote")]
    TooLarge { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write {path} now: another failover-handler is switching it")]
    Busy { path: PathBuf },
}

impl EnvFileError {
    /// A short word for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvFileError::Read { .. } => "read",
            EnvFileError::TooLarge { .. } => "too_large",
            EnvFileError::Write { source, .. } => match source.kind() {
                _ if is_disk_full(source) => "disk_full",
                io::ErrorKind::ReadOnlyFilesystem => "read_only",
                io::ErrorKind::PermissionDenied => "permission",
                io::ErrorKind::NotFound => "no_directory",
                _ => "write",
            },
            EnvFileError::Busy { .. } => "busy",
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// What an env file says, as far as it says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvContents {
    pub region: Option<String>,
    pub cloud: Option<String>,
}

pub use crate::config::EnvFile;

// Reading, writing and locking are this module's; the location and names are the config's.
impl EnvFile {
    /// Reads the file: `Ok(None)` when it does not exist.
    pub fn read(&self) -> Result<Option<EnvContents>, EnvFileError> {
        let read_err = |source| EnvFileError::Read {
            path: self.path.clone(),
            source,
        };
        // Opening a FIFO would block until somebody writes to it: only regular files are read.
        match fs::metadata(&self.path) {
            Ok(meta) if !meta.is_file() => {
                return Err(read_err(io::Error::other("not a regular file")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_SIZE {
            return Err(EnvFileError::TooLarge {
                path: self.path.clone(),
            });
        }
        Ok(Some(self.parse(&String::from_utf8_lossy(&bytes))))
    }

    /// Extracts the two variables from env-file text; other lines are ignored.
    pub fn parse(&self, text: &str) -> EnvContents {
        let mut out = EnvContents::default();
        for line in text.lines() {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(value.trim());
            if !is_safe_token(value, 253) {
                continue;
            }
            if key.trim() == self.cloud_var {
                out.cloud = Some(value.to_string());
            } else if key.trim() == self.region_var {
                out.region = Some(value.to_string());
            }
        }
        out
    }

    /// The exact bytes written for `region`.
    pub fn render(&self, region: &Region) -> String {
        format!(
            "export {}={}\nexport {}={}\n",
            self.cloud_var, region.cloud, self.region_var, region.name
        )
    }

    /// Replaces the file atomically with `region`: readers see the old or the new file, whole.
    /// Never waits: while another process holds the lock (a `switch` in progress) it returns
    /// `Busy`, and the daemon retries at its next tick.
    pub fn write(&self, region: &Region) -> Result<(), EnvFileError> {
        match self.try_lock()? {
            Some(lock) => lock.write(region),
            None => Err(EnvFileError::Busy {
                path: self.path.clone(),
            }),
        }
    }

    /// The lock file beside the env file: `.<name>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let (dir, name) = dir_and_name(&self.path);
        dir.join(format!(".{name}.lock"))
    }

    /// The lock `switch` commands queue on: `.<name>.switch.lock`.
    pub fn switch_lock_path(&self) -> PathBuf {
        let (dir, name) = dir_and_name(&self.path);
        dir.join(format!(".{name}.switch.lock"))
    }

    /// Opens a lock file, never through a symbolic link: the env file's directory may be
    /// writable by others, and a planted link would have the handler create or open the file
    /// of their choosing.
    fn open_lock_file(&self, path: PathBuf) -> Result<fs::File, EnvFileError> {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ELOOP) => EnvFileError::Write {
                    path,
                    source: io::Error::other("it is a symbolic link, which is never followed"),
                },
                _ => self.write_err(source),
            })
    }

    fn open_lock(&self) -> Result<fs::File, EnvFileError> {
        self.open_lock_file(self.lock_path())
    }

    /// Takes `switch`'s queue lock if it is free: `Ok(None)` while another switch holds it.
    /// The daemon never takes it, so holding it through a restart blocks no failover.
    pub fn try_switch_turn(&self) -> Result<Option<SwitchTurn>, EnvFileError> {
        let file = self.open_lock_file(self.switch_lock_path())?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SwitchTurn { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(self.write_err(e)),
        }
    }

    /// Waits for `switch`'s queue lock, so that two switches run one after the other.
    pub fn switch_turn(&self) -> Result<SwitchTurn, EnvFileError> {
        let file = self.open_lock_file(self.switch_lock_path())?;
        file.lock().map_err(|e| self.write_err(e))?;
        Ok(SwitchTurn { _file: file })
    }

    fn write_err(&self, source: io::Error) -> EnvFileError {
        EnvFileError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Waits for the exclusive lock on the env file (for `switch`, which holds it across its
    /// write and its pin; the daemon holds it only while it writes).
    pub fn lock(&self) -> Result<EnvLock<'_>, EnvFileError> {
        let file = self.open_lock()?;
        file.lock().map_err(|e| self.write_err(e))?;
        Ok(EnvLock {
            env_file: self,
            _file: file,
        })
    }

    /// Takes the exclusive lock if it is free: `Ok(None)` while another process holds it.
    pub fn try_lock(&self) -> Result<Option<EnvLock<'_>>, EnvFileError> {
        let file = self.open_lock()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(EnvLock {
                env_file: self,
                _file: file,
            })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(self.write_err(e)),
        }
    }

    /// Removes temp files a killed writer left beside the env file, unless a writer is at
    /// work; returns how many were removed.
    pub fn remove_stale_temp_files(&self) -> Result<usize, EnvFileError> {
        Ok(self
            .try_lock()?
            .map_or(0, |lock| lock.remove_stale_temp_files()))
    }
}

/// A `switch`'s turn in the queue of switches, held: released when dropped or with the process.
pub struct SwitchTurn {
    _file: fs::File,
}

/// The env file's lock, held: the only way to write it. Released when dropped (and by the
/// kernel when the process dies, so a killed writer never blocks the next one).
pub struct EnvLock<'a> {
    env_file: &'a EnvFile,
    _file: fs::File,
}

impl EnvLock<'_> {
    /// Removes stale temp files, then replaces the env file atomically with `region`.
    pub fn write(&self, region: &Region) -> Result<(), EnvFileError> {
        let f = self.env_file;
        self.remove_stale_temp_files();
        write_atomic(&f.path, f.render(region).as_bytes(), 0o644).map_err(|e| f.write_err(e))
    }

    /// Removes `.<name>.*.tmp` files beside the env file: with the lock held, no writer owns
    /// them, so they were left by one that was killed between creating and renaming.
    pub fn remove_stale_temp_files(&self) -> usize {
        let (dir, name) = dir_and_name(&self.env_file.path);
        remove_temp_files(dir, &name)
    }
}

/// The directory of `path` (`.` when it has none) and its file name.
fn dir_and_name(path: &Path) -> (&Path, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Removes the temp files `write_atomic` makes for `name` in `dir` (`.<name>.*.tmp`); returns
/// how many it removed. Errors (an unreadable directory) count as nothing removed.
pub fn remove_temp_files(dir: &Path, name: &str) -> usize {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".tmp") && n.len() > prefix.len() + 4
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// Writes `bytes` to `path` through a temp file in the same directory: fsync, rename over
/// `path`, fsync the directory. On error the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = dir_and_name(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env_file(path: PathBuf) -> EnvFile {
        EnvFile {
            path,
            cloud_var: "EXT_CLOUD".into(),
            region_var: "EXT_REGION".into(),
        }
    }

    #[test]
    fn reads_every_accepted_format() {
        let f = env_file(PathBuf::from("unused"));
        let want = EnvContents {
            region: Some("EU".into()),
            cloud: Some("cloud.eu.ext.com".into()),
        };
        for text in [
            "export EXT_CLOUD=cloud.eu.ext.com\nexport EXT_REGION=EU\n",
            "export EXT_CLOUD=cloud.eu.ext.com\nexport EXT_REGION=EU",
            "EXT_CLOUD=cloud.eu.ext.com\nEXT_REGION=EU",
            "# written by hand\n\nEXT_REGION=\"EU\"\r\nexport EXT_CLOUD='cloud.eu.ext.com'\r\n",
        ] {
            assert_eq!(f.parse(text), want, "text {text:?}");
        }
        assert_eq!(
            f.parse("EXT_REGION=$(reboot)\nEXT_CLOUD=a;b"),
            EnvContents::default()
        );
    }

    #[test]
    fn writes_atomically_with_mode_0644_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        assert_eq!(f.read().unwrap(), None);
        let eu = Region::new("EU", "cloud.eu.ext.com").unwrap();
        f.write(&eu).unwrap();
        let bytes = fs::read_to_string(&f.path).unwrap();
        assert_eq!(
            bytes,
            "export EXT_CLOUD=cloud.eu.ext.com\nexport EXT_REGION=EU\n"
        );
        let mode = fs::metadata(&f.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".ext_cloud.env.lock", "ext_cloud.env"]);
        assert_eq!(f.read().unwrap().unwrap().region.as_deref(), Some("EU"));
    }

    #[test]
    fn a_write_removes_temp_files_left_by_a_killed_writer_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        for name in [".ext_cloud.env.a1B2c3.tmp", ".ext_cloud.env.zzzzzz.tmp"] {
            fs::write(dir.path().join(name), "export EXT_CLOUD=half").unwrap();
        }
        let keep = [
            ".other.env.abcdef.tmp",
            "ext_cloud.env.tmp",
            ".ext_cloud.env.tmp",
        ];
        for name in keep {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(f.remove_stale_temp_files().unwrap(), 2);
        fs::write(dir.path().join(".ext_cloud.env.qwerty.tmp"), "x").unwrap();
        f.write(&Region::new("EU", "cloud.eu.ext.com").unwrap())
            .unwrap();
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name} removed");
        }
        assert!(!dir.path().join(".ext_cloud.env.qwerty.tmp").exists());
    }

    #[test]
    fn a_held_lock_makes_the_daemon_write_busy_and_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        let eu = Region::new("EU", "cloud.eu.ext.com").unwrap();
        f.write(&eu).unwrap();
        let held = fs::File::open(f.lock_path()).unwrap();
        held.lock().unwrap();
        let nam = Region::new("NAM", "cloud.nam.ext.com").unwrap();
        let err = f.write(&nam).unwrap_err();
        assert_eq!(err.kind(), "busy");
        assert!(f.try_lock().unwrap().is_none());
        assert_eq!(f.remove_stale_temp_files().unwrap(), 0);
        assert_eq!(f.read().unwrap().unwrap().region.as_deref(), Some("EU"));
        drop(held);
        f.lock().unwrap().write(&nam).unwrap();
        assert_eq!(f.read().unwrap().unwrap().region.as_deref(), Some("NAM"));
    }

    #[test]
    fn a_switch_turn_queues_switches_and_never_makes_the_daemon_write_busy() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        let turn = f.try_switch_turn().unwrap().unwrap();
        assert!(f.try_switch_turn().unwrap().is_none());
        let nam = Region::new("NAM", "cloud.nam.ext.com").unwrap();
        f.write(&nam).unwrap();
        assert_eq!(f.read().unwrap().unwrap().region.as_deref(), Some("NAM"));
        drop(turn);
        assert!(f.try_switch_turn().unwrap().is_some());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        let made = std::process::Command::new("mkfifo")
            .arg(&f.path)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(f.read().unwrap_err().kind(), "read");
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("missing/ext_cloud.env"));
        let err = f
            .write(&Region::new("EU", "cloud.eu.ext.com").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), "no_directory");
        assert!(err.to_string().contains("missing/ext_cloud.env"));
    }

    #[test]
    fn huge_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("ext_cloud.env"));
        fs::write(&f.path, vec![b'x'; 100_000]).unwrap();
        assert_eq!(f.read().unwrap_err().kind(), "too_large");
    }

    proptest! {
        #[test]
        fn reader_never_panics_and_only_returns_safe_values(text in "(?s).{0,400}") {
            let parsed = env_file(PathBuf::from("unused")).parse(&text);
            for v in [parsed.region, parsed.cloud].into_iter().flatten() {
                prop_assert!(is_safe_token(&v, 253));
            }
        }
    }
}
