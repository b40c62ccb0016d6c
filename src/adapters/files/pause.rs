//! Pausing automatic switching for maintenance. `pause [--for DUR]` writes `<state-dir>/pause.json`
//! with the wall-clock end (so a pause survives restarts of the daemon), `resume` removes it.
//! The running daemon reads the file at every tick through a [`Gate`]: while paused it keeps
//! probing and reporting but holds back every automatic failover (said once per outage); a pause
//! with an end stops by itself and says so.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::state::StateDir;
use crate::config::{duration_text, timestamp};

pub const PAUSE_FILE: &str = "pause.json";

/// A pause as the file holds it: since when, and until when (none: until `resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub since: SystemTime,
    pub until: Option<SystemTime>,
}

#[derive(Serialize, Deserialize)]
struct PauseFile {
    since: String,
    until: Option<String>,
}

#[derive(Debug, Error)]
pub enum PauseError {
    #[error(
        "the state directory {0} is not usable, so there is nowhere to keep the pause (see --state-dir)"
    )]
    NoStateDir(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: String, source: io::Error },
}

/// Whether automatic switching is paused at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseState {
    Off,
    On(Pause),
    /// The pause had an end and it has passed.
    Ended(Pause),
}

impl Pause {
    /// Where this pause stands at `now` (wall clock).
    pub fn state_at(self, now: SystemTime) -> PauseState {
        match self.until {
            Some(until) if until <= now => PauseState::Ended(self),
            _ => PauseState::On(self),
        }
    }

    /// Time left at `now`, for a pause with an end.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.until
            .map(|u| u.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// The pause as a sentence fragment: `until <time> (<left> left)` or `until resume`.
    pub fn describe(&self, now: SystemTime) -> String {
        match (self.until, self.remaining(now)) {
            (Some(until), Some(left)) => format!(
                "until {} ({} left)",
                timestamp(until),
                duration_text(Duration::from_secs(left.as_secs()))
            ),
            _ => "until `failover-handler resume`".to_string(),
        }
    }

    pub fn to_json(self) -> String {
        let file = PauseFile {
            since: timestamp(self.since),
            until: self.until.map(timestamp),
        };
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Parses the pause file; `None` when it is not one.
    pub fn from_json(text: &str) -> Option<Pause> {
        let file: PauseFile = serde_json::from_str(text).ok()?;
        let since = humantime::parse_rfc3339(&file.since).ok()?;
        let until = match file.until {
            Some(u) => Some(humantime::parse_rfc3339(&u).ok()?),
            None => None,
        };
        Some(Pause { since, until })
    }
}

/// Reads the pause in `state`: `Off` when there is no file. A file that cannot be parsed still
/// means somebody asked for a pause: it counts as a pause without an end.
pub fn read(state: &StateDir, now: SystemTime) -> PauseState {
    let Some(path) = state.file(PAUSE_FILE) else {
        return PauseState::Off;
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Pause::from_json(&text)
            .unwrap_or(Pause {
                since: std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or(now),
                until: None,
            })
            .state_at(now),
        Err(_) => PauseState::Off,
    }
}

/// `pause [--for DUR]`: writes the pause file in `dir` (created if missing).
pub fn pause(dir: &Path, now: SystemTime, duration: Option<Duration>) -> Result<Pause, PauseError> {
    let state = StateDir::open(dir);
    let path = state
        .file(PAUSE_FILE)
        .ok_or_else(|| PauseError::NoStateDir(dir.display().to_string()))?;
    let pause = Pause {
        since: now,
        until: duration.map(|d| now + d),
    };
    state
        .write(PAUSE_FILE, format!("{}\n", pause.to_json()).as_bytes())
        .map_err(|source| PauseError::Write {
            path: path.display().to_string(),
            source,
        })?;
    Ok(pause)
}

/// `resume`: removes the pause file in `dir`; returns the pause that was in force, if any.
pub fn resume(dir: &Path, now: SystemTime) -> Result<Option<Pause>, PauseError> {
    let state = &StateDir::read_only(dir);
    let before = match read(state, now) {
        PauseState::On(p) => Some(p),
        _ => None,
    };
    state
        .remove(PAUSE_FILE)
        .map_err(|source| PauseError::Remove {
            path: state
                .file(PAUSE_FILE)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        })?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn state_table() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        let open = Pause {
            since: t(100),
            until: None,
        };
        let timed = Pause {
            since: t(100),
            until: Some(t(200)),
        };
        assert_eq!(open.state_at(t(10_000)), PauseState::On(open));
        assert_eq!(timed.state_at(t(150)), PauseState::On(timed));
        assert_eq!(timed.state_at(t(200)), PauseState::Ended(timed));
        assert_eq!(timed.remaining(t(150)), Some(Duration::from_secs(50)));
        assert_eq!(timed.remaining(t(250)), Some(Duration::ZERO));
        assert!(timed.describe(t(150)).contains("50s left"));
        assert!(open.describe(t(150)).contains("resume"));
    }

    #[test]
    fn file_round_trip_keeps_wall_clock_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let state = StateDir::read_only(&path);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(read(&state, now), PauseState::Off);
        let p = pause(&path, now, Some(Duration::from_secs(1800))).unwrap();
        let state = StateDir::read_only(&path);
        let text = std::fs::read_to_string(state.file(PAUSE_FILE).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"since\":\"2023-11-14T22:13:20.000Z\",\"until\":\"2023-11-14T22:43:20.000Z\"}\n"
        );
        assert_eq!(
            crate::adapters::files::state::mode(&state.file(PAUSE_FILE).unwrap()),
            Some(0o600)
        );
        assert_eq!(
            read(&state, now + Duration::from_secs(60)),
            PauseState::On(p)
        );
        assert_eq!(
            read(&state, now + Duration::from_secs(1800)),
            PauseState::Ended(p)
        );
        assert_eq!(resume(&path, now).unwrap(), Some(p));
        assert_eq!(read(&state, now), PauseState::Off);
        assert_eq!(resume(&path, now).unwrap(), None);
    }

    #[test]
    fn a_garbled_pause_file_still_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("s"));
        state.write(PAUSE_FILE, b"not json").unwrap();
        assert!(matches!(
            read(&state, SystemTime::now()),
            PauseState::On(Pause { until: None, .. })
        ));
    }
}
