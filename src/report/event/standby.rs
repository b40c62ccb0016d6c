//! What region intelligence tells beside its decisions: standby and reference checks that
//! flip, the throughput gate's measurement, the latency file. Told in the log line (not
//! journaled), under derived `event` names and fields like every
//! [`Event`](crate::report::event::Event).

use std::time::Duration;

use serde::Serialize;

use crate::report::fields as f;
use crate::report::journal::Level;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Standby {
    /// A region's checks flipped to healthy or down.
    RegionHealth(Health),
    /// A reference target's checks flipped.
    ReferenceHealth(Health),
    /// The throughput gate measured before failing over.
    ThroughputMeasured {
        mbps: f64,
        min_mbps: f64,
        bytes: u64,
        #[serde(rename = "duration_ms", serialize_with = "f::ms")]
        took: Duration,
        #[serde(serialize_with = "f::url")]
        url: String,
    },
    /// The throughput gate's download failed: counted as too slow.
    ThroughputFailed {
        error_kind: &'static str,
        min_mbps: f64,
        #[serde(serialize_with = "f::url")]
        url: String,
        #[serde(skip)]
        error: String,
    },
    /// The latency file cannot be written (said once until it works again).
    LatencyFileFailed { path: String, error: String },
    /// The latency file is written again.
    LatencyFileOk { path: String },
}

/// A check's verdict that flipped: of a `region` (with its `cloud`) or a reference `target`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub region: Option<String>,
    pub target: Option<String>,
    pub cloud: Option<String>,
    /// `up` or `down`.
    pub health: &'static str,
    /// Of a check that says down.
    pub error_kind: Option<&'static str>,
    /// The smoothed latency, of a check that says up.
    pub latency_ms: Option<u64>,
    pub healthy_standbys: usize,
    /// The subject for people: "standby region EU (cloud.eu...)", "reference tcp://...".
    #[serde(skip)]
    pub what: String,
    /// The failed check's error, when it says down.
    #[serde(skip)]
    pub error: Option<String>,
    /// A standby went down and no standby is healthy now.
    #[serde(skip)]
    pub none_left: bool,
}

impl Standby {
    pub fn level(&self) -> Level {
        match self {
            Standby::RegionHealth(h) | Standby::ReferenceHealth(h) if h.error.is_some() => {
                Level::Warn
            }
            Standby::ThroughputFailed { .. } | Standby::LatencyFileFailed { .. } => Level::Warn,
            _ => Level::Info,
        }
    }

    /// The sentence for people.
    pub fn message(&self) -> String {
        match self {
            Standby::RegionHealth(h) | Standby::ReferenceHealth(h) => match &h.error {
                Some(error) => format!(
                    "Standby check: {} is down ({error}){}",
                    h.what,
                    if h.none_left {
                        "; no standby region is healthy now"
                    } else {
                        ""
                    }
                ),
                None => format!(
                    "Standby check: {} is {}{}",
                    h.what,
                    h.health,
                    h.latency_ms
                        .map(|l| format!(", smoothed latency {l} ms"))
                        .unwrap_or_default()
                ),
            },
            Standby::ThroughputMeasured {
                mbps,
                min_mbps,
                bytes,
                took,
                ..
            } => format!(
                "Throughput before failing over: {mbps:.2} Mbit/s ({bytes} bytes in {} ms; minimum {min_mbps})",
                crate::report::event::ms(*took)
            ),
            Standby::ThroughputFailed { error, .. } => format!(
                "The throughput download failed ({error}): counted as below network.min_mbps"
            ),
            Standby::LatencyFileFailed { path, error } => format!(
                "Cannot write the latency file {path}: {error} (said once until it works again)"
            ),
            Standby::LatencyFileOk { path } => {
                format!("The latency file {path} is written again")
            }
        }
    }
}
