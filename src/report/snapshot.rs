//! The live state as a document: what `/status`, the status page, the status file and
//! `status --json` show (docs/schemas/status.json).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::adapters::files::Pause;
use crate::report::event::ms;
use crate::report::journal::timestamp;

/// The published live state, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The version of this document's shape (docs/schemas/status.json).
    #[serde(default = "crate::report::journal::format_version")]
    pub format_version: u32,
    pub service: String,
    pub version: String,
    pub pid: u32,
    pub started_at: String,
    pub updated_at: String,
    /// A reader of the status file treats the daemon as gone after this.
    pub fresh_until: String,
    pub dry_run: bool,
    pub active: ActiveView,
    pub threshold_ms: u64,
    pub regions: Vec<RegionView>,
    pub outage: Option<OutageView>,
    pub last_switch: Option<SwitchView>,
    /// Automatic switches and adopted manual ones since the daemon started.
    pub switches: u64,
    /// The region a manual switch pinned, if any.
    pub pin: Option<String>,
    pub pause: Option<PauseView>,
    /// Flap damping holds automatic switches back until then.
    #[serde(default)]
    pub hold_down: Option<HoldDownView>,
    /// The last write of the env file failed with this error (retried at the next probe).
    #[serde(default)]
    pub env_file_error: Option<String>,
    /// The last restart left a program not RUNNING (cleared by a restart that succeeds).
    #[serde(default)]
    pub restart_error: Option<String>,
    /// The local tunnel presents a certificate the probe cannot verify: what to fix.
    #[serde(default)]
    pub tunnel_misconfigured: Option<String>,
    /// `pause --fleet` holds the fleet's automatic moves: by whom and since when.
    #[serde(default)]
    pub fleet_pause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldDownView {
    pub until: String,
    pub remaining_ms: u64,
    pub switches_last_hour: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveView {
    pub region: String,
    pub cloud: String,
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionView {
    pub name: String,
    pub cloud: String,
    pub active: bool,
    /// `None` until the region was checked.
    pub healthy: Option<bool>,
    pub latency_ms: Option<f64>,
    pub checked_at: Option<String>,
    /// The last result is older than three rounds of checks: it may no longer hold.
    #[serde(default)]
    pub stale: bool,
    pub error: Option<String>,
    /// The last latencies, oldest first; `null` for a failed check.
    pub latencies: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageView {
    pub region: String,
    pub cloud: String,
    pub since: String,
    pub failing_for_ms: u64,
    pub threshold_ms: u64,
    pub error_kind: Option<String>,
    /// The failover is due but held back (paused).
    pub held_back: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchView {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at: String,
    pub failed_for_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseView {
    pub since: String,
    pub until: Option<String>,
    pub remaining_ms: Option<u64>,
}

impl PauseView {
    pub fn of(p: &Pause, wall: SystemTime) -> Self {
        PauseView {
            since: timestamp(p.since),
            until: p.until.map(timestamp),
            remaining_ms: p.remaining(wall).map(ms),
        }
    }
}

/// Milliseconds from `now` until the timestamp `at` (0 once past), or `None` if unreadable.
fn ms_until(at: &str, now: SystemTime) -> Option<u64> {
    let at = humantime::parse_rfc3339(at).ok()?;
    Some(at.duration_since(now).map(ms).unwrap_or(0))
}

impl Snapshot {
    /// What the status file keeps: the snapshot without what every probe or every tick of the
    /// clock changes (latencies, check times, counters of elapsed or remaining time). Two
    /// snapshots with the same state give the same document, so the file is written on change
    /// only; `aged` gives a reader the counters back.
    pub fn at_rest(&self) -> Snapshot {
        let mut s = self.clone();
        for r in &mut s.regions {
            r.latency_ms = None;
            r.checked_at = None;
            r.latencies = Vec::new();
        }
        if let Some(o) = s.outage.as_mut() {
            o.failing_for_ms = 0;
        }
        if let Some(p) = s.pause.as_mut() {
            p.remaining_ms = None;
        }
        if let Some(h) = s.hold_down.as_mut() {
            h.remaining_ms = 0;
        }
        s
    }

    /// A snapshot read back from the status file with its counters derived anew at `now`: how
    /// long the outage has lasted (from its start), what is left of a pause or a hold-down
    /// (from their ends).
    pub fn aged(mut self, now: SystemTime) -> Snapshot {
        if let Some(o) = self.outage.as_mut()
            && let Ok(since) = humantime::parse_rfc3339(&o.since)
        {
            o.failing_for_ms = now.duration_since(since).map(ms).unwrap_or(0);
        }
        if let Some(p) = self.pause.as_mut() {
            p.remaining_ms = p.until.as_deref().and_then(|u| ms_until(u, now));
        }
        if let Some(h) = self.hold_down.as_mut() {
            h.remaining_ms = ms_until(&h.until, now).unwrap_or(0);
        }
        self
    }
}
