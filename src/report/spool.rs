//! The Datadog backlog: decisions the intake has not accepted yet, oldest first. It is bounded
//! in entries and bytes (past either, the oldest go first, and the caller counts them), and
//! while the intake cannot be reached it is kept in `<state-dir>/datadog-spool.jsonl` (mode
//! 0600, one entry a line, written atomically), so that a restart of the handler loses none.
//! The batch on its way to the intake (`in_flight`) is kept apart: a retry sends exactly it.

use std::collections::VecDeque;
use std::io;

use crate::adapters::files::StateDir;
use crate::report::batch::take_batch;

pub const SPOOL_FILE: &str = "datadog-spool.jsonl";
/// Entries kept at most, in flight included.
pub const MAX_ENTRIES: usize = 10_000;
/// Bytes kept at most (of entry text), in flight included.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

pub struct Spool {
    waiting: VecDeque<String>,
    in_flight: Vec<String>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    state: Option<StateDir>,
    on_disk: bool,
}

impl Spool {
    /// A backlog kept in `state` (none: memory only), starting with what a previous run left.
    pub fn open(state: Option<StateDir>, max_entries: usize, max_bytes: usize) -> Self {
        let mut spool = Spool {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            on_disk: false,
            state,
        };
        if let Some(text) = spool.state.as_ref().and_then(|s| s.read(SPOOL_FILE)) {
            spool.on_disk = true;
            spool.push(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from),
            );
        }
        spool
    }

    /// Entries waiting or in flight.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries waiting behind the batch in flight.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether a file holds the backlog.
    pub fn on_disk(&self) -> bool {
        self.on_disk
    }

    /// Appends `entries`; returns how many of the oldest waiting ones were dropped to stay
    /// within the bounds.
    pub fn push(&mut self, entries: impl IntoIterator<Item = String>) -> u64 {
        for e in entries {
            self.bytes += e.len();
            self.waiting.push_back(e);
        }
        let mut dropped = 0;
        while (self.len() > self.max_entries || self.bytes > self.max_bytes)
            && let Some(old) = self.waiting.pop_front()
        {
            self.bytes -= old.len();
            dropped += 1;
        }
        dropped
    }

    /// The batch to send: the one in flight, or a new one off the front.
    pub fn batch(&mut self, max_entries: usize, max_bytes: usize) -> &[String] {
        if self.in_flight.is_empty() {
            self.in_flight = take_batch(&mut self.waiting, max_entries, max_bytes);
        }
        &self.in_flight
    }

    /// The batch in flight was accepted (or given up): it goes.
    pub fn done(&mut self) -> usize {
        let n = self.in_flight.len();
        self.bytes -= self.in_flight.iter().map(String::len).sum::<usize>();
        self.in_flight.clear();
        n
    }

    /// Splits the batch in flight: its second half goes back to the front of the queue, so
    /// that one bad entry can be found and dropped without the others.
    pub fn halve(&mut self) {
        let back = self.in_flight.split_off(self.in_flight.len().div_ceil(2));
        for e in back.into_iter().rev() {
            self.waiting.push_front(e);
        }
    }

    /// Writes the backlog to the state dir (or removes the file once it is empty).
    pub fn save(&mut self) -> io::Result<()> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        if self.is_empty() {
            if self.on_disk {
                state.remove(SPOOL_FILE)?;
                self.on_disk = false;
            }
            return Ok(());
        }
        let mut text = String::with_capacity(self.bytes + self.len());
        for e in self.in_flight.iter().chain(self.waiting.iter()) {
            text.push_str(e);
            text.push('\n');
        }
        state.write(SPOOL_FILE, text.as_bytes())?;
        self.on_disk = true;
        Ok(())
    }

    /// Whether there is somewhere to keep the backlog across a restart.
    pub fn can_persist(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.path().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(r: std::ops::Range<usize>) -> Vec<String> {
        r.map(|i| format!("{{\"n\":{i}}}")).collect()
    }

    #[test]
    fn bounded_oldest_first_and_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path());
        let mut s = Spool::open(Some(state.clone()), 5, 1 << 20);
        assert_eq!(s.push(entries(0..3)), 0);
        assert_eq!(s.batch(2, 1 << 20).to_vec(), entries(0..2));
        assert_eq!(
            s.push(entries(3..7)),
            2,
            "two waiting ones went, not the batch in flight"
        );
        assert_eq!(s.len(), 5);
        s.save().unwrap();
        let path = dir.path().join(SPOOL_FILE);
        assert_eq!(
            crate::adapters::files::mode(&path),
            Some(0o600),
            "the spool is private"
        );
        let mut again = Spool::open(Some(state), 5, 1 << 20);
        let all: Vec<String> = again.batch(10, 1 << 20).to_vec();
        assert_eq!(all, [entries(0..2), entries(4..7)].concat());
        assert_eq!(again.done(), 5);
        again.save().unwrap();
        assert!(!path.exists(), "an empty backlog leaves no file");
    }

    #[test]
    fn bytes_bound_and_halving() {
        let mut s = Spool::open(None, 100, 30);
        assert_eq!(s.push(entries(0..5)), 1, "{}", s.len());
        assert_eq!(s.batch(10, 1000).len(), 4);
        s.halve();
        assert_eq!(s.batch(10, 1000).to_vec(), entries(1..3));
        assert_eq!(s.waiting(), 2);
        s.done();
        assert_eq!(s.batch(10, 1000).to_vec(), entries(3..5));
    }
}
