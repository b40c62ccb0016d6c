//! What another local user cannot have planted: a directory owned by this effective user and
//! writable by nobody else, a file in it that is this user's and not a symbolic link, a process
//! that is this user's and runs this very binary. Discovery and the state dir trust nothing
//! else; files the handler creates beside others' are made with `O_NOFOLLOW`/`O_EXCL`.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The largest listing read: a daemon's entry is well under a kilobyte.
const MAX_FILE: u64 = 64 * 1024;

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a directory or file is not trusted, in words for a one-line message.
pub fn untrusted(meta: &fs::Metadata) -> Option<String> {
    let uid = euid();
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// A directory that is not a symbolic link, is this user's and is writable by nobody else,
/// opened so that later lookups in it cannot be redirected. `Ok(None)`: it does not exist.
pub fn open_private_dir(path: &Path) -> Result<Option<fs::File>, String> {
    let dir = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(why_not_opened(path, e)),
    };
    let meta = dir.metadata().map_err(|e| e.to_string())?;
    match untrusted(&meta) {
        Some(why) => Err(why),
        None => Ok(Some(dir)),
    }
}

fn why_not_opened(path: &Path, e: io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "it is a symbolic link".to_string(),
        Some(libc::ENOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
            "it is a symbolic link".to_string()
        }
        Some(libc::ENOTDIR) => "it is not a directory".to_string(),
        _ => e.to_string(),
    }
}

/// Reads `name` in the open directory `dir`: a regular file, not a symbolic link, this
/// user's and writable by nobody else.
pub fn read_private_file(dir: &fs::File, name: &OsStr) -> Result<String, String> {
    let file = open_at(dir, name, libc::O_RDONLY | libc::O_NONBLOCK).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            "it is a symbolic link".to_string()
        } else {
            e.to_string()
        }
    })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_string());
    }
    if let Some(why) = untrusted(&meta) {
        return Err(why);
    }
    let mut text = String::new();
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// Opens `name` in `dir` with `flags`, never through a symbolic link.
fn open_at(dir: &fs::File, name: &OsStr, flags: libc::c_int) -> io::Result<fs::File> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    // SAFETY: the directory descriptor is open for the call and the name is NUL-terminated.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { fs::File::from_raw_fd(fd) })
}

/// Removes `name` from the open directory `dir` (never a directory, never through a link).
pub fn remove_at(dir: &fs::File, name: &OsStr) {
    let Ok(name) = CString::new(name.as_bytes()) else {
        return;
    };
    // SAFETY: the directory descriptor is open for the call and the name is NUL-terminated.
    unsafe {
        libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0);
    }
}

/// Whether `pid` is a process of this user running this binary: the same file (device and
/// inode), or, after an upgrade replaced it, the same path that the kernel marks deleted.
pub fn runs_this_binary(pid: u32) -> bool {
    let owned = fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == euid());
    if !owned {
        return false;
    }
    let theirs = format!("/proc/{pid}/exe");
    let same_file = match (fs::metadata(&theirs), fs::metadata("/proc/self/exe")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    same_file
        || match (fs::read_link(&theirs), fs::read_link("/proc/self/exe")) {
            (Ok(a), Ok(b)) => {
                let mut deleted = b.into_os_string();
                deleted.push(" (deleted)");
                a.as_os_str() == deleted
            }
            _ => false,
        }
}

/// Creates `path` exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600): never an existing
/// file, never through a symbolic link.
pub fn create_new(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn a_private_dir_is_trusted_and_others_say_why_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        assert!(open_private_dir(&dir).unwrap().is_none());
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(open_private_dir(&dir).unwrap().is_some());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let why = open_private_dir(&dir).unwrap_err();
        assert_eq!(why, "it is writable by group or others (mode 0770)");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        symlink(&dir, &link).unwrap();
        assert_eq!(
            open_private_dir(&link).unwrap_err(),
            "it is a symbolic link"
        );
    }

    #[test]
    fn a_file_is_read_only_when_it_is_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a.json"), "{}").unwrap();
        symlink(tmp.path().join("a.json"), tmp.path().join("b.json")).unwrap();
        let dir = open_private_dir(tmp.path()).unwrap().unwrap();
        assert_eq!(read_private_file(&dir, OsStr::new("a.json")).unwrap(), "{}");
        assert_eq!(
            read_private_file(&dir, OsStr::new("b.json")).unwrap_err(),
            "it is a symbolic link"
        );
    }

    #[test]
    fn this_process_runs_this_binary_and_kthreadd_does_not() {
        assert!(runs_this_binary(std::process::id()));
        assert!(!runs_this_binary(2));
        assert!(!runs_this_binary(u32::MAX - 1));
    }

    #[test]
    fn create_new_never_follows_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = tmp.path().join("probe");
        symlink(&target, &link).unwrap();
        assert!(create_new(&link).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }
}
