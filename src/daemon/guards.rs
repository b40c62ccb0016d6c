//! What the policy's guards are fed and what they hold back (region intelligence), kept out of
//! the loop so that the loop needs only a few call sites: standby check results in (with a log
//! line on every flip), the throughput gate's measurement when the policy asks for one, the
//! latency file, and the log lines of held switches and failbacks. Every rule is the policy's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::adapters::http::CheckReport;
use crate::adapters::http::ProbeReport;
use crate::adapters::http::Throughput;
use crate::config::Config;
use crate::daemon::clock;
use crate::kernel::health::Verdict;
use crate::kernel::policy::{Cause, Decision, Done, Hold, Input, Policy};
use crate::kernel::standby::Subject;
use crate::report::event::{DeferReason, Deferred, Event, Health, Place, Standby};
use crate::report::logging;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The latency file is rewritten when the latency moves by this many ms or more...
const LATENCY_STEP_MS: u64 = 5;

/// ...and by a tenth of the value in the file or more: the jitter of a healthy link is no news.
fn latency_moved(written: u64, now: u64) -> bool {
    let moved = written.abs_diff(now);
    moved >= LATENCY_STEP_MS && moved.saturating_mul(10) >= written
}

pub struct Guards {
    config: Arc<Config>,
    checks: Option<mpsc::Receiver<Vec<CheckReport>>>,
    throughput: Option<Throughput>,
    latency_file_failing: bool,
    /// The latency file and the value last written to it.
    latency_written: Option<(std::path::PathBuf, u64)>,
}

impl Guards {
    pub fn new(config: Arc<Config>) -> Self {
        Guards {
            config,
            checks: None,
            throughput: None,
            latency_file_failing: false,
            latency_written: None,
        }
    }

    /// Attaches the standby check results and the throughput gate's meter.
    pub fn attach(
        &mut self,
        checks: Option<mpsc::Receiver<Vec<CheckReport>>>,
        throughput: Option<Throughput>,
    ) {
        self.checks = checks;
        self.throughput = throughput;
    }

    /// The next round of standby checks; never ready when there are none.
    pub async fn next_batch(&mut self) -> Vec<CheckReport> {
        loop {
            match self.checks.as_mut() {
                Some(rx) => match rx.recv().await {
                    Some(batch) => return batch,
                    None => self.checks = None,
                },
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn name(&self, subject: Subject) -> String {
        match subject {
            Subject::Region(i) => self.config.regions[i].name.clone(),
            Subject::Reference(i) => self.config.network.reference[i].to_string(),
        }
    }

    /// Hands a round of standby checks to the policy and logs every verdict that flipped.
    pub fn checked(&self, policy: &mut Policy, batch: Vec<CheckReport>) {
        let now = clock::now();
        for report in batch {
            let ok = report.result.is_ok();
            let check = Input::Check {
                subject: report.subject,
                ok,
                latency: report.latency,
            };
            let Decision::Flipped(verdict) = policy.step(now, check) else {
                continue;
            };
            let standbys = policy.standbys();
            let healthy_standbys = standbys.healthy_standbys(policy.active());
            let latency_ms = standbys.latency(report.subject).map(ms);
            let name = self.name(report.subject);
            let error_kind = report.result.as_ref().err().map(|e| e.kind.as_str());
            let error = report.result.as_ref().err().map(|e| e.to_string());
            let down = verdict == Verdict::Down && error.is_some();
            let standby = matches!(report.subject, Subject::Region(i) if i != policy.active());
            let mut health = Health {
                region: None,
                target: None,
                cloud: None,
                health: verdict.as_str(),
                error_kind: error_kind.filter(|_| down),
                latency_ms: latency_ms.filter(|_| !down),
                healthy_standbys,
                what: format!("reference {name}"),
                error: error.filter(|_| down),
                none_left: down && standby && healthy_standbys == 0,
            };
            let told = match report.subject {
                Subject::Region(i) => {
                    let r = &self.config.regions[i];
                    let role = if i == policy.active() {
                        "active"
                    } else {
                        "standby"
                    };
                    health.what = format!("{role} region {} ({})", r.name, r.cloud);
                    health.region = Some(name);
                    health.cloud = Some(r.cloud.clone());
                    Standby::RegionHealth(health)
                }
                Subject::Reference(_) => {
                    health.target = Some(name);
                    Standby::ReferenceHealth(health)
                }
            };
            logging::event(&Event::Standby(told));
        }
    }

    /// Writes the latency of a successful probe to `network.latency_file`, in whole ms: at the
    /// first one, then only when it has moved from the value in the file (`latency_moved`), so
    /// that a daemon at rest leaves the file alone.
    pub async fn record_latency(&mut self, report: &ProbeReport) {
        let Some(path) = self.config.network.latency_file.clone() else {
            return;
        };
        if !report.is_ok() || self.config.dry_run {
            return;
        }
        let latency = ms(report.latency);
        if let Some((written_to, written)) = &self.latency_written
            && *written_to == path
            && !latency_moved(*written, latency)
        {
            return;
        }
        let text = format!("{latency}\n");
        let shown = path.display().to_string();
        let target = path.clone();
        let result = tokio::task::spawn_blocking(move || {
            crate::adapters::files::envfile::write_atomic(&target, text.as_bytes(), 0o644)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        self.latency_written = result.is_ok().then_some((path, latency));
        let told = match (result, self.latency_file_failing) {
            (Err(e), false) => Standby::LatencyFileFailed {
                path: shown,
                error: e.to_string(),
            },
            (Ok(()), true) => Standby::LatencyFileOk { path: shown },
            _ => return,
        };
        self.latency_file_failing = matches!(told, Standby::LatencyFileFailed { .. });
        logging::event(&Event::Standby(told));
    }

    /// The throughput gate asked for a figure: measures it (in kbit/s, `None` when the
    /// download failed); a measurement cut short by `cancel` is not done.
    pub async fn measure(&self, cancel: &CancellationToken) -> Done {
        let Some(meter) = &self.throughput else {
            return Done::Measured(Some(u64::MAX));
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return Done::Deferred,
            r = meter.measure() => r,
        };
        let min_mbps = self.config.network.min_mbps;
        let kbps = match result {
            Ok(m) => {
                logging::event(&Event::Standby(Standby::ThroughputMeasured {
                    mbps: m.mbps(),
                    min_mbps,
                    bytes: m.bytes,
                    took: m.elapsed,
                    url: meter.url().to_string(),
                }));
                Some(m.kbps())
            }
            Err(e) => {
                logging::event(&Event::Standby(Standby::ThroughputFailed {
                    error_kind: e.kind.as_str(),
                    min_mbps,
                    url: meter.url().to_string(),
                    error: e.to_string(),
                }));
                None
            }
        };
        Done::Measured(kbps)
    }

    /// The event of a held switch, once per change of what holds it.
    pub fn held(&self, policy: &Policy, decision: &Decision) -> Option<Event> {
        let Decision::Held {
            cause,
            from,
            to,
            reason,
            announce: true,
        } = *decision
        else {
            return None;
        };
        let now = clock::now();
        let place = |i: usize| {
            let r = &self.config.regions[i];
            Place {
                region: r.name.clone(),
                cloud: r.cloud.clone(),
            }
        };
        let to = to.map(place);
        let reason = match reason {
            Hold::AllRegionsDown => DeferReason::AllRegionsDown {
                healthy_standbys: 0,
            },
            Hold::HostNetwork => DeferReason::HostNetwork {
                references: (self.config.network.reference.iter())
                    .map(|t| t.to_string())
                    .collect(),
            },
            Hold::Damped { next_allowed_in } => DeferReason::Damped {
                cause: cause.as_str(),
                to,
                next_allowed_in,
                switches_last_hour: policy.recent_switches() as u64,
                max_switches_per_hour: self.config.failover.max_switches_per_hour,
            },
            Hold::TunnelDown => DeferReason::TunnelDown,
            Hold::Paused => DeferReason::Paused {
                cause: cause.as_str(),
            },
            Hold::LowThroughput { kbps } => DeferReason::LowThroughput {
                to,
                mbps: kbps.map(|k| k as f64 / 1000.0),
                min_mbps: self.config.network.min_mbps,
                next_measure_in: policy.rules().gate_retry,
            },
        };
        let deferred = Deferred {
            at: place(from),
            failing_for: (policy.failing_since()).map(|s| now.saturating_duration_since(s)),
            reason,
        };
        Some(match cause {
            Cause::Outage => Event::FailoverDeferred(deferred),
            Cause::Failback => Event::FailbackDeferred(deferred),
        })
    }
}

#[cfg(test)]
mod tests {
    //! The loop with its guards under a paused clock: fake probe, fake restarts,
    //! standby check results sent by the test.

    use super::*;
    use crate::adapters::files::EnvFile;
    use crate::adapters::files::StateDir;
    use crate::adapters::http::{ErrorKind, Probe, ProbeError};
    use crate::adapters::supervisor::{Restart, RestartError};
    use crate::daemon::Daemon;
    use clap::Parser;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// Fails while the env file names a region in `down`; records when it was called.
    #[derive(Clone)]
    struct RegionProbe {
        env: EnvFile,
        down: Arc<Mutex<HashSet<String>>>,
        calls: Arc<Mutex<Vec<Instant>>>,
        latency: Arc<Mutex<Duration>>,
    }

    impl Probe for RegionProbe {
        async fn probe(&self) -> ProbeReport {
            self.calls.lock().unwrap().push(Instant::now());
            let region = self.env.read().ok().flatten().and_then(|c| c.region);
            let down = region.is_some_and(|r| self.down.lock().unwrap().contains(&r));
            ProbeReport {
                latency: *self.latency.lock().unwrap(),
                result: if down {
                    Err(ProbeError::new(ErrorKind::Status, "HTTP 503"))
                } else {
                    Ok(200)
                },
                bytes_sent: 0,
                bytes_received: 0,
                phases: Default::default(),
                cert_not_after: None,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Restarts(Arc<Mutex<Vec<Instant>>>);

    impl Restart for Restarts {
        async fn restart(&self, _cancel: &CancellationToken) -> Result<Duration, RestartError> {
            self.0.lock().unwrap().push(Instant::now());
            Ok(Duration::from_millis(1))
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        config: Arc<Config>,
        probe: RegionProbe,
        restarts: Restarts,
        /// Regions whose standby checks fail.
        standby_down: Arc<Mutex<HashSet<String>>>,
        cancel: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Rig {
        /// EU preferred, NAM and APAC standbys, all with a health_url; `extra` is appended
        /// to the config file. Standby results are sent every second.
        fn start(extra: &str, probe_down: &[&str], standby_down: &[&str]) -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.toml");
            let text = format!(
                "region = \"EU\"\nstate_dir = \"{}\"\n\
                 [[regions]]\nname = \"NAM\"\ncloud = \"cloud.nam.ext.com\"\nhealth_url = \"tcp://127.0.0.1:1\"\n\
                 [[regions]]\nname = \"EU\"\ncloud = \"cloud.eu.ext.com\"\nhealth_url = \"tcp://127.0.0.1:1\"\n\
                 [[regions]]\nname = \"APAC\"\ncloud = \"cloud.apac.ext.com\"\nhealth_url = \"tcp://127.0.0.1:1\"\n\
                 [region_checks]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{extra}",
                dir.path().join("state").display()
            );
            std::fs::write(&path, text).unwrap();
            let env = dir.path().join("ext_cloud.env");
            let cli = crate::config::cli::Cli::try_parse_from([
                "fh",
                "-c",
                path.to_str().unwrap(),
                "--env-file",
                env.to_str().unwrap(),
            ])
            .unwrap();
            let vars = |k: &str| match k {
                "CONNECTION_KEEPALIVE_ORG_ID" | "CONNECTION_KEEPALIVE_TXN_ID" => {
                    Some("x".to_string())
                }
                _ => None,
            };
            let config = Arc::new(Config::build(&cli.options, &vars).unwrap());
            let set = |names: &[&str]| {
                Arc::new(Mutex::new(names.iter().map(|s| s.to_string()).collect()))
            };
            let probe = RegionProbe {
                env: config.env_file.clone(),
                down: set(probe_down),
                calls: Arc::default(),
                latency: Arc::new(Mutex::new(Duration::from_millis(5))),
            };
            let standby_down: Arc<Mutex<HashSet<String>>> = set(standby_down);
            let (tx, rx) = mpsc::channel(4);
            let (cfg, down) = (config.clone(), standby_down.clone());
            tokio::spawn(async move {
                loop {
                    let batch = cfg
                        .regions
                        .iter()
                        .enumerate()
                        .map(|(i, r)| CheckReport {
                            subject: Subject::Region(i),
                            result: if down.lock().unwrap().contains(&r.name) {
                                Err(ProbeError::new(ErrorKind::Refused, "refused"))
                            } else {
                                Ok(())
                            },
                            latency: Duration::from_millis(10),
                        })
                        .collect();
                    if tx.send(batch).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let restarts = Restarts::default();
            let state = StateDir::open(&config.state_dir);
            let cancel = CancellationToken::new();
            let daemon = Daemon::new(config.clone(), probe.clone(), restarts.clone(), state)
                .with_checks(Some(rx), None);
            let task = tokio::spawn(daemon.run(cancel.clone()));
            Rig {
                _dir: dir,
                config,
                probe,
                restarts,
                standby_down,
                cancel,
                task,
            }
        }

        fn region(&self) -> Option<String> {
            self.config.env_file.read().unwrap().and_then(|c| c.region)
        }

        fn restarts(&self) -> usize {
            self.restarts.0.lock().unwrap().len()
        }

        async fn stop(self) {
            self.cancel.cancel();
            self.task.await.unwrap();
        }
    }

    async fn sleep(secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_skips_the_standby_that_is_down() {
        let rig = Rig::start("[failover]\nthreshold = \"1m\"\n", &["EU"], &["NAM"]);
        sleep(5).await;
        assert_eq!(rig.region().as_deref(), Some("EU"));
        sleep(60).await;
        assert_eq!(rig.region().as_deref(), Some("APAC"));
        assert_eq!(rig.restarts(), 2, "start + one failover");
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn all_down_stays_without_restarts_until_a_standby_comes_back() {
        let rig = Rig::start(
            "[failover]\nthreshold = \"1m\"\n",
            &["EU"],
            &["NAM", "EU", "APAC"],
        );
        sleep(5 * 60).await;
        assert_eq!(rig.region().as_deref(), Some("EU"));
        assert_eq!(rig.restarts(), 1, "only the start-up restart");
        rig.standby_down.lock().unwrap().remove("APAC");
        // two good checks (rise 2), then the next probe (fail_interval = interval 10 s)
        sleep(15).await;
        assert_eq!(rig.region().as_deref(), Some("APAC"));
        assert_eq!(rig.restarts(), 2);
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fail_interval_is_the_cadence_while_failing_only() {
        let rig = Rig::start(
            "[failover]\nthreshold = \"1m\"\n[probe]\ninterval = \"10s\"\nfail_interval = \"2s\"\n",
            &[],
            &[],
        );
        let t0 = Instant::now();
        sleep(31).await;
        rig.probe.down.lock().unwrap().insert("EU".into());
        sleep(20).await;
        rig.probe.down.lock().unwrap().clear();
        sleep(60).await;
        let calls = rig.probe.calls.lock().unwrap().clone();
        let count = |from: u64, to: u64| {
            calls
                .iter()
                .filter(|t| (from..to).contains(&(**t - t0).as_secs()))
                .count()
        };
        // healthy: every 10 s; failing (the probe at 40 s is the first to fail): every 2 s;
        // healthy again from the probe at 52 s: every 10 s.
        assert_eq!(count(0, 31), 4, "{calls:?}");
        assert_eq!(count(41, 51), 5, "{calls:?}");
        assert_eq!(count(52, 53), 1, "{calls:?}");
        assert_eq!(count(53, 111), 5, "{calls:?}");
        assert_eq!(rig.region().as_deref(), Some("EU"), "no failover");
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failback_whose_write_is_retried_is_announced_once() {
        use tracing_subscriber::prelude::*;
        let (layer, logs) =
            crate::report::logging::capture("t", crate::config::cli::LogFormat::Json);
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let rig = Rig::start(
            "[failover]\nthreshold = \"1m\"\nfailback = \"auto\"\nfailback_after = \"5m\"\n",
            &["EU"],
            &["EU"],
        );
        sleep(65).await;
        assert_eq!(rig.region().as_deref(), Some("NAM"));
        rig.probe.down.lock().unwrap().clear();
        rig.standby_down.lock().unwrap().clear();
        // a `switch` holds the env file's lock: every failback write is busy and retried
        let held = std::fs::File::open(rig.config.env_file.lock_path()).unwrap();
        held.lock().unwrap();
        sleep(8 * 60).await;
        assert_eq!(rig.region().as_deref(), Some("NAM"));
        held.unlock().unwrap();
        sleep(30).await;
        assert_eq!(rig.region().as_deref(), Some("EU"));
        let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        let count = |event: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("\"event\":\"{event}\"")))
                .count()
        };
        assert_eq!(
            count("env_file_write_failed"),
            1,
            "said once, not per retry: {text}"
        );
        assert_eq!(count("env_file_write_recovered"), 1, "{text}");
        assert_eq!(count("failback"), 1, "{text}");
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn auto_failback_after_failback_after_and_the_pin_file_holds_it() {
        let rig = Rig::start(
            "[failover]\nthreshold = \"1m\"\nfailback = \"auto\"\nfailback_after = \"5m\"\n",
            &["EU"],
            &["EU"],
        );
        sleep(65).await;
        assert_eq!(rig.region().as_deref(), Some("NAM"));
        let failover_at = Instant::now();
        // EU recovers; failback five minutes after its checks say so
        rig.probe.down.lock().unwrap().clear();
        rig.standby_down.lock().unwrap().clear();
        sleep(4 * 60).await;
        assert_eq!(rig.region().as_deref(), Some("NAM"), "too early");
        sleep(90).await;
        assert_eq!(rig.region().as_deref(), Some("EU"));
        assert!(failover_at.elapsed() >= Duration::from_secs(300));
        assert_eq!(rig.restarts(), 3);

        // a manual switch (env file + pin file, as `switch` writes them) holds it
        let state = StateDir::open(&rig.config.state_dir);
        crate::adapters::files::pin::write(&state, "APAC").unwrap();
        let apac = rig.config.region("APAC").unwrap().clone();
        rig.config.env_file.write(&apac).unwrap();
        sleep(30 * 60).await;
        assert_eq!(rig.region().as_deref(), Some("APAC"), "pinned");
        // until it is unpinned
        crate::adapters::files::pin::clear(&state).unwrap();
        sleep(20).await;
        assert_eq!(rig.region().as_deref(), Some("EU"));
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_latency_file_is_rewritten_only_when_the_latency_moves() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latency.txt");
        let rig = Rig::start(
            &format!("[network]\nlatency_file = \"{}\"\n", file.display()),
            &[],
            &[],
        );
        let seen = || {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&file).unwrap();
            let text = std::fs::read_to_string(&file).unwrap();
            (text, m.ino(), m.mtime(), m.mtime_nsec())
        };
        sleep(15).await;
        let first = seen();
        assert_eq!(first.0, "5\n");
        // healthy probes every 10 s at the same latency: the file is left alone
        sleep(10 * 60).await;
        assert!(rig.probe.calls.lock().unwrap().len() >= 60);
        assert_eq!(seen(), first, "rewritten at rest");
        // a jitter of a few ms is no news either
        *rig.probe.latency.lock().unwrap() = Duration::from_millis(8);
        sleep(60).await;
        assert_eq!(seen(), first, "rewritten for 3 ms");
        // a latency that moves is written at the next probe
        *rig.probe.latency.lock().unwrap() = Duration::from_millis(40);
        sleep(10).await;
        assert_eq!(seen().0, "40\n");
        *rig.probe.latency.lock().unwrap() = Duration::from_millis(30);
        sleep(10).await;
        assert_eq!(seen().0, "30\n");
        rig.stop().await;
    }
}
