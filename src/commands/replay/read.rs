//! Reading a journal for `replay`: one line at a time, each at most [`MAX_LINE`] bytes, so a
//! journal of any size or a line of any length never fills the memory. A line that is not a
//! record (a record torn by a full disk, garbage, a line past the cap) is skipped and named,
//! or with `--strict` refused.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::config::ConfigError;
use crate::report::journal::Record;

/// The longest journal line read; a record is a few hundred bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// The records of a journal and the lines skipped, each named as `<file> line N: why`.
#[derive(Debug, Default)]
pub struct Journal {
    pub records: Vec<Record>,
    pub skipped: Vec<String>,
}

/// The records of the journal at `path`. A journal that cannot be read or holds no record is
/// an error naming `--journal` and the file; so is, with `strict`, a line that is not a record.
pub fn read_journal(path: &Path, strict: bool) -> Result<Journal, ConfigError> {
    let shown = path.display();
    let unreadable =
        |e: std::io::Error| ConfigError::new("--journal", format!("cannot read {shown}: {e}"));
    let mut reader = BufReader::new(File::open(path).map_err(unreadable)?);
    let mut journal = Journal::default();
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(unreadable)?;
        if read == 0 {
            break;
        }
        n += 1;
        let why = if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            skip_rest_of_line(&mut reader).map_err(unreadable)?;
            format!("longer than {} KiB", MAX_LINE / 1024)
        } else {
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.trim_ascii().is_empty() {
                continue;
            }
            match serde_json::from_slice::<Record>(text) {
                Ok(record) => {
                    journal.records.push(record);
                    continue;
                }
                Err(e) => format!("not a journal record ({e})"),
            }
        };
        let what = format!("{shown} line {n}: {why}");
        if strict {
            return Err(ConfigError::new("--journal", what));
        }
        journal.skipped.push(what);
    }
    if journal.records.is_empty() {
        return Err(ConfigError::new(
            "--journal",
            format!("{shown} holds no journal records"),
        ));
    }
    Ok(journal)
}

/// Reads past the end of the current line without keeping it.
fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(at) = buf.iter().position(|b| *b == b'\n') {
            reader.consume(at + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}
