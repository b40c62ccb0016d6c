//! The daemon: one loop (tick -> read the env file -> probe -> decide -> act) around the pure
//! policy. It takes a `CancellationToken` and stops at a safe point: never between starting an
//! env-file write and finishing it.

pub mod intel;
pub mod pause;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::adapters::checks::CheckReport;
use crate::adapters::envfile::{EnvContents, EnvFileError};
use crate::adapters::probe::{Probe, ProbeReport};
use crate::adapters::restart::{Restart, RestartError};
use crate::adapters::state::StateDir;
use crate::adapters::throughput::Throughput;
use crate::config::{Config, human, threshold_text};
use crate::daemon::intel::Intel;
use crate::kernel::health::Verdict;
use crate::kernel::policy::{self, Cause, Decision, Outcome, Policy};
use crate::kernel::region::{self, Region};
use crate::kernel::standby::Subject;
use crate::report::observer::Observer;

/// Why the daemon writes the env file and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// At start, the env file did not name the region to use.
    Start,
    /// The active region's outage lasted the threshold.
    Outage,
    /// The preferred region has been healthy for `failback_after`.
    Failback,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Outage => "outage",
            Reason::Failback => "failback",
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

pub struct Daemon<P, R> {
    config: Arc<Config>,
    policy: Policy,
    probe: P,
    restarter: R,
    state: StateDir,
    /// The region the env file named when we last read or wrote it: a different one on disk
    /// means somebody switched by hand.
    last_seen: Option<String>,
    /// A start-up write that has not succeeded yet.
    start_pending: bool,
    /// The outage (by its start) whose failover was announced, so a retried write is not
    /// announced twice.
    announced: Option<Instant>,
    /// The failback target already announced, so a retried write is not announced twice.
    failback_announced: Option<usize>,
    /// Standby checks, pin, throughput gate and latency file.
    intel: Intel,
    /// Where decisions are reported: metrics, status, journal, Datadog.
    obs: Observer,
    /// `pause`/`resume` as the state directory says.
    pause: pause::Gate,
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    pub fn new(config: Arc<Config>, probe: P, restarter: R, state: StateDir) -> Self {
        let policy = config.policy(0);
        let obs = Observer::new(&config);
        let pause = pause::Gate::new(state.clone());
        Daemon {
            intel: Intel::new(config.clone()),
            obs,
            pause,
            config,
            policy,
            probe,
            restarter,
            state,
            last_seen: None,
            start_pending: false,
            announced: None,
            failback_announced: None,
        }
    }

    /// Attaches the standby check results and the throughput gate's meter.
    pub fn with_checks(
        mut self,
        checks: Option<tokio::sync::mpsc::Receiver<Vec<CheckReport>>>,
        throughput: Option<Throughput>,
    ) -> Self {
        self.intel.attach(checks, throughput);
        self
    }

    /// Reports to `obs` (wired to the journal, endpoints and Datadog) instead of memory only.
    pub fn with_observer(mut self, obs: Observer) -> Self {
        self.obs = obs;
        self
    }

    fn region(&self, i: usize) -> &Region {
        &self.config.regions[i]
    }

    fn active(&self) -> &Region {
        self.region(self.policy.active())
    }

    async fn read_env(&self) -> Result<Option<EnvContents>, EnvFileError> {
        let env_file = self.config.env_file.clone();
        tokio::task::spawn_blocking(move || env_file.read())
            .await
            .unwrap_or_else(|e| {
                Err(EnvFileError::Read {
                    path: self.config.env_file.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// Writes the env file for region `i`; runs to completion even during shutdown.
    async fn write_env(&self, i: usize) -> Result<(), EnvFileError> {
        let env_file = self.config.env_file.clone();
        let region = self.region(i).clone();
        tokio::task::spawn_blocking(move || env_file.write(&region))
            .await
            .unwrap_or_else(|e| {
                Err(EnvFileError::Write {
                    path: self.config.env_file.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.start(&cancel).await;
        let mut next = Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                batch = self.intel.next_batch() => {
                    let checked: Vec<usize> = batch
                        .iter()
                        .filter_map(|r| match r.subject {
                            Subject::Region(i) => Some(i),
                            Subject::Reference(_) => None,
                        })
                        .collect();
                    self.intel.checked(&mut self.policy, batch);
                    self.report_checks(&checked);
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            let started = Instant::now();
            self.sync_env_file(&cancel).await;
            let pinned = self.policy.pinned();
            self.intel.sync_pin(&mut self.policy, &self.state);
            if self.policy.pinned() != pinned {
                let name = self.policy.pinned().map(|i| self.region(i).name.clone());
                self.obs.pin_changed(name.as_deref());
            }
            self.pause.refresh(&mut self.obs).await;
            if self.start_pending {
                self.apply(self.policy.active(), Reason::Start, &cancel)
                    .await;
            }
            if cancel.is_cancelled() {
                break;
            }
            let report = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.probe.probe() => r,
            };
            self.observe(report, &cancel).await;
            let cadence = if self.policy.failing_since().is_some() {
                self.config.probe.fail_interval
            } else {
                self.config.probe.interval
            };
            next = started + cadence;
        }
        info!(event = "shutdown", region = %self.active().name, "Shutting down: region {} stays active", self.active().name);
        self.obs.stopping();
    }

    async fn start(&mut self, cancel: &CancellationToken) {
        if let Ok(removed @ 1..) = self.config.env_file.remove_stale_temp_files() {
            warn!(
                event = "stale_temp_removed",
                count = removed,
                "Removed {removed} temp file(s) left beside {} by a writer that was killed mid-write",
                self.config.env_file.path.display()
            );
        }
        let on_disk = match self.read_env().await {
            Ok(c) => c,
            Err(e) => {
                warn!(
                    event = "env_file_unreadable",
                    error_kind = e.kind(),
                    "{e}; it will be rewritten"
                );
                None
            }
        };
        let env_region = on_disk.as_ref().and_then(|c| c.region.as_deref());
        let env_index = env_region.and_then(|r| region::find(&self.config.regions, r));
        if let (Some(name), None) = (env_region, env_index) {
            warn!(
                event = "env_file_unknown_region",
                region = name,
                "The env file names region {name}, which is not in the failover list"
            );
        } else if on_disk.is_some() && env_region.is_none() {
            warn!(
                event = "env_file_unrecognised",
                path = %self.config.env_file.path.display(),
                "The env file {} names no region (or only unsafe values): it will be rewritten",
                self.config.env_file.path.display()
            );
        }
        let start = policy::startup(self.config.preferred.is_some(), env_index);
        self.policy = self.config.policy(start.active);
        self.last_seen = env_index.map(|i| self.region(i).name.clone());
        self.obs.started(start.active, start.write);
        let active = self.active().clone();
        let names: Vec<&str> = self
            .config
            .regions
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        info!(
            event = "start",
            region = %active.name,
            cloud = %active.cloud,
            version = env!("CARGO_PKG_VERSION"),
            order = names.join(","),
            probe_url = %self.config.probe.url_template,
            interval_ms = ms(self.config.probe.interval),
            threshold_ms = ms(self.config.failover.threshold),
            dry_run = self.config.dry_run,
            "failover-handler {} starting on region {} and cloud {}: failover order {}",
            env!("CARGO_PKG_VERSION"),
            active.name,
            active.cloud,
            names.join(" -> ")
        );
        for w in &self.config.warnings {
            warn!(event = "config_warning", "{w}");
        }
        if start.write {
            self.apply(start.active, Reason::Start, cancel).await;
            return;
        }
        info!(
            event = "env_file_current",
            region = %active.name,
            cloud = %active.cloud,
            path = %self.config.env_file.path.display(),
            "The env file already names region {} and cloud {}: nothing to write, nothing to restart",
            active.name,
            active.cloud
        );
        if let Some(pending) = self.state.restart_pending() {
            if pending.eq_ignore_ascii_case(&active.name) {
                warn!(event = "restart_resumed", region = %active.name, "A restart for region {} was interrupted before it finished: restarting the programs now", active.name);
                self.restart(cancel).await;
            } else {
                self.state.clear_restart_pending();
            }
        }
    }

    /// Re-reads the env file: adopts a region switched by hand, restores a missing file.
    async fn sync_env_file(&mut self, cancel: &CancellationToken) {
        let contents = self.read_env().await;
        let named = match &contents {
            Ok(Some(c)) => c
                .region
                .as_deref()
                .and_then(|r| region::find(&self.config.regions, r)),
            _ => None,
        };
        match named {
            Some(i) => {
                let name = self.region(i).name.clone();
                if self.last_seen.as_deref() != Some(name.as_str()) {
                    self.last_seen = Some(name.clone());
                    if i != self.policy.active() {
                        let previous = self.active().name.clone();
                        self.obs.switched(self.policy.active(), i, "manual", None);
                        self.policy.adopt(i);
                        self.start_pending = false;
                        self.announced = None;
                        self.failback_announced = None;
                        let cloud = self.region(i).cloud.clone();
                        info!(
                            event = "adopted",
                            region = %name,
                            cloud = %cloud,
                            previous_region = %previous,
                            "The env file was switched to region {name} and cloud {cloud} by hand: adopting it (was {previous})"
                        );
                    }
                }
            }
            None if self.config.dry_run || self.start_pending => {}
            None => {
                let why = match contents {
                    Ok(None) => "is missing".to_string(),
                    Ok(Some(_)) => "names no region of the list".to_string(),
                    Err(e) => format!("cannot be read ({e})"),
                };
                let active = self.active().clone();
                warn!(
                    event = "env_file_restored",
                    region = %active.name,
                    path = %self.config.env_file.path.display(),
                    "The env file {} {why}: writing region {} back (programs keep running)",
                    self.config.env_file.path.display(),
                    active.name
                );
                if let Err(e) = self.write_env(self.policy.active()).await {
                    error!(
                        event = "env_file_write_failed",
                        error_kind = e.kind(),
                        "{e}"
                    );
                } else {
                    self.last_seen = Some(active.name);
                }
                let _ = cancel;
            }
        }
    }

    async fn observe(&mut self, report: ProbeReport, cancel: &CancellationToken) {
        let now = Instant::now();
        let outcome = if report.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.intel.record_latency(&report).await;
        let mut decision = self.policy.observe(now, outcome);
        self.obs
            .probed(self.policy.active(), &report, self.policy.failing_since());
        let active = self.active().clone();
        let latency_ms = ms(report.latency);
        match (&report.result, decision) {
            (Ok(code), Decision::Healthy) => {
                debug!(event = "probe_ok", region = %active.name, cloud = %active.cloud, latency_ms, http_status = code, "Probe of {} ok in {latency_ms} ms", active.cloud);
            }
            (_, Decision::Recovered { failed_for }) => {
                info!(
                    event = "recovered",
                    region = %active.name,
                    cloud = %active.cloud,
                    latency_ms,
                    failed_for_ms = ms(failed_for),
                    "Probe of {} ok again after {} of failures: outage timer reset",
                    active.cloud,
                    human(Duration::from_millis(ms(failed_for)))
                );
            }
            (Err(e), _) => {
                let failing_for = self
                    .policy
                    .failing_since()
                    .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                warn!(
                    event = "probe_failed",
                    region = %active.name,
                    cloud = %active.cloud,
                    error_kind = e.kind.as_str(),
                    http_status = e.http_status,
                    latency_ms,
                    failing_for_ms = ms(failing_for),
                    "Probe of {} failed ({e}); failing for {} of {}",
                    active.cloud,
                    human(Duration::from_millis(ms(failing_for))),
                    human(self.config.failover.threshold)
                );
            }
            _ => {}
        }
        if let Decision::MeasureThroughput { .. } = decision {
            decision = self.intel.measure(&mut self.policy, cancel).await;
        }
        if let Decision::Failback {
            from,
            to,
            healthy_for,
        } = decision
        {
            if self.pause.is_paused() {
                debug!(
                    event = "failback_paused",
                    "Failback held: automatic switching is paused"
                );
            } else {
                if self.failback_announced != Some(to) {
                    self.failback_announced = Some(to);
                    self.intel.failback(from, to, healthy_for);
                }
                self.apply(to, Reason::Failback, cancel).await;
            }
        }
        self.intel.held(&self.policy, &decision);
        if let Decision::Failover {
            from,
            to,
            failed_for,
        } = decision
        {
            let since = self.policy.failing_since();
            let (f, t) = (self.region(from).clone(), self.region(to).clone());
            if self.pause.hold(since, &f, &t, failed_for, &mut self.obs) {
                return;
            }
            if self.announced != since {
                self.announced = since;
                let to_region = self.region(to).clone();
                warn!(
                    event = "failover",
                    region = %self.region(from).name,
                    cloud = %self.region(from).cloud,
                    to_region = %to_region.name,
                    to_cloud = %to_region.cloud,
                    reason = "outage",
                    failed_for_ms = ms(failed_for),
                    "Waited for {}. Application restarting due to failure with Ext Cloud: {}",
                    threshold_text(self.config.failover.threshold),
                    self.region(from).cloud
                );
            }
            self.apply(to, Reason::Outage, cancel).await;
        }
    }

    /// Makes region `to` active: writes the env file, then restarts the programs.
    async fn apply(&mut self, to: usize, reason: Reason, cancel: &CancellationToken) {
        let region = self.region(to).clone();
        if self.config.dry_run {
            info!(
                event = "dry_run",
                region = %region.name,
                cloud = %region.cloud,
                "Dry run: would write region {} and cloud {} to {} and restart the programs",
                region.name,
                region.cloud,
                self.config.env_file.path.display()
            );
            self.confirm(to, reason);
            self.start_pending = false;
            return;
        }
        if let Err(e) = self.write_env(to).await {
            error!(
                event = "env_file_write_failed",
                region = %region.name,
                error_kind = e.kind(),
                "{e}; staying on region {} and retrying at the next probe",
                self.active().name
            );
            self.start_pending = reason == Reason::Start;
            return;
        }
        self.start_pending = false;
        self.last_seen = Some(region.name.clone());
        let from = self.policy.active();
        let failed_for = self
            .policy
            .failing_since()
            .map(|s| Instant::now().saturating_duration_since(s));
        self.confirm(to, reason);
        self.obs.switched(from, to, reason.as_str(), failed_for);
        info!(
            event = "env_file_written",
            region = %region.name,
            cloud = %region.cloud,
            path = %self.config.env_file.path.display(),
            "Wrote region {} and cloud {} to {}",
            region.name,
            region.cloud,
            self.config.env_file.path.display()
        );
        if !self.config.restart.enabled {
            info!(
                event = "restart_skipped",
                "Not restarting the programs (--no-restart)"
            );
            return;
        }
        match reason {
            Reason::Outage | Reason::Failback => crate::adapters::restart::announce(&region),
            Reason::Start => info!(
                event = "restarting",
                region = %region.name,
                cloud = %region.cloud,
                "Starting on region {} and cloud {}: restarting the programs so they use it",
                region.name,
                region.cloud
            ),
        }
        self.restart(cancel).await;
    }

    /// Shows the standby checks' verdicts in the status view and the metrics.
    fn report_checks(&mut self, regions: &[usize]) {
        for &i in regions {
            let standbys = self.policy.standbys();
            let subject = Subject::Region(i);
            let Some(verdict) = standbys.verdict(subject).filter(|v| *v != Verdict::Unknown) else {
                continue;
            };
            let latency = standbys.latency(subject).unwrap_or_default();
            self.obs.region_checked(i, verdict == Verdict::Up, latency);
        }
    }

    /// Tells the policy the switch to `to` is made; an automatic one counts for damping, and
    /// an outage may end a pin (the pin file follows at the next tick).
    fn confirm(&mut self, to: usize, reason: Reason) {
        self.failback_announced = None;
        let cause = match reason {
            Reason::Start => return self.policy.switched(to),
            Reason::Outage => Cause::Outage,
            Reason::Failback => Cause::Failback,
        };
        self.policy.moved(Instant::now(), to, cause);
    }

    async fn restart(&mut self, cancel: &CancellationToken) {
        let region = self.active().name.clone();
        self.state.mark_restart_pending(&region);
        let result = self.restarter.restart(cancel).await;
        self.obs.restarted(&region, &result);
        match result {
            Ok(took) => {
                self.state.clear_restart_pending();
                info!(event = "restart_done", region = %region, duration_ms = ms(took), "Programs restarted in {} ms", ms(took));
            }
            Err(RestartError::Cancelled(stopped)) => {
                warn!(
                    event = "restart_interrupted",
                    region = %region,
                    stopped = stopped.join(","),
                    "Restart interrupted by shutdown; left stopped: [{}]; it resumes at the next start",
                    stopped.join(", ")
                );
            }
            Err(e) => {
                error!(event = "restart_gave_up", region = %region, "{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::probe::{ErrorKind, ProbeError};
    use std::sync::Mutex;

    /// A probe that answers from a script of outcomes keyed by elapsed time.
    struct ScriptedProbe {
        t0: Instant,
        /// Until each instant (seconds since t0) the probe gives this answer.
        script: Vec<(u64, bool)>,
    }

    impl Probe for ScriptedProbe {
        async fn probe(&self) -> ProbeReport {
            let elapsed = self.t0.elapsed().as_secs();
            let ok = self
                .script
                .iter()
                .find(|(until, _)| elapsed < *until)
                .is_none_or(|(_, ok)| *ok);
            ProbeReport {
                latency: Duration::from_millis(5),
                result: if ok {
                    Ok(200)
                } else {
                    Err(ProbeError::new(ErrorKind::Refused, "refused"))
                },
                bytes_sent: 0,
                bytes_received: 0,
            }
        }
    }

    #[derive(Clone, Default)]
    struct CountingRestart(Arc<Mutex<Vec<Instant>>>);

    impl Restart for CountingRestart {
        async fn restart(&self, _cancel: &CancellationToken) -> Result<Duration, RestartError> {
            self.0.lock().unwrap().push(Instant::now());
            Ok(Duration::from_millis(1))
        }
    }

    fn config(dir: &std::path::Path, args: &[&str]) -> Arc<Config> {
        use clap::Parser;
        let mut argv = vec!["fh", "--env-file"];
        let env = dir.join("ext_cloud.env");
        let env = env.to_str().unwrap().to_string();
        argv.push(&env);
        argv.extend_from_slice(args);
        let cli = crate::config::cli::Cli::try_parse_from(argv).unwrap();
        let vars = |k: &str| match k {
            "CONNECTION_KEEPALIVE_ORG_ID" | "CONNECTION_KEEPALIVE_TXN_ID" => Some("x".to_string()),
            _ => None,
        };
        Arc::new(Config::build(&cli.options, &vars).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_outage_fails_over_once_then_the_new_region_gets_a_full_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &["--region", "EU", "--interval", "10s", "--threshold", "4m"],
        );
        let restarts = CountingRestart::default();
        let t0 = Instant::now();
        // EU fails from 100 s on; NAM (after the switch) fails too, forever.
        let probe = ScriptedProbe {
            t0,
            script: vec![(100, true), (u64::MAX, false)],
        };
        let state = StateDir::open(&dir.path().join("state"));
        let daemon = Daemon::new(cfg.clone(), probe, restarts.clone(), state);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(100 + 240 + 5)).await;
        let env = std::fs::read_to_string(&cfg.env_file.path).unwrap();
        assert_eq!(
            env,
            "export EXT_CLOUD=cloud.nam.ext.com\nexport EXT_REGION=NAM\n"
        );
        let times = restarts.0.lock().unwrap().clone();
        assert_eq!(times.len(), 2, "start + one failover");
        let failover_at = times[1] - t0;
        assert!(
            failover_at >= Duration::from_secs(100 + 240),
            "{failover_at:?}"
        );
        assert!(
            failover_at <= Duration::from_secs(100 + 240 + 10),
            "{failover_at:?}"
        );
        // NAM is failing too: the next move comes a full threshold after NAM's first failure.
        tokio::time::sleep(Duration::from_secs(230)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 2);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 3);
        let env = std::fs::read_to_string(&cfg.env_file.path).unwrap();
        assert!(env.contains("EXT_REGION=APAC"), "{env}");
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_switch_is_adopted_not_fought() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["--interval", "10s", "--threshold", "1m"]);
        let restarts = CountingRestart::default();
        let probe = ScriptedProbe {
            t0: Instant::now(),
            script: vec![],
        };
        let daemon = Daemon::new(
            cfg.clone(),
            probe,
            restarts.clone(),
            StateDir::open(&dir.path().join("s")),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(daemon.run(cancel.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            std::fs::read_to_string(&cfg.env_file.path)
                .unwrap()
                .contains("EXT_REGION=NAM")
        );
        let apac = cfg.region("APAC").unwrap();
        cfg.env_file.write(apac).unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(
            std::fs::read_to_string(&cfg.env_file.path)
                .unwrap()
                .contains("EXT_REGION=APAC")
        );
        assert_eq!(
            restarts.0.lock().unwrap().len(),
            1,
            "only the start-up restart"
        );
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupted_restart_is_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["--region", "EU"]);
        cfg.env_file.write(cfg.region("EU").unwrap()).unwrap();
        let state = StateDir::open(&dir.path().join("s"));
        state.mark_restart_pending("EU");
        let restarts = CountingRestart::default();
        let probe = ScriptedProbe {
            t0: Instant::now(),
            script: vec![],
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            Daemon::new(cfg, probe, restarts.clone(), state.clone()).run(cancel.clone()),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(restarts.0.lock().unwrap().len(), 1);
        assert_eq!(state.restart_pending(), None);
        cancel.cancel();
        task.await.unwrap();
    }
}
