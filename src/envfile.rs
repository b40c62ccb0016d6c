//! The env file the application's programs source: the record of the active region.
//! Reading is tolerant (the old script's format, `KEY=value` without `export`); writing is
//! atomic (temp file in the same directory, fsync, rename, fsync the directory).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::region::{Region, is_safe_token};

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
}

impl EnvFileError {
    /// A short word for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvFileError::Read { .. } => "read",
            EnvFileError::TooLarge { .. } => "too_large",
            EnvFileError::Write { source, .. } if is_disk_full(source) => "disk_full",
            EnvFileError::Write { .. } => "write",
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

/// The env file's location and the names of its two variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub cloud_var: String,
    pub region_var: String,
}

impl EnvFile {
    /// Reads the file: `Ok(None)` when it does not exist.
    pub fn read(&self) -> Result<Option<EnvContents>, EnvFileError> {
        let read_err = |source| EnvFileError::Read {
            path: self.path.clone(),
            source,
        };
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
    pub fn write(&self, region: &Region) -> Result<(), EnvFileError> {
        write_atomic(&self.path, self.render(region).as_bytes(), 0o644).map_err(|source| {
            EnvFileError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
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
        let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(f.read().unwrap().unwrap().region.as_deref(), Some("EU"));
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let f = env_file(dir.path().join("missing/ext_cloud.env"));
        let err = f
            .write(&Region::new("EU", "cloud.eu.ext.com").unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), "write");
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
