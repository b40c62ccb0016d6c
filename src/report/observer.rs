//! The daemon's reporting handle, called at each decision point: it keeps the live [`View`]
//! and the metrics up to date, turns decisions into journal records (kept in memory for
//! `/history`, written by the journal thread, shipped to Datadog), and publishes a
//! [`Published`] state on a `watch` channel that the web server and the status file read.
//! Nothing here waits on I/O: every call returns at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::adapters::files::Pause;
use crate::adapters::http::ProbeReport;
use crate::adapters::supervisor::RestartError;
use crate::config::Config;
use crate::kernel::region::Region;
use crate::report::cert::CertWatch;
use crate::report::datadog::{self, Datadog};
use crate::report::event::{Event, Place, SwitchReason};
use crate::report::journal::{Journal, Record};
use crate::report::logging;
use crate::report::metrics::Metrics;
use crate::report::quiet::Quiet;
use crate::report::view::{Meta, OutageChange, Snapshot, View};

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
    hold_down_seen: Option<(SystemTime, usize)>,
    env_file_error_seen: Option<String>,
    cert: CertWatch,
    tunnel: crate::report::local::TunnelWatch,
    /// The last probe: its region and its error kind (`None` when ok), so that only a change
    /// is journaled as `probe_changed`.
    last_probe: Option<(usize, Option<&'static str>)>,
    /// When a probe failure is told at INFO: the start-up grace, a restart of our own or of
    /// a switch by hand (`quiet_window`).
    pub(super) quiet: Quiet,
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
            stale_after: (config.region_checks.interval + config.region_checks.timeout) * 3
                + fresh_for(config),
        };
        let published = Published {
            snapshot: view.snapshot(&meta, wall),
            history: Arc::new(Vec::new()),
        };
        let (tx, _) = watch::channel(Arc::new(published));
        let metrics = Metrics::new();
        metrics.preset(&config.regions);
        Observer {
            regions: config.regions.clone(),
            view,
            meta,
            metrics,
            history: VecDeque::with_capacity(HISTORY),
            published_history: Arc::new(Vec::new()),
            tx,
            journal: None,
            datadog: None,
            restart_failures_seen: 0,
            hold_down_seen: None,
            env_file_error_seen: None,
            cert: CertWatch::default(),
            tunnel: Default::default(),
            last_probe: None,
            quiet: Quiet::starting(Instant::now(), config.probe.startup_grace),
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
        if let Some(last) = records.iter().rev().find(|r| r.event == "switch") {
            self.view.recall_switch(last);
        }
        for r in records {
            self.remember(r);
        }
        self.published_history = Arc::new(self.history.iter().cloned().collect());
        self
    }

    /// A pin read back from the state dir at start: shown, not told again.
    pub fn pin_kept(&mut self, region: &str) {
        self.view.set_pin(Some(region.to_string()));
        self.publish(SystemTime::now());
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    fn place(&self, i: usize) -> Place {
        self.regions
            .get(i)
            .map(|r| Place {
                region: r.name.clone(),
                cloud: r.cloud.clone(),
            })
            .unwrap_or_default()
    }

    fn index(&self, region: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name == region)
    }

    /// Reports a decision: what it changes in the live view and the metrics, its journal record
    /// (with `/history` and Datadog), then its log line, so that the line's reader finds its state.
    pub fn emit(&mut self, event: Event) {
        let wall = SystemTime::now();
        match &event {
            Event::DaemonStarted { at, .. } => {
                let active = self.index(&at.region).unwrap_or(0);
                self.view.set_active(active, wall);
                self.metrics.set_active(&self.regions, active);
            }
            Event::FailoverHeld { .. } => self.view.hold_back(),
            Event::Paused { .. } | Event::Resumed { .. } | Event::PauseEnded { .. } => {
                let paused = matches!(event, Event::Paused { .. });
                self.metrics.paused.set(i64::from(paused));
            }
            Event::Pinned { region, .. } => self.view.set_pin(Some(region.clone())),
            Event::Unpinned { .. } => self.view.set_pin(None),
            Event::FleetPaused { paused } => self.view.set_fleet_pause(Some(paused.clone())),
            Event::FleetResumed {} => self.view.set_fleet_pause(None),
            _ => {}
        }
        let (level, record) = self.quiet.told(&event, wall);
        if event.journaled() {
            self.record(record);
        }
        self.publish(wall);
        logging::event_at(&event, level);
    }

    /// A probe of the active region `region`; `failing_since` is the policy's outage timer
    /// after it. The first failure of an outage and the recovery are decisions.
    pub fn probed(&mut self, region: usize, report: &ProbeReport, failing_since: Option<Instant>) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let at = self.place(region);
        let error = report.result.as_ref().err();
        self.metrics.probed(&at.region, report);
        if let Some(not_after) = report.cert_not_after
            && let Some(said) = self.cert.seen(&at, not_after, wall)
        {
            self.emit(said);
        }
        self.metrics.healthy(&at.region, report.is_ok());
        self.view
            .checked(region, report.latency, error.map(|e| e.to_string()), wall);
        let kind = error.map(|e| e.kind.as_str());
        if self.last_probe.replace((region, kind)) != Some((region, kind)) {
            self.emit(Event::ProbeChanged {
                at: at.clone(),
                outcome: match kind {
                    None => "ok",
                    Some("tunnel_down") => "tunnel_down",
                    Some(_) => "failure",
                },
                error_kind: kind,
            });
        }
        let local = (&mut self.view, &self.metrics.local);
        if let Some(said) = self.tunnel.probed(local, &at, error, wall) {
            self.emit(said);
        }
        let change = self.view.outage_timer(failing_since, kind, now, wall);
        let outage = self.view.outage().map_or(0.0, |(_, d)| d.as_secs_f64());
        self.metrics.outage_seconds.set(outage);
        match (change, error) {
            (OutageChange::Started, Some(e)) => self.emit(Event::OutageStarted {
                at,
                error_kind: e.kind.as_str(),
                http_status: e.http_status,
                error: e.to_string(),
            }),
            (OutageChange::Recovered(failed_for), _) => self.emit(Event::OutageEnded {
                at,
                recovered: true,
                failed_for,
            }),
            _ => self.publish(wall),
        }
    }

    /// A standby region's own health check (rise/fall already applied by the caller).
    pub fn region_checked(&mut self, region: usize, healthy: bool, latency: Duration) {
        let wall = SystemTime::now();
        let at = self.place(region);
        self.metrics.healthy(&at.region, healthy);
        self.view.checked(
            region,
            latency,
            (!healthy).then(|| "unhealthy".to_string()),
            wall,
        );
        self.publish(wall);
    }

    /// The env file now names `to`. A start that writes the region it already had is not a
    /// switch; a switch ends the outage of the region it leaves.
    pub fn switched(
        &mut self,
        from: usize,
        to: usize,
        reason: SwitchReason,
        failed_for: Option<Duration>,
    ) {
        let wall = SystemTime::now();
        self.metrics.set_active(&self.regions, to);
        if from == to {
            self.view.set_active(to, wall);
            self.publish(wall);
            return;
        }
        let (from_place, to_place) = (self.place(from), self.place(to));
        if let Some((_, failing_for)) = self.view.outage() {
            self.emit(Event::OutageEnded {
                at: from_place.clone(),
                recovered: false,
                failed_for: failed_for.unwrap_or(failing_for),
            });
        }
        self.view
            .switched(from, to, reason.as_str(), failed_for, wall);
        self.metrics.outage_seconds.set(0.0);
        self.metrics
            .switched(&from_place.region, &to_place.region, reason.as_str());
        let checked = self
            .regions
            .get(from)
            .is_some_and(|r| r.health_url.is_some());
        self.metrics.forget_probe(&from_place.region, checked);
        self.emit(Event::Switch {
            from: from_place,
            to: to_place,
            reason,
            failed_for,
        });
    }

    /// The programs were restarted for `region` (or the restart ended otherwise).
    pub fn restarted(&mut self, region: &str, result: &Result<Duration, RestartError>) {
        self.quiet.restart_ended();
        let failures = self.metrics.restart_failures.get();
        let failed_calls = failures.saturating_sub(self.restart_failures_seen);
        self.restart_failures_seen = failures;
        let region = region.to_string();
        if !matches!(
            result,
            Err(RestartError::Cancelled(_) | RestartError::Lapsed { .. })
        ) {
            let failed = result.as_ref().err().map(ToString::to_string);
            self.metrics
                .local
                .restart_failed
                .set(i64::from(failed.is_some()));
            self.view.set_restart_error(failed);
        }
        self.emit(Event::restart_ended(region, result, failed_calls));
    }

    /// The pause file changed: paused (`Some`), resumed, or ended by itself.
    pub fn pause_changed(&mut self, pause: Option<Pause>, ended_by_itself: bool, wall: SystemTime) {
        self.view.set_pause(pause);
        self.emit(match pause {
            Some(p) => Event::Paused {
                since: p.since,
                until: p.until,
                describe: p.describe(wall),
            },
            None if ended_by_itself => Event::PauseEnded { how: "expired" },
            None => Event::Resumed { how: "resume" },
        });
    }

    /// Flap damping holds automatic switches back until `until` (`None`: it does not).
    pub fn hold_down(&mut self, until: Option<SystemTime>, switches_last_hour: usize) {
        let next = until.map(|u| (u, switches_last_hour));
        if self.hold_down_seen != next {
            self.hold_down_seen = next;
            self.view.set_hold_down(next);
            self.publish(SystemTime::now());
        }
    }

    /// The last write of the env file failed with `error`, or succeeded (`None`).
    pub fn env_file_write(&mut self, error: Option<String>) {
        if self.env_file_error_seen != error {
            self.env_file_error_seen = error.clone();
            self.view.set_env_file_error(error);
            self.publish(SystemTime::now());
        }
    }

    /// The daemon stops (SIGTERM/SIGINT).
    pub fn stopping(&mut self) {
        let at = self.place(self.view.active());
        self.emit(Event::DaemonStopped { at });
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
    use crate::adapters::http::ErrorKind;

    fn config() -> Config {
        crate::testing::config(&[])
    }

    fn report(ok: bool) -> ProbeReport {
        crate::testing::report((!ok).then_some(ErrorKind::Refused))
    }

    #[test]
    fn decisions_become_history_metrics_and_a_snapshot() {
        let mut obs = Observer::new(&config());
        let rx = obs.subscribe();
        obs.emit(Event::DaemonStarted {
            at: obs.place(0),
            order: vec!["NAM".into(), "EU".into(), "APAC".into()],
            probe_url: String::new(),
            interval: Duration::from_secs(10),
            threshold: Duration::from_secs(240),
            dry_run: false,
            env_file_written: true,
        });
        obs.probed(0, &report(true), None);
        let since = Instant::now();
        obs.probed(0, &report(false), Some(since));
        obs.probed(0, &report(false), Some(since));
        obs.switched(0, 1, SwitchReason::Outage, Some(Duration::from_secs(240)));
        obs.restarted("EU", &Ok(Duration::from_millis(30)));
        obs.stopping();
        let p = rx.borrow().clone();
        let events: Vec<&str> = p.history.iter().map(|r| r.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "daemon_started",
                "probe_changed",
                "probe_changed",
                "outage_started",
                "outage_ended",
                "switch",
                "restart_done",
                "daemon_stopped"
            ]
        );
        let switch = &p.history[5];
        assert_eq!(switch.str_field("region"), Some("NAM"));
        assert_eq!(switch.str_field("to_region"), Some("EU"));
        assert_eq!(switch.str_field("reason"), Some("outage"));
        assert_eq!(switch.fields["failed_for_ms"], 240_000);
        assert_eq!(p.snapshot.active.region, "EU");
        assert_eq!(p.snapshot.last_switch.as_ref().unwrap().from, "NAM");
        let (text, _) = obs.metrics().encode(None);
        assert!(text.contains(
            "failover_handler_failovers_total{from=\"NAM\",to=\"EU\",reason=\"outage\"} 1"
        ));
        assert!(
            !text.contains("failover_handler_probe_success{region=\"NAM\"}"),
            "NAM is no longer probed: {text}"
        );
        assert!(
            text.contains(
                "failover_handler_probe_failures_total{region=\"NAM\",kind=\"refused\"} 2"
            )
        );
        assert!(
            text.contains("failover_handler_outage_seconds 0.0"),
            "{text}"
        );
    }

    #[test]
    fn a_probe_is_journaled_only_when_its_outcome_changes() {
        let mut obs = Observer::new(&config());
        let rx = obs.subscribe();
        let since = Instant::now();
        let status = crate::testing::report(Some(ErrorKind::Status));
        let tunnel = crate::testing::report(Some(ErrorKind::TunnelDown));
        obs.probed(0, &report(true), None);
        obs.probed(0, &report(true), None);
        obs.probed(0, &status, Some(since));
        obs.probed(0, &status, Some(since));
        obs.probed(0, &tunnel, Some(since));
        obs.probed(1, &report(true), None);
        obs.probed(1, &report(true), None);
        let p = rx.borrow().clone();
        let changes: Vec<(&str, &str, Option<&str>)> = p
            .history
            .iter()
            .filter(|r| r.event == "probe_changed")
            .map(|r| {
                (
                    r.str_field("region").unwrap(),
                    r.str_field("outcome").unwrap(),
                    r.str_field("error_kind"),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [
                ("NAM", "ok", None),
                ("NAM", "failure", Some("status")),
                ("NAM", "tunnel_down", Some("tunnel_down")),
                ("EU", "ok", None),
            ]
        );
    }

    #[test]
    fn an_expiring_certificate_is_said_once_a_day() {
        let mut obs = Observer::new(&config());
        let rx = obs.subscribe();
        let soon = SystemTime::now() + Duration::from_secs(3 * 24 * 3600);
        let secs = soon
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut r = report(true);
        r.cert_not_after = Some(secs as i64);
        obs.probed(0, &r, None);
        obs.probed(0, &r, None);
        let far = report(true);
        obs.probed(0, &far, None);
        let p = rx.borrow().clone();
        let said: Vec<&Record> = p
            .history
            .iter()
            .filter(|r| r.event == "cert_expiring")
            .collect();
        assert_eq!(said.len(), 1, "{:?}", p.history);
        assert_eq!(said[0].level, "WARN");
        assert_eq!(said[0].str_field("region"), Some("NAM"));
        assert!(
            said[0].message.contains("(in 2days 23h)"),
            "{}",
            said[0].message
        );
        let (text, _) = obs.metrics().encode(None);
        assert!(
            !text.contains("probe_ssl_earliest_cert_expiry{"),
            "a probe without TLS leaves no expiry behind: {text}"
        );
    }
}
