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
use tokio::time::Instant;
use tracing::{info, warn};

use crate::adapters::state::StateDir;
use crate::config::human;
use crate::kernel::region::Region;
use crate::report::journal::timestamp;
use crate::report::observer::Observer;

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
                human(Duration::from_secs(left.as_secs()))
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

/// The daemon's side of the pause: what it last saw in the file, and which outage's failover
/// it already said it holds back.
#[derive(Debug)]
pub struct Gate {
    state: StateDir,
    current: Option<Pause>,
    held: Option<Instant>,
}

impl Gate {
    pub fn new(state: StateDir) -> Self {
        Gate {
            state,
            current: None,
            held: None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.current.is_some()
    }

    /// Re-reads the pause file (off the runtime thread) and reports what changed: paused,
    /// resumed, or ended by itself (then the file is removed).
    pub async fn refresh(&mut self, obs: &mut Observer) {
        let state = self.state.clone();
        let now = SystemTime::now();
        let read = tokio::task::spawn_blocking(move || {
            let s = read(&state, now);
            if let PauseState::Ended(_) = s {
                let _ = state.remove(PAUSE_FILE);
            }
            s
        })
        .await
        .unwrap_or(PauseState::Off);
        let next = match read {
            PauseState::On(p) => Some(p),
            PauseState::Off | PauseState::Ended(_) => None,
        };
        if next == self.current {
            return;
        }
        let ended_by_itself = matches!(read, PauseState::Ended(_))
            || self
                .current
                .is_some_and(|p| p.until.is_some_and(|u| u <= now));
        match next {
            Some(p) => info!(
                event = "paused",
                until = p.until.map(timestamp),
                "Automatic switching paused {}: probing and reporting continue, no automatic failover",
                p.describe(now)
            ),
            None if ended_by_itself => info!(
                event = "pause_ended",
                "The pause ended by itself: automatic switching resumes"
            ),
            None => info!(
                event = "resumed",
                "Automatic switching resumed (`failover-handler resume`)"
            ),
        }
        self.current = next;
        self.held = None;
        obs.pause_changed(next, ended_by_itself, now);
    }

    /// Whether the failover of the outage that began at `outage` must wait: true while paused.
    /// Says so once per outage, with where it would go.
    pub fn hold(
        &mut self,
        outage: Option<Instant>,
        from: &Region,
        to: &Region,
        failed_for: Duration,
        obs: &mut Observer,
    ) -> bool {
        let Some(p) = self.current else {
            return false;
        };
        if self.held != outage || self.held.is_none() {
            self.held = outage;
            let now = SystemTime::now();
            warn!(
                event = "failover_held",
                region = %from.name,
                cloud = %from.cloud,
                to_region = %to.name,
                failed_for_ms = failed_for.as_millis() as u64,
                "Outage of {} ({}) lasted {}: failover to {} held back because automatic switching is paused {}",
                from.name,
                from.cloud,
                human(Duration::from_millis(failed_for.as_millis() as u64)),
                to.name,
                p.describe(now)
            );
            obs.held_back(from, to, failed_for, &p);
        }
        true
    }
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
            crate::adapters::state::mode(&state.file(PAUSE_FILE).unwrap()),
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

    /// A probe that always fails, and a restarter that counts.
    struct Down;
    impl crate::adapters::probe::Probe for Down {
        async fn probe(&self) -> crate::adapters::probe::ProbeReport {
            crate::adapters::probe::ProbeReport {
                latency: Duration::from_millis(3),
                result: Err(crate::adapters::probe::ProbeError::new(
                    crate::adapters::probe::ErrorKind::Refused,
                    "refused",
                )),
                bytes_sent: 0,
                bytes_received: 0,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl crate::adapters::restart::Restart for Count {
        async fn restart(
            &self,
            _: &tokio_util::sync::CancellationToken,
        ) -> Result<Duration, crate::adapters::restart::RestartError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Duration::from_millis(1))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_daemon_holds_a_failover_while_paused_and_makes_it_on_resume() {
        use clap::Parser;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("ext_cloud.env");
        let state_path = dir.path().join("s");
        let cli = crate::config::cli::Cli::try_parse_from([
            "fh",
            "--env-file",
            env.to_str().unwrap(),
            "--interval",
            "10s",
            "--threshold",
            "1m",
        ])
        .unwrap();
        let vars = |k: &str| {
            k.starts_with("CONNECTION_KEEPALIVE_")
                .then(|| "x".to_string())
        };
        let config =
            std::sync::Arc::new(crate::config::Config::build(&cli.options, &vars).unwrap());
        config.env_file.write(&config.regions[0]).unwrap();
        pause(&state_path, SystemTime::now(), None).unwrap();
        let restarts = Count::default();
        let obs = Observer::new(&config);
        let published = obs.subscribe();
        let daemon = crate::daemon::Daemon::new(
            config.clone(),
            Down,
            restarts.clone(),
            StateDir::open(&state_path),
        )
        .with_observer(obs);
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(300)).await;
        let region = || config.env_file.read().unwrap().unwrap().region.unwrap();
        assert_eq!(region(), "NAM");
        assert_eq!(restarts.0.load(Ordering::SeqCst), 0);
        let held = |p: &crate::report::observer::Published| {
            p.history
                .iter()
                .filter(|r| r.event == "failover_held")
                .count()
        };
        assert_eq!(held(&published.borrow()), 1, "said once per outage");
        assert!(published.borrow().snapshot.pause.is_some());

        resume(&state_path, SystemTime::now()).unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(region(), "EU");
        assert_eq!(restarts.0.load(Ordering::SeqCst), 1);
        let p = published.borrow().clone();
        assert!(p.snapshot.pause.is_none());
        let last = p.snapshot.last_switch.clone().unwrap();
        assert_eq!((last.from.as_str(), last.to.as_str()), ("NAM", "EU"));
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn without_a_state_dir_pause_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("f");
        std::fs::write(&blocker, b"").unwrap();
        assert!(matches!(
            pause(&blocker.join("s"), SystemTime::now(), None),
            Err(PauseError::NoStateDir(_))
        ));
    }
}
