//! The decision journal: every decision (outage started or ended, switch, restart result, pause
//! and resume) as one JSON line in `<state-dir>/journal.jsonl`, mode 0600. A thread of its own
//! writes it, fed by a bounded channel that never waits: a slow or full disk loses journal lines
//! (counted), never a failover. The file is bounded: past `max_bytes` it becomes
//! `journal.jsonl.1` (replacing the previous one) and a new file begins.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{info, warn};

pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The journal's size before it is rotated; the journal and its one rotated file stay below
/// twice this.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Decisions waiting for the writer; past this they are dropped and counted.
const QUEUE: usize = 1024;

pub use crate::config::timestamp;

/// The version of every JSON document the handler writes for machines: `/status`, `/history`,
/// `status --json` and the journal records (each carries it as `format_version`; the shapes
/// are in docs/schemas/). It grows when a field changes meaning or goes away; added fields do
/// not change it.
pub const FORMAT_VERSION: u32 = 1;

/// [`FORMAT_VERSION`], for serde defaults: what was written before the field existed is
/// version 1.
pub fn format_version() -> u32 {
    FORMAT_VERSION
}

/// The level of a decision, as the log lines name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Told in the log line only (at `FAILOVER_HANDLER_LOG=debug`), never journaled.
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One decision: when, how serious, which (`event`), a sentence for people, and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub timestamp: String,
    pub level: String,
    pub event: String,
    pub message: String,
    /// The version of the record's shape (docs/schemas/journal-record.json).
    #[serde(default = "format_version")]
    pub format_version: u32,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn new(at: SystemTime, level: Level, event: &str, message: impl Into<String>) -> Self {
        Record {
            timestamp: timestamp(at),
            level: level.as_str().to_string(),
            event: event.to_string(),
            message: message.into(),
            format_version: FORMAT_VERSION,
            fields: Map::new(),
        }
    }

    /// Adds a field; `None` values are left out.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        if !value.is_null() {
            self.fields.insert(key.to_string(), value);
        }
        self
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The record as one JSON object (what the journal line and the Datadog entry start from).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The sending side of the journal: hands records to the writer thread without waiting.
#[derive(Clone)]
pub struct Journal {
    tx: SyncSender<Record>,
    dropped: Counter,
    warned: Arc<AtomicBool>,
}

impl Journal {
    /// Starts the writer thread for `<dir>/journal.jsonl`; it ends when every `Journal` is gone
    /// and the queue is written out, and drops `on_exit` as it ends.
    pub fn start<G: Send + 'static>(
        dir: &Path,
        max_bytes: u64,
        dropped: Counter,
        on_exit: G,
    ) -> io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = sync_channel(QUEUE);
        let writer = Writer {
            path: dir.join(JOURNAL_FILE),
            max_bytes,
            file: None,
            size: 0,
            failing: false,
        };
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let _on_exit = on_exit;
                writer.run(rx)
            })?;
        Ok((
            Journal {
                tx,
                dropped,
                warned: Arc::new(AtomicBool::new(false)),
            },
            handle,
        ))
    }

    /// Queues a record; when the writer is behind by `QUEUE` records, drops it and counts it.
    pub fn record(&self, record: Record) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.inc();
                if !self.warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        event = "journal_behind",
                        "The journal writer is behind (slow disk?): dropping journal lines rather than waiting; see failover_handler_journal_dropped_total"
                    );
                }
            }
        }
    }
}

struct Writer {
    path: PathBuf,
    max_bytes: u64,
    file: Option<File>,
    size: u64,
    /// A write failed and was reported; the next success is reported too.
    failing: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Record>) {
        while let Ok(first) = rx.recv() {
            self.write(&first);
            while let Ok(more) = rx.try_recv() {
                self.write(&more);
            }
            if let Some(f) = &self.file {
                let _ = f.sync_data();
            }
        }
    }

    fn write(&mut self, record: &Record) {
        let mut line = match serde_json::to_string(record) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push('\n');
        match self.append(line.as_bytes()) {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    info!(event = "journal_recovered", path = %self.path.display(), "Writing the journal {} works again", self.path.display());
                }
            }
            Err(e) => {
                self.file = None;
                if !self.failing {
                    self.failing = true;
                    warn!(event = "journal_write_failed", path = %self.path.display(), error = %e, "Cannot write the journal {} ({e}); decisions still happen and are logged", self.path.display());
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_some() && self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
            self.file = None;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            fs::rename(&self.path, rotated)?;
        }
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            self.size = whole_records(&file)?;
            self.file = Some(file);
            if self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
                return self.append(bytes);
            }
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("journal not open"))?;
        // One write(2) of the whole line on the O_APPEND descriptor: a record is in the file
        // whole or, after a short or failed write, taken back to the last record boundary.
        let before = file.metadata()?.len();
        let written = file.write(bytes);
        if let Ok(n) = written
            && n == bytes.len()
        {
            self.size = before + n as u64;
            return Ok(());
        }
        let _ = file.set_len(before);
        match written {
            Err(e) => Err(e),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {n} of {} bytes written", bytes.len()),
            )),
        }
    }
}

/// Cuts a record that a failed write left torn at the end of the journal (when taking it
/// back failed too): returns the size, which ends with a whole line.
fn whole_records(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata()?.len();
    let mut end = size;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.read_exact_at(buf, start)?;
        if end == size && buf.last() == Some(&b'\n') {
            return Ok(size);
        }
        if let Some(at) = buf.iter().rposition(|b| *b == b'\n') {
            let keep = start + at as u64 + 1;
            file.set_len(keep)?;
            return Ok(keep);
        }
        end = start;
    }
    if size > 0 {
        file.set_len(0)?;
    }
    Ok(0)
}

/// The last `n` records of the journal in `dir` (the rotated file first), oldest first; lines
/// that are not records are skipped.
pub fn tail(dir: &Path, n: usize) -> Vec<Record> {
    let current = dir.join(JOURNAL_FILE);
    let mut rotated = current.clone().into_os_string();
    rotated.push(".1");
    let mut records = std::collections::VecDeque::with_capacity(n);
    for path in [PathBuf::from(rotated), current] {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            if let Ok(r) = serde_json::from_str::<Record>(&line) {
                if records.len() == n {
                    records.pop_front();
                }
                records.push_back(r);
            }
        }
    }
    records.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(i: u64) -> Record {
        Record::new(
            UNIX_EPOCH + Duration::from_secs(i),
            Level::Warn,
            "switch",
            format!("switch {i}"),
        )
        .with("from", "NAM")
        .with("to", "EU")
        .with("failed_for_ms", i)
        .with("pinned", Value::Null)
    }

    #[test]
    fn records_are_flat_json_lines_without_nulls() {
        // The five fixed keys first, then the fields in name order.
        let r = record(1);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"timestamp":"1970-01-01T00:00:01.000Z","level":"WARN","event":"switch","message":"switch 1","format_version":1,"failed_for_ms":1,"from":"NAM","to":"EU"}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
    }

    #[test]
    fn writes_private_lines_rotates_at_the_bound_and_reads_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = Counter::default();
        let line_len = serde_json::to_string(&record(10)).unwrap().len() as u64 + 1;
        let (journal, thread) =
            Journal::start(dir.path(), line_len * 5, dropped.clone(), ()).unwrap();
        for i in 10..22 {
            journal.record(record(i));
        }
        drop(journal);
        thread.join().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        assert_eq!(crate::adapters::files::mode(&path), Some(0o600));
        let current = fs::read_to_string(&path).unwrap();
        let rotated = fs::read_to_string(dir.path().join("journal.jsonl.1")).unwrap();
        assert_eq!(current.lines().count(), 2, "{current}");
        assert_eq!(rotated.lines().count(), 5, "{rotated}");
        assert!(fs::metadata(&path).unwrap().len() <= line_len * 5);
        let tail = tail(dir.path(), 4);
        let ids: Vec<u64> = tail
            .iter()
            .map(|r| r.fields["failed_for_ms"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [18, 19, 20, 21]);
        assert_eq!(dropped.get(), 0);
    }

    #[test]
    fn an_unwritable_journal_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let (journal, thread) =
            Journal::start(&blocker, MAX_BYTES, Counter::default(), ()).unwrap();
        journal.record(record(1));
        drop(journal);
        thread.join().unwrap();
        assert!(tail(&blocker, 10).is_empty());
    }

    #[test]
    fn a_torn_record_at_the_end_is_cut_at_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let long = "y".repeat(5000);
        for (given, kept) in [
            (format!("a\n{long}\n{{\"torn"), format!("a\n{long}\n")),
            (format!("a\nb{long}"), "a\n".to_string()),
            ("a\nb\n".to_string(), "a\nb\n".to_string()),
            ("torn".to_string(), String::new()),
            (String::new(), String::new()),
        ] {
            fs::write(&path, &given).unwrap();
            let file = OpenOptions::new()
                .append(true)
                .read(true)
                .open(&path)
                .unwrap();
            assert_eq!(whole_records(&file).unwrap(), kept.len() as u64);
            assert_eq!(fs::read_to_string(&path).unwrap(), kept);
        }
    }
}
