//! What the daemon tells beside its decisions: each probe, the env file and the state dir
//! kept in step, the configuration, signals. Told in the log line (not journaled), under the
//! same derived `event` name and fields as every [`Event`](crate::report::event::Event).

use std::time::Duration;

use serde::Serialize;

use crate::config::duration_text;
use crate::report::event::Place;
use crate::report::fields as f;
use crate::report::journal::Level;

/// How long between two ERRORs of the same failing write of the env file.
pub const REMIND_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// A probe of the active region succeeded (DEBUG).
    ProbeOk {
        #[serde(flatten)]
        at: Place,
        latency_ms: u64,
        http_status: u16,
    },
    /// A probe of the active region failed, `failing_for` into the outage of `threshold`
    /// (none for a certificate the tunnel presents wrongly: DEBUG, `tunnel_misconfigured`
    /// says it).
    ProbeFailed {
        #[serde(flatten)]
        at: Place,
        error_kind: &'static str,
        http_status: Option<u16>,
        latency_ms: u64,
        #[serde(rename = "failing_for_ms", serialize_with = "f::maybe_ms")]
        failing_for: Option<Duration>,
        #[serde(skip)]
        threshold: Duration,
        #[serde(skip)]
        error: String,
    },
    /// The programs are not restarted (`--dry-run` or `--no-restart`); `in_place`: a restart
    /// in place for the local tunnel.
    RestartSkipped {
        #[serde(skip)]
        in_place: bool,
    },
    /// A dry run would have written `at` to the env file at `path`.
    DryRun {
        #[serde(flatten)]
        at: Place,
        #[serde(skip)]
        path: String,
    },
    /// The env file at `path` now names `at`.
    EnvFileWritten {
        #[serde(flatten)]
        at: Place,
        path: String,
    },
    /// At start, the env file already names `at`: nothing to write or restart.
    EnvFileCurrent {
        #[serde(flatten)]
        at: Place,
        path: String,
    },
    /// A write of the env file failed (ERROR when it starts, changes kind, or every
    /// [`REMIND_EVERY`]); `then`: what the daemon does next.
    EnvFileWriteFailed {
        region: String,
        error_kind: &'static str,
        failures: u64,
        #[serde(skip)]
        error: String,
        #[serde(skip)]
        then: String,
    },
    /// A retry of a failing write that failed again (DEBUG).
    EnvFileWriteRetried {
        region: String,
        error_kind: &'static str,
        #[serde(skip)]
        error: String,
    },
    /// The env file is written again after `failures` failed writes over `over`.
    EnvFileWriteRecovered {
        failures: u64,
        path: String,
        #[serde(skip)]
        over: Duration,
    },
    /// Temp files of a writer killed mid-write were removed at start.
    StaleTempRemoved {
        count: usize,
        #[serde(skip)]
        path: String,
    },
    /// At start, the env file cannot be read: it will be rewritten.
    EnvFileUnreadable {
        error_kind: &'static str,
        #[serde(skip)]
        error: String,
    },
    /// At start, the env file names a region that is not in the list.
    EnvFileUnknownRegion { region: String },
    /// At start, the env file names no region: it will be rewritten.
    EnvFileUnrecognised { path: String },
    /// The env file names `region` with another region's `cloud`.
    EnvFileInconsistent {
        region: String,
        cloud: String,
        path: String,
        #[serde(skip)]
        own_cloud: String,
    },
    /// The env file went missing or lost its region while running: written back.
    EnvFileRestored {
        region: String,
        path: String,
        #[serde(skip)]
        why: String,
    },
    /// The preferred region differs from the last start's: acted on as a switch.
    PreferredChanged {
        region: String,
        previous_region: String,
    },
    /// An outage recorded before this start goes on.
    OutageResumed {
        region: String,
        #[serde(rename = "failing_for_ms", serialize_with = "f::ms")]
        failing_for: Duration,
        #[serde(rename = "gap_ms", serialize_with = "f::ms")]
        gap: Duration,
    },
    /// An outage recorded before this start was probed too long ago: the clock starts afresh.
    OutageForgotten {
        region: String,
        #[serde(rename = "gap_ms", serialize_with = "f::ms")]
        gap: Duration,
    },
    /// The handler's memory (`file` in the state dir) cannot be read: starting without it.
    StateUnreadable {
        file: &'static str,
        #[serde(skip)]
        error: String,
    },
    /// The state dir cannot be written while `doing` (e.g. "update the pin").
    StateWriteFailed {
        error: String,
        #[serde(skip)]
        doing: &'static str,
    },
    /// The pin names a region that is not in the list: ignored.
    PinUnknownRegion { region: String },
    /// At start, the state dir's pin names the active region: it holds.
    PinKept { region: String },
    /// At start, one doubtful setting.
    ConfigWarning {
        #[serde(skip)]
        warning: String,
    },
    /// SIGHUP with a bad configuration: the running one is kept.
    ConfigReloadRefused {
        error_kind: &'static str,
        #[serde(skip)]
        error: String,
    },
    /// SIGHUP with a valid configuration: `applied` now, `needs_restart` later.
    ConfigReloaded {
        applied: String,
        needs_restart: String,
        #[serde(skip)]
        said: String,
    },
    /// SIGUSR1 or SIGUSR2 (DEBUG).
    SignalIgnored { signal: &'static str },
    /// The daemon cannot list itself in `path`: commands need its -c or --state-dir.
    DaemonUnlisted { path: String, error: String },
}

impl Notice {
    pub fn level(&self) -> Level {
        match self {
            Notice::ProbeFailed { error_kind, .. } if *error_kind == "tunnel_misconfigured" => {
                Level::Debug
            }
            Notice::ProbeOk { .. }
            | Notice::EnvFileWriteRetried { .. }
            | Notice::SignalIgnored { .. } => Level::Debug,
            Notice::EnvFileWriteFailed { .. } | Notice::ConfigReloadRefused { .. } => Level::Error,
            Notice::ProbeFailed { .. }
            | Notice::StaleTempRemoved { .. }
            | Notice::EnvFileUnreadable { .. }
            | Notice::EnvFileUnknownRegion { .. }
            | Notice::EnvFileUnrecognised { .. }
            | Notice::EnvFileInconsistent { .. }
            | Notice::EnvFileRestored { .. }
            | Notice::StateUnreadable { .. }
            | Notice::StateWriteFailed { .. }
            | Notice::PinUnknownRegion { .. }
            | Notice::ConfigWarning { .. }
            | Notice::DaemonUnlisted { .. } => Level::Warn,
            _ => Level::Info,
        }
    }

    /// The sentence for people, worded by the function of the variant's group (each group's
    /// function is reached only with its own variants).
    pub fn message(&self) -> String {
        match self {
            Notice::ProbeOk { .. }
            | Notice::ProbeFailed { .. }
            | Notice::RestartSkipped { .. }
            | Notice::DryRun { .. } => self.probe_message(),
            Notice::EnvFileWritten { .. }
            | Notice::EnvFileCurrent { .. }
            | Notice::EnvFileWriteFailed { .. }
            | Notice::EnvFileWriteRetried { .. }
            | Notice::EnvFileWriteRecovered { .. }
            | Notice::StaleTempRemoved { .. }
            | Notice::EnvFileUnreadable { .. }
            | Notice::EnvFileUnknownRegion { .. }
            | Notice::EnvFileUnrecognised { .. }
            | Notice::EnvFileInconsistent { .. }
            | Notice::EnvFileRestored { .. } => self.env_file_message(),
            Notice::PreferredChanged { .. }
            | Notice::OutageResumed { .. }
            | Notice::OutageForgotten { .. }
            | Notice::StateUnreadable { .. }
            | Notice::StateWriteFailed { .. }
            | Notice::PinUnknownRegion { .. }
            | Notice::PinKept { .. } => self.memory_message(),
            Notice::ConfigWarning { .. }
            | Notice::ConfigReloadRefused { .. }
            | Notice::ConfigReloaded { .. }
            | Notice::SignalIgnored { .. }
            | Notice::DaemonUnlisted { .. } => self.config_message(),
        }
    }

    /// What a probe tells, and what a dry run or `--no-restart` leaves undone.
    fn probe_message(&self) -> String {
        match self {
            Notice::ProbeOk { at, latency_ms, .. } => {
                format!("Probe of {} ok in {latency_ms} ms", at.cloud)
            }
            Notice::ProbeFailed {
                at,
                failing_for: Some(failing_for),
                threshold,
                error,
                ..
            } => format!(
                "Probe of {} failed ({error}); failing for {} of {}",
                at.cloud,
                duration_text(Duration::from_millis(crate::report::event::ms(
                    *failing_for
                ))),
                duration_text(*threshold)
            ),
            Notice::ProbeFailed { at, error, .. } => {
                format!("Probe of {} failed ({error})", at.cloud)
            }
            Notice::RestartSkipped { in_place: true } => {
                "Not restarting the programs in place (--dry-run or --no-restart)".to_string()
            }
            Notice::RestartSkipped { in_place: false } => {
                "Not restarting the programs (--no-restart)".to_string()
            }
            Notice::DryRun { at, path } => format!(
                "Dry run: would write region {} and cloud {} to {path} and restart the programs",
                at.region, at.cloud
            ),
            _ => String::new(),
        }
    }

    /// The env file written, failing, kept or put right.
    fn env_file_message(&self) -> String {
        match self {
            Notice::EnvFileWritten { at, path } => {
                format!(
                    "Wrote region {} and cloud {} to {path}",
                    at.region, at.cloud
                )
            }
            Notice::EnvFileCurrent { at, .. } => format!(
                "The env file already names region {} and cloud {}: nothing to write, nothing to restart",
                at.region, at.cloud
            ),
            Notice::EnvFileWriteFailed {
                failures: 1,
                error,
                then,
                ..
            } => format!("{error}; {then}"),
            Notice::EnvFileWriteFailed {
                failures,
                error,
                then,
                ..
            } => format!(
                "{error}; {then} (failed {failures} times so far; said again at most every {})",
                duration_text(REMIND_EVERY)
            ),
            Notice::EnvFileWriteRetried { error, .. } => error.clone(),
            Notice::EnvFileWriteRecovered {
                failures,
                path,
                over,
            } => format!(
                "The env file {path} is written again, after {failures} failed write(s) over {}",
                duration_text(*over)
            ),
            Notice::StaleTempRemoved { count, path } => format!(
                "Removed {count} temp file(s) left beside {path} by a writer that was killed mid-write"
            ),
            Notice::EnvFileUnreadable { error, .. } => format!("{error}; it will be rewritten"),
            Notice::EnvFileUnknownRegion { region } => {
                format!("The env file names region {region}, which is not in the failover list")
            }
            Notice::EnvFileUnrecognised { path } => format!(
                "The env file {path} names no region (or only unsafe values): it will be rewritten"
            ),
            Notice::EnvFileInconsistent {
                region,
                cloud,
                path,
                own_cloud,
            } => format!(
                "The env file {path} names region {region} with cloud '{cloud}', not its own cloud {own_cloud}: it is not current, so it is written whole and the programs restarted"
            ),
            Notice::EnvFileRestored { region, path, why } => format!(
                "The env file {path} {why}: writing region {region} back (programs keep running)"
            ),
            _ => String::new(),
        }
    }

    /// What the state dir remembers at start: the preferred region, an outage, the pin.
    fn memory_message(&self) -> String {
        match self {
            Notice::PreferredChanged {
                region,
                previous_region,
            } => format!(
                "The preferred region is now {region} (it was {previous_region} at the last start): an operator's new intent, acted on as a switch"
            ),
            Notice::OutageResumed {
                region,
                failing_for,
                gap,
            } => format!(
                "Region {region} has been failing for {} (last probed {} ago, before this start): the outage clock resumes",
                duration_text(*failing_for),
                duration_text(*gap)
            ),
            Notice::OutageForgotten { region, gap } => format!(
                "An outage of {region} was last probed {} ago, too long to go on from: the outage clock starts afresh",
                duration_text(*gap)
            ),
            Notice::StateUnreadable { error, .. } => format!(
                "The handler's memory in the state directory cannot be read ({error}): starting without it"
            ),
            Notice::StateWriteFailed { error, doing } => format!("Cannot {doing}: {error}"),
            Notice::PinUnknownRegion { region } => {
                format!("The pin names region {region}, which is not in the failover list: ignored")
            }
            Notice::PinKept { region } => {
                format!("Region {region} stays pinned by the manual switch that made it active")
            }
            _ => String::new(),
        }
    }

    /// The configuration, signals, and where the daemon is listed.
    fn config_message(&self) -> String {
        match self {
            Notice::ConfigWarning { warning } => warning.clone(),
            Notice::ConfigReloadRefused { error, .. } => {
                format!("The configuration was not reloaded ({error}); the old one is kept")
            }
            Notice::ConfigReloaded { said, .. } => format!("Reloaded the configuration: {said}"),
            Notice::SignalIgnored { signal } => format!("{signal} ignored"),
            Notice::DaemonUnlisted { path, error } => format!(
                "Cannot list this daemon in {path} ({error}): status, switch, pause and resume need its -c or --state-dir to find it"
            ),
            _ => String::new(),
        }
    }
}
