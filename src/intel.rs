//! The daemon's side of region intelligence, kept out of the loop so that the loop needs only
//! a few call sites: standby check results in (with a log line on every flip), the pin file
//! kept in step with the policy, the throughput measurement when the policy asks for one, the
//! latency file, and the log lines of held switches and failbacks. Every rule is the policy's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::checks::CheckReport;
use crate::config::{Config, human};
use crate::health::Verdict;
use crate::pin;
use crate::policy::{Cause, Decision, Hold, Policy};
use crate::probe::ProbeReport;
use crate::region;
use crate::standby::Subject;
use crate::state::StateDir;
use crate::throughput::Throughput;

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn human_ms(d: Duration) -> String {
    human(Duration::from_millis(ms(d)))
}

pub struct Intel {
    config: Arc<Config>,
    checks: Option<mpsc::Receiver<Vec<CheckReport>>>,
    throughput: Option<Throughput>,
    /// The pin file's content when last read, to notice `switch` and `switch --unpin`.
    pin_seen: Option<String>,
    latency_file_failing: bool,
}

impl Intel {
    pub fn new(config: Arc<Config>) -> Self {
        Intel {
            config,
            checks: None,
            throughput: None,
            pin_seen: None,
            latency_file_failing: false,
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
        let now = Instant::now();
        for report in batch {
            let ok = report.result.is_ok();
            let Some(verdict) = policy.observe_check(now, report.subject, ok, report.latency)
            else {
                continue;
            };
            let standbys = policy.standbys();
            let healthy_standbys = standbys.healthy_standbys(policy.active());
            let latency_ms = standbys.latency(report.subject).map(ms);
            let name = self.name(report.subject);
            let health = verdict.as_str();
            let error_kind = report.result.as_ref().err().map(|e| e.kind.as_str());
            let error = report.result.as_ref().err().map(|e| e.to_string());
            let (event, what, cloud) = match report.subject {
                Subject::Region(i) => {
                    let r = &self.config.regions[i];
                    let what = if i == policy.active() {
                        format!("active region {} ({})", r.name, r.cloud)
                    } else {
                        format!("standby region {} ({})", r.name, r.cloud)
                    };
                    ("region_health", what, Some(r.cloud.as_str()))
                }
                Subject::Reference(_) => ("reference_health", format!("reference {name}"), None),
            };
            let (region, target) = match report.subject {
                Subject::Region(_) => (Some(name.as_str()), None),
                Subject::Reference(_) => (None, Some(name.as_str())),
            };
            match (verdict, &error) {
                (Verdict::Down, Some(error)) => {
                    let none_left = if healthy_standbys == 0 {
                        "; no standby region is healthy now"
                    } else {
                        ""
                    };
                    warn!(
                        event,
                        region,
                        target,
                        cloud,
                        health,
                        error_kind,
                        healthy_standbys,
                        "Standby check: {what} is down ({error}){none_left}"
                    );
                }
                _ => info!(
                    event,
                    region,
                    target,
                    cloud,
                    health,
                    latency_ms,
                    healthy_standbys,
                    "Standby check: {what} is {health}{}",
                    latency_ms
                        .map(|l| format!(", smoothed latency {l} ms"))
                        .unwrap_or_default()
                ),
            }
        }
    }

    /// Keeps the pin and the pin file in step: a change of the file (`switch`, `switch
    /// --unpin`) sets the policy's pin; otherwise what the policy decided (a switch by hand
    /// pins, an outage unpins) is written to the file. Without a state dir, or in a dry run,
    /// nothing is written.
    pub fn sync_pin(&mut self, policy: &mut Policy, state: &StateDir) {
        let on_disk = pin::read(state);
        if on_disk != self.pin_seen {
            match &on_disk {
                Some(name) => match region::find(&self.config.regions, name) {
                    Some(i) => {
                        policy.pin(Some(i));
                        info!(
                            event = "pinned",
                            region = %self.config.regions[i].name,
                            source = "state_dir",
                            "Region {} is pinned by a manual switch: no automatic failback away from it until the next outage or `switch --unpin`",
                            self.config.regions[i].name
                        );
                    }
                    None => {
                        policy.pin(None);
                        warn!(event = "pin_unknown_region", region = %name, "The pin names region {name}, which is not in the failover list: ignored");
                    }
                },
                None => {
                    policy.pin(None);
                    info!(
                        event = "unpinned",
                        region = self.pin_seen.as_deref().unwrap_or(""),
                        reason = "unpin",
                        "The pin of a manual switch was removed: automatic failback may apply again"
                    );
                }
            }
            self.pin_seen = on_disk;
            return;
        }
        if self.config.dry_run || state.path().is_none() {
            return;
        }
        let wanted = policy.pinned().map(|i| self.config.regions[i].name.clone());
        if wanted == on_disk {
            return;
        }
        let written = match &wanted {
            Some(name) => pin::write(state, name).map(|()| {
                info!(
                    event = "pinned",
                    region = %name,
                    source = "env_file",
                    "Region {name} was chosen by hand: pinned, no automatic failback away from it until the next outage or `switch --unpin`"
                );
            }),
            None => pin::clear(state).map(|()| {
                info!(
                    event = "unpinned",
                    region = on_disk.as_deref().unwrap_or(""),
                    reason = "outage",
                    "The outage ended the pin of region {}: automatic failback may apply again",
                    on_disk.as_deref().unwrap_or("")
                );
            }),
        };
        match written {
            Ok(()) => self.pin_seen = wanted,
            Err(e) => {
                warn!(event = "state_write_failed", error = %e, "Cannot update the pin in the state directory: {e}");
            }
        }
    }

    /// Writes the latency of a successful probe to `network.latency_file`, in whole ms.
    pub async fn record_latency(&mut self, report: &ProbeReport) {
        let Some(path) = self.config.network.latency_file.clone() else {
            return;
        };
        if !report.is_ok() || self.config.dry_run {
            return;
        }
        let text = format!("{}\n", ms(report.latency));
        let shown = path.display().to_string();
        let result = tokio::task::spawn_blocking(move || {
            crate::envfile::write_atomic(&path, text.as_bytes(), 0o644)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match (result, self.latency_file_failing) {
            (Err(e), false) => {
                self.latency_file_failing = true;
                warn!(event = "latency_file_failed", path = %shown, error = %e, "Cannot write the latency file {shown}: {e} (said once until it works again)");
            }
            (Ok(()), true) => {
                self.latency_file_failing = false;
                info!(event = "latency_file_ok", path = %shown, "The latency file {shown} is written again");
            }
            _ => {}
        }
    }

    /// The throughput gate asked for a figure: measures it and hands it to the policy.
    pub async fn measure(&self, policy: &mut Policy, cancel: &CancellationToken) -> Decision {
        let Some(meter) = &self.throughput else {
            return policy.throughput(Instant::now(), Some(u64::MAX));
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return Decision::Healthy,
            r = meter.measure() => r,
        };
        let min_mbps = self.config.network.min_mbps;
        let kbps = match result {
            Ok(m) => {
                info!(
                    event = "throughput_measured",
                    mbps = m.mbps(),
                    min_mbps,
                    bytes = m.bytes,
                    duration_ms = ms(m.elapsed),
                    url = %meter.url(),
                    "Throughput before failing over: {:.2} Mbit/s ({} bytes in {} ms; minimum {min_mbps})",
                    m.mbps(),
                    m.bytes,
                    ms(m.elapsed)
                );
                Some(m.kbps())
            }
            Err(e) => {
                warn!(
                    event = "throughput_failed",
                    error_kind = e.kind.as_str(),
                    min_mbps,
                    url = %meter.url(),
                    "The throughput download failed ({e}): counted as below network.min_mbps"
                );
                None
            }
        };
        policy.throughput(Instant::now(), kbps)
    }

    /// Logs a held switch, once per change of what holds it.
    pub fn held(&self, policy: &Policy, decision: &Decision) {
        let Decision::Held {
            cause,
            from,
            to,
            reason,
            announce: true,
        } = *decision
        else {
            return;
        };
        let now = Instant::now();
        let from = &self.config.regions[from];
        let to = to.map(|i| &self.config.regions[i]);
        let to_region = to.map(|r| r.name.as_str());
        let to_cloud = to.map(|r| r.cloud.as_str());
        let failing_for = policy
            .failing_since()
            .map(|s| now.saturating_duration_since(s));
        let failing_for_ms = failing_for.map(ms);
        let failing = failing_for
            .map(|d| format!(" has failed for {} and", human_ms(d)))
            .unwrap_or_default();
        let event = match cause {
            Cause::Outage => "failover_deferred",
            Cause::Failback => "failback_deferred",
        };
        let why = reason.as_str();
        match reason {
            Hold::AllRegionsDown => warn!(
                event,
                reason = why,
                region = %from.name,
                cloud = %from.cloud,
                failing_for_ms,
                healthy_standbys = 0u64,
                "Region {} ({}){failing} no standby region is healthy: staying on it and probing on; the next line comes when this changes",
                from.name,
                from.cloud
            ),
            Hold::HostNetwork => {
                let references: Vec<String> = self
                    .config
                    .network
                    .reference
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                warn!(
                    event,
                    reason = why,
                    region = %from.name,
                    cloud = %from.cloud,
                    failing_for_ms,
                    references = references.join(","),
                    "Region {} ({}){failing} every standby region and every reference target ({}) fail too: the fault is this host's network, not the cloud; not failing over",
                    from.name,
                    from.cloud,
                    references.join(", ")
                );
            }
            Hold::Damped { next_allowed_in } => warn!(
                event,
                reason = why,
                cause = cause.as_str(),
                region = %from.name,
                cloud = %from.cloud,
                to_region,
                to_cloud,
                failing_for_ms,
                next_allowed_in_ms = ms(next_allowed_in),
                switches_last_hour = policy.recent_switches() as u64,
                max_switches_per_hour = self.config.failover.max_switches_per_hour,
                "Flap damping holds the {} from {} to {} back: {} automatic switches in the last hour (at most {}); the next is allowed in {}",
                cause.as_str(),
                from.name,
                to_region.unwrap_or("?"),
                policy.recent_switches(),
                self.config.failover.max_switches_per_hour,
                human_ms(next_allowed_in)
            ),
            Hold::LowThroughput { kbps } => {
                let mbps = kbps.map(|k| k as f64 / 1000.0);
                let retry = policy.rules().gate_retry;
                warn!(
                    event,
                    reason = why,
                    region = %from.name,
                    cloud = %from.cloud,
                    to_region,
                    to_cloud,
                    failing_for_ms,
                    mbps,
                    min_mbps = self.config.network.min_mbps,
                    next_measure_in_ms = ms(retry),
                    "Region {} ({}){failing} the host's throughput ({}) is below network.min_mbps {}: not failing over to {}; measuring again in {}",
                    from.name,
                    from.cloud,
                    mbps.map_or("unknown".to_string(), |m| format!("{m:.2} Mbit/s")),
                    self.config.network.min_mbps,
                    to_region.unwrap_or("?"),
                    human(retry)
                );
            }
        }
    }

    /// Logs a failback before it is made.
    pub fn failback(&self, from: usize, to: usize, healthy_for: Duration) {
        let (from, to) = (&self.config.regions[from], &self.config.regions[to]);
        info!(
            event = "failback",
            region = %from.name,
            cloud = %from.cloud,
            to_region = %to.name,
            to_cloud = %to.cloud,
            reason = "failback",
            healthy_for_ms = ms(healthy_for),
            "The preferred region {} ({}) has been healthy for {}: failing back from {}",
            to.name,
            to.cloud,
            human_ms(healthy_for),
            from.name
        );
    }
}
