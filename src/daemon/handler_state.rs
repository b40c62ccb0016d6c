//! What survives a restart of the handler, kept in the state directory as `handler.json`: the
//! preferred region it last started with (a changed one is an operator's new intent), the outage
//! in progress (since when, and when it was last probed), and the automatic switches of the last
//! hour (flap damping). Wall-clock times, because the monotonic clock does not survive a
//! restart; they are turned into ages at once and never used to time anything else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::adapters::files::StateDir;
use crate::report::event::{Event, Notice};
use crate::report::logging;

pub const HANDLER_STATE_FILE: &str = "handler.json";

/// An outage in progress, by wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOutage {
    pub region: String,
    /// Unix milliseconds of the first failed probe.
    pub since_ms: u64,
    /// Unix milliseconds of the last probe that saw it.
    pub last_probe_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerState {
    #[serde(default)]
    pub preferred: Option<String>,
    #[serde(default)]
    pub outage: Option<SavedOutage>,
    /// Unix milliseconds of the automatic switches of the last hour, oldest first.
    #[serde(default)]
    pub switches_ms: Vec<u64>,
}

/// Unix milliseconds of `t`.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// How long before `now` the instant `ms` (unix milliseconds) was; zero if in the future.
pub fn age(now: SystemTime, ms: u64) -> Duration {
    Duration::from_millis(unix_ms(now).saturating_sub(ms))
}

/// How short the gap since the last recorded probe must be for the outage clock to resume
/// after a restart of the handler: three probe rounds at the slower cadence, and ten seconds
/// for the restart itself. A longer gap says nothing of the region now: the clock starts afresh.
pub fn resume_within(interval: Duration, fail_interval: Duration, timeout: Duration) -> Duration {
    (interval.max(fail_interval) + timeout) * 3 + Duration::from_secs(10)
}

impl HandlerState {
    /// The handler state in `state`; none (a first start, or an unreadable file) is empty.
    pub fn load(state: &StateDir) -> HandlerState {
        let Some(text) = state.read(HANDLER_STATE_FILE) else {
            return HandlerState::default();
        };
        serde_json::from_str(&text).unwrap_or_else(|e| {
            logging::event(&Event::Notice(Notice::StateUnreadable {
                file: HANDLER_STATE_FILE,
                error: e.to_string(),
            }));
            HandlerState::default()
        })
    }

    /// Writes the handler state back; a failure is said and the daemon goes on.
    pub fn save(&self, state: &StateDir) {
        let Ok(text) = serde_json::to_string(self) else {
            return;
        };
        if let Err(e) = state.write(HANDLER_STATE_FILE, text.as_bytes()) {
            logging::event(&Event::Notice(Notice::StateWriteFailed {
                error: e.to_string(),
                doing: "keep the handler's memory in the state directory",
            }));
        }
    }

    /// Whether `preferred` differs from the preferred region of the last start (names compare
    /// in any case). A first start, or a run without `--region`, changes nothing.
    pub fn preference_changed(&self, preferred: Option<&str>) -> bool {
        match (&self.preferred, preferred) {
            (Some(last), Some(now)) => !last.eq_ignore_ascii_case(now),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_preference_is_a_new_intent_and_a_first_start_is_not() {
        let m = HandlerState {
            preferred: Some("EU".into()),
            ..HandlerState::default()
        };
        assert!(m.preference_changed(Some("APAC")));
        assert!(!m.preference_changed(Some("eu")));
        assert!(!m.preference_changed(None));
        assert!(!HandlerState::default().preference_changed(Some("EU")));
    }

    #[test]
    fn the_handler_state_round_trips_through_the_state_dir_and_garbage_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("s"));
        assert_eq!(HandlerState::load(&state), HandlerState::default());
        let m = HandlerState {
            preferred: Some("EU".into()),
            outage: Some(SavedOutage {
                region: "EU".into(),
                since_ms: 1_000,
                last_probe_ms: 2_000,
            }),
            switches_ms: vec![500],
        };
        m.save(&state);
        assert_eq!(HandlerState::load(&state), m);
        state.write(HANDLER_STATE_FILE, b"{not json").unwrap();
        assert_eq!(HandlerState::load(&state), HandlerState::default());
    }
}
