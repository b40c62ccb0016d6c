//! The daemon's reporting handle. The daemon calls it at each decision point (started, probed,
//! switched, restarted, failover held back, pause changed); it keeps the live [`View`] and the
//! metrics up to date, turns decisions into journal records (kept in memory for `/history`,
//! written by the journal thread, shipped to Datadog), and publishes a [`Published`] state on
//! a `watch` channel that the web server and the status file read. Nothing here waits on I/O:
//! every call returns at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::adapters::pause::Pause;
use crate::adapters::probe::ProbeReport;
use crate::adapters::restart::RestartError;
use crate::config::{Config, human};
use crate::kernel::region::Region;
use crate::report::datadog::{self, Datadog};
use crate::report::journal::{Journal, Level, Record, timestamp};
use crate::report::metrics::Metrics;
use crate::report::view::{Meta, OutageChange, Snapshot, View, ms};

/// Decisions kept in memory for `/history` and the status page.
pub const HISTORY: usize = 200;

/// What the daemon publishes: the live snapshot and the recent decisions, oldest first.
#[derive(Debug, Clone)]
pub struct Published {
    pub snapshot: Snapshot,
    pub history: Arc<Vec<Record>>,
}

pub struct Observer {
    regions: Vec<Region>,
    view: View,
    meta: Meta,
    metrics: Metrics,
    history: VecDeque<Record>,
    published_history: Arc<Vec<Record>>,
    tx: watch::Sender<Arc<Published>>,
    journal: Option<Journal>,
    datadog: Option<(Datadog, String)>,
    restart_failures_seen: u64,
}

/// How long a snapshot stays believable: three probe rounds at the slower cadence, each with
/// its timeout, and some slack for the status file's own pace.
pub fn fresh_for(config: &Config) -> Duration {
    let p = &config.probe;
    (p.interval.max(p.fail_interval) + p.timeout) * 3 + Duration::from_secs(2)
}

impl Observer {
    /// An observer that keeps its view, history and metrics in memory; journal and Datadog
    /// are added with [`Observer::with_journal`] and [`Observer::with_datadog`].
    pub fn new(config: &Config) -> Self {
        let wall = SystemTime::now();
        let view = View::new(&config.regions, config.failover.threshold, wall);
        let meta = Meta {
            service: config.service.clone(),
            pid: std::process::id(),
            started_at: wall,
            dry_run: config.dry_run,
            fresh_for: fresh_for(config),
        };
        let published = Published {
            snapshot: view.snapshot(&meta, wall),
            history: Arc::new(Vec::new()),
        };
        let (tx, _) = watch::channel(Arc::new(published));
        Observer {
            regions: config.regions.clone(),
            view,
            meta,
            metrics: Metrics::new(),
            history: VecDeque::with_capacity(HISTORY),
            published_history: Arc::new(Vec::new()),
            tx,
            journal: None,
            datadog: None,
            restart_failures_seen: 0,
        }
    }

    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    pub fn with_datadog(mut self, datadog: Datadog) -> Self {
        self.datadog = Some((datadog, datadog::hostname()));
        self
    }

    /// Seeds `/history` with what the journal held before this start.
    pub fn with_history(mut self, records: Vec<Record>) -> Self {
        for r in records {
            self.remember(r);
        }
        self.published_history = Arc::new(self.history.iter().cloned().collect());
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    fn name(&self, i: usize) -> (String, String) {
        self.regions
            .get(i)
            .map(|r| (r.name.clone(), r.cloud.clone()))
            .unwrap_or_default()
    }

    /// The daemon chose its region at start; `wrote`: the env file did not name it yet.
    pub fn started(&mut self, active: usize, wrote: bool) {
        let wall = SystemTime::now();
        self.view.set_active(active, wall);
        self.metrics.set_active(&self.regions, active);
        let (name, cloud) = self.name(active);
        let how = if wrote {
            "the env file did not name it: writing it and restarting the programs"
        } else {
            "the env file already names it"
        };
        self.record(
            Record::new(
                wall,
                Level::Info,
                "daemon_started",
                format!("Started on region {name} (cloud {cloud}): {how}"),
            )
            .with("region", name)
            .with("cloud", cloud)
            .with("env_file_written", wrote)
            .with("version", env!("CARGO_PKG_VERSION")),
        );
        self.publish(wall);
    }

    /// A probe of the active region `region`; `failing_since` is the policy's outage timer
    /// after it.
    pub fn probed(&mut self, region: usize, report: &ProbeReport, failing_since: Option<Instant>) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let (name, cloud) = self.name(region);
        let error = report.result.as_ref().err();
        self.metrics.probed(&name, report.is_ok(), report.latency);
        self.metrics.healthy(&name, report.is_ok());
        self.view
            .checked(region, report.latency, error.map(|e| e.to_string()), wall);
        let kind = error.map(|e| e.kind.as_str());
        match self.view.outage_timer(failing_since, kind, now, wall) {
            OutageChange::Started => {
                let detail = error.map(|e| e.to_string()).unwrap_or_default();
                self.record(
                    Record::new(
                        wall,
                        Level::Warn,
                        "outage_started",
                        format!(
                            "Region {name} ({cloud}) failing: {detail}; the outage timer starts"
                        ),
                    )
                    .with("region", name)
                    .with("cloud", cloud)
                    .with("error_kind", kind)
                    .with("http_status", error.and_then(|e| e.http_status)),
                );
            }
            OutageChange::Recovered(failed_for) => {
                self.record(
                    Record::new(
                        wall,
                        Level::Info,
                        "outage_ended",
                        format!(
                            "Region {name} ({cloud}) answers again after {} of failures",
                            human(Duration::from_millis(ms(failed_for)))
                        ),
                    )
                    .with("region", name)
                    .with("cloud", cloud)
                    .with("how", "recovered")
                    .with("failed_for_ms", ms(failed_for)),
                );
            }
            OutageChange::None => {}
        }
        let outage = self.view.outage().map_or(0.0, |(_, d)| d.as_secs_f64());
        self.metrics.outage_seconds.set(outage);
        self.publish(wall);
    }

    /// A standby region's own health check (rise/fall already applied by the caller).
    pub fn region_checked(&mut self, region: usize, healthy: bool, latency: Duration) {
        let wall = SystemTime::now();
        let (name, _) = self.name(region);
        self.metrics.healthy(&name, healthy);
        self.view.checked(
            region,
            latency,
            (!healthy).then(|| "unhealthy".to_string()),
            wall,
        );
        self.publish(wall);
    }

    /// An outage lasted the threshold but automatic switching is paused.
    pub fn held_back(&mut self, from: &Region, to: &Region, failed_for: Duration, pause: &Pause) {
        let wall = SystemTime::now();
        self.view.hold_back();
        self.record(
            Record::new(
                wall,
                Level::Warn,
                "failover_held",
                format!(
                    "Outage of {} lasted {}: failover to {} held back, automatic switching is paused {}",
                    from.name,
                    human(Duration::from_millis(ms(failed_for))),
                    to.name,
                    pause.describe(wall)
                ),
            )
            .with("from", from.name.clone())
            .with("to", to.name.clone())
            .with("reason", "paused")
            .with("failed_for_ms", ms(failed_for))
            .with("pause_until", pause.until.map(timestamp)),
        );
        self.publish(wall);
    }

    /// The env file now names `to` (written by the daemon for `reason`, or by hand: "manual").
    /// A start that writes the region it already had is not a switch.
    pub fn switched(&mut self, from: usize, to: usize, reason: &str, failed_for: Option<Duration>) {
        let wall = SystemTime::now();
        self.metrics.set_active(&self.regions, to);
        if from == to {
            self.view.set_active(to, wall);
            self.publish(wall);
            return;
        }
        let outage = self.view.outage();
        let (from_name, from_cloud) = self.name(from);
        let (to_name, to_cloud) = self.name(to);
        if let Some((_, failing_for)) = outage {
            self.record(
                Record::new(
                    wall,
                    Level::Info,
                    "outage_ended",
                    format!(
                        "Left region {from_name} after {} of failures",
                        human(Duration::from_millis(ms(failing_for)))
                    ),
                )
                .with("region", from_name.clone())
                .with("cloud", from_cloud.clone())
                .with("how", "switched")
                .with("failed_for_ms", ms(failing_for)),
            );
        }
        self.view.switched(from, to, reason, failed_for, wall);
        self.metrics.outage_seconds.set(0.0);
        self.metrics.switched(&from_name, &to_name, reason);
        let why = match (reason, failed_for) {
            ("outage", Some(d)) => {
                format!("after {} of failures", human(Duration::from_millis(ms(d))))
            }
            ("manual", _) => {
                "switched by hand (failover-handler switch or an edit of the env file)".to_string()
            }
            (r, _) => format!("reason: {r}"),
        };
        self.record(
            Record::new(
                wall,
                if reason == "manual" {
                    Level::Info
                } else {
                    Level::Warn
                },
                "switch",
                format!(
                    "Switched from {from_name} ({from_cloud}) to {to_name} ({to_cloud}): {why}"
                ),
            )
            .with("from", from_name)
            .with("from_cloud", from_cloud)
            .with("to", to_name)
            .with("to_cloud", to_cloud)
            .with("reason", reason)
            .with("failed_for_ms", failed_for.map(ms)),
        );
        self.publish(wall);
    }

    /// The programs were restarted for `region` (or the restart ended otherwise).
    pub fn restarted(&mut self, region: &str, result: &Result<Duration, RestartError>) {
        let wall = SystemTime::now();
        let failures = self.metrics.restart_failures.get();
        let failed_calls = failures.saturating_sub(self.restart_failures_seen);
        self.restart_failures_seen = failures;
        let record = match result {
            Ok(took) => Record::new(
                wall,
                Level::Info,
                "restart",
                format!(
                    "Programs restarted for region {region} in {} ms{}",
                    ms(*took),
                    if failed_calls > 0 {
                        format!(" ({failed_calls} failed supervisorctl calls retried)")
                    } else {
                        String::new()
                    }
                ),
            )
            .with("result", "ok")
            .with("duration_ms", ms(*took)),
            Err(RestartError::Cancelled(stopped)) => Record::new(
                wall,
                Level::Warn,
                "restart",
                format!(
                    "Restart for region {region} interrupted by shutdown; left stopped: [{}]",
                    stopped.join(", ")
                ),
            )
            .with("result", "interrupted"),
            Err(e) => Record::new(
                wall,
                Level::Error,
                "restart",
                format!("Restart for region {region} failed: {e}"),
            )
            .with("result", "failed"),
        };
        self.record(
            record
                .with("region", region)
                .with("failed_calls", failed_calls),
        );
        self.publish(wall);
    }

    /// The pause file changed: paused (`Some`), resumed, or ended by itself.
    pub fn pause_changed(&mut self, pause: Option<Pause>, ended_by_itself: bool, wall: SystemTime) {
        self.view.set_pause(pause);
        self.metrics.paused.set(i64::from(pause.is_some()));
        let record = match pause {
            Some(p) => Record::new(
                wall,
                Level::Info,
                "paused",
                format!("Automatic switching paused {}", p.describe(wall)),
            )
            .with("since", timestamp(p.since))
            .with("until", p.until.map(timestamp)),
            None if ended_by_itself => Record::new(
                wall,
                Level::Info,
                "resumed",
                "The pause ended by itself: automatic switching resumes",
            )
            .with("how", "expired"),
            None => Record::new(wall, Level::Info, "resumed", "Automatic switching resumed")
                .with("how", "resume"),
        };
        self.record(record);
        self.publish(wall);
    }

    /// A manual switch pinned `pin`, or the pin was lifted (`None`).
    pub fn pin_changed(&mut self, pin: Option<&str>) {
        let wall = SystemTime::now();
        self.view.set_pin(pin.map(str::to_string));
        let record = match pin {
            Some(r) => Record::new(
                wall,
                Level::Info,
                "pinned",
                format!("Region {r} pinned by a manual switch: no automatic failback away from it"),
            )
            .with("region", r),
            None => Record::new(wall, Level::Info, "unpinned", "The pin was lifted"),
        };
        self.record(record);
        self.publish(wall);
    }

    /// The daemon stops (SIGTERM/SIGINT).
    pub fn stopping(&mut self) {
        let wall = SystemTime::now();
        let (name, cloud) = self.name(self.view.active());
        self.record(
            Record::new(
                wall,
                Level::Info,
                "daemon_stopped",
                format!("Stopped; region {name} stays active"),
            )
            .with("region", name)
            .with("cloud", cloud),
        );
        self.publish(wall);
    }

    fn remember(&mut self, r: Record) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(r);
    }

    fn record(&mut self, r: Record) {
        if let Some(j) = &self.journal {
            j.record(r.clone());
        }
        if let Some((dd, host)) = &self.datadog {
            dd.push(&datadog::entry(&r, &self.meta.service, host));
        }
        self.remember(r);
        self.published_history = Arc::new(self.history.iter().cloned().collect());
    }

    fn publish(&mut self, wall: SystemTime) {
        let published = Published {
            snapshot: self.view.snapshot(&self.meta, wall),
            history: self.published_history.clone(),
        };
        self.tx.send_replace(Arc::new(published));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::probe::{ErrorKind, ProbeError};

    fn config() -> Config {
        use clap::Parser;
        let cli = crate::config::cli::Cli::try_parse_from(["fh"]).unwrap();
        let vars = |k: &str| match k {
            "CONNECTION_KEEPALIVE_ORG_ID" | "CONNECTION_KEEPALIVE_TXN_ID" => Some("x".to_string()),
            _ => None,
        };
        Config::build(&cli.options, &vars).unwrap()
    }

    fn report(ok: bool) -> ProbeReport {
        ProbeReport {
            latency: Duration::from_millis(8),
            result: if ok {
                Ok(200)
            } else {
                Err(ProbeError::new(ErrorKind::Refused, "refused"))
            },
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    #[test]
    fn decisions_become_history_metrics_and_a_snapshot() {
        let mut obs = Observer::new(&config());
        let rx = obs.subscribe();
        obs.started(0, true);
        obs.probed(0, &report(true), None);
        let since = Instant::now();
        obs.probed(0, &report(false), Some(since));
        obs.probed(0, &report(false), Some(since));
        obs.switched(0, 1, "outage", Some(Duration::from_secs(240)));
        obs.restarted("EU", &Ok(Duration::from_millis(30)));
        obs.stopping();
        let p = rx.borrow().clone();
        let events: Vec<&str> = p.history.iter().map(|r| r.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "daemon_started",
                "outage_started",
                "outage_ended",
                "switch",
                "restart",
                "daemon_stopped"
            ]
        );
        let switch = &p.history[3];
        assert_eq!(switch.str_field("from"), Some("NAM"));
        assert_eq!(switch.str_field("to"), Some("EU"));
        assert_eq!(switch.str_field("reason"), Some("outage"));
        assert_eq!(switch.fields["failed_for_ms"], 240_000);
        assert_eq!(p.snapshot.active.region, "EU");
        assert_eq!(p.snapshot.last_switch.as_ref().unwrap().from, "NAM");
        let (text, _) = obs.metrics().encode(None);
        assert!(text.contains(
            "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"} 1"
        ));
        assert!(text.contains("failover_handler_probe_success{region=\"NAM\"} 0"));
        assert!(
            text.contains("failover_handler_outage_seconds 0.0"),
            "{text}"
        );
    }
}
