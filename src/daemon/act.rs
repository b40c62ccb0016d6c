//! What a probe's outcome leads to: the policy's decision, its report, and the acts it asks
//! for (a write of the env file, a restart of the programs).

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::adapters::probe::{ErrorKind, Probe, ProbeReport};
use crate::adapters::restart::{Restart, RestartError};
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::fleet::Permit;
use crate::kernel::health::Verdict;
use crate::kernel::policy::{Cause, Decision, Hold, Input, Outcome};
use crate::kernel::standby::Subject;
use crate::report::event::{Event, Notice, SwitchReason, ms};
use crate::report::told;

impl<P: Probe, R: Restart> Daemon<P, R> {
    pub(super) async fn observe(&mut self, report: ProbeReport, cancel: &CancellationToken) {
        let now = clock::now();
        let outcome = match &report.result {
            Ok(_) => Outcome::Success,
            Err(e) if e.kind == ErrorKind::TunnelDown => Outcome::TunnelDown,
            Err(e) if e.kind == ErrorKind::TunnelMisconfigured => Outcome::TunnelMisconfigured,
            Err(_) => Outcome::Failure,
        };
        self.intel.record_latency(&report).await;
        let local = (report.result.as_ref().err())
            .is_some_and(|e| e.kind.is_local_fault(self.probe_is_local()));
        // A switch by hand restarting the programs: its tunnel's refusals start no outage; an
        // answer of the region (a status) counts as always, so that a switch whose restart
        // hangs holds no failover back.
        let switching = self
            .switching
            .refresh(&self.state, &mut self.obs, SystemTime::now());
        let lost = (report.result.as_ref().err()).is_some_and(|e| e.kind.is_lost_connection());
        let decision = if switching && lost {
            Decision::Failing {
                failing_for: Duration::ZERO,
            }
        } else {
            self.policy.step(now, Input::Probe(outcome))
        };
        let mut decision = self.fleet_view(now, decision, local);
        self.obs.probed(
            self.policy.active(),
            &report,
            self.policy
                .failing_since()
                .map(tokio::time::Instant::from_std),
        );
        let latency_ms = ms(report.latency);
        let at = self.place(self.policy.active());
        let told = match (&report.result, decision) {
            (Ok(code), Decision::Healthy) => Some(Notice::ProbeOk {
                at,
                latency_ms,
                http_status: *code,
            }),
            (Err(e), _) => Some(Notice::ProbeFailed {
                at,
                error_kind: e.kind.as_str(),
                http_status: e.http_status,
                latency_ms,
                // Said as one ERROR at most every 10 minutes (`tunnel_misconfigured`).
                failing_for: (e.kind != ErrorKind::TunnelMisconfigured).then(|| {
                    self.policy
                        .failing_since()
                        .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
                }),
                threshold: self.config.failover.threshold,
                error: e.to_string(),
            }),
            _ => None,
        };
        if let Some(told) = told {
            self.obs.emit(Event::Notice(told));
        }
        if let Decision::MeasureThroughput { .. } = decision {
            decision = self.intel.measure(&mut self.policy, cancel).await;
        }
        match decision {
            Decision::Failback {
                from,
                to,
                healthy_for,
                announce,
            } => {
                if announce {
                    self.obs.emit(Event::Failback {
                        from: self.place(from),
                        to: self.place(to),
                        healthy_for,
                    });
                }
                self.apply(to, SwitchReason::Failback, cancel).await;
            }
            Decision::Failover {
                from,
                to,
                failed_for,
                announce,
            } => {
                if announce {
                    self.obs.emit(Event::Failover {
                        from: self.place(from),
                        to: self.place(to),
                        failed_for,
                        threshold: self.config.failover.threshold,
                        tunnel: self.policy.tunnel_down().then(|| self.tunnel_address()),
                    });
                }
                self.apply_after(to, SwitchReason::Outage, Some(failed_for), cancel)
                    .await;
            }
            Decision::RestartInPlace {
                failed_for,
                announce,
            } => {
                // In a fleet, the restart waits for a slot; the policy asks again meanwhile.
                let permit = self.fleet_permit().await;
                if permit == Permit::Wait {
                    self.remember(now);
                    return;
                }
                if announce {
                    self.obs.emit(Event::TunnelRestart {
                        at: self.place(self.policy.active()),
                        tunnel: self.tunnel_address(),
                        failed_for,
                    });
                }
                if self.config.dry_run || !self.config.restart.enabled {
                    self.obs
                        .emit(Event::Notice(Notice::RestartSkipped { in_place: true }));
                } else {
                    self.restart(cancel).await;
                }
                self.fleet_release(permit).await;
                self.policy.step(clock::now(), Input::RestartedInPlace);
            }
            Decision::Held {
                cause: Cause::Outage,
                from,
                to: Some(to),
                reason: Hold::Paused,
                announce: true,
            } => {
                let failed_for = self
                    .policy
                    .failing_since()
                    .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                let pause = self.pause.current();
                self.obs.emit(Event::FailoverHeld {
                    from: self.place(from),
                    to: self.place(to),
                    failed_for,
                    pause: pause
                        .map(|p| p.describe(SystemTime::now()))
                        .unwrap_or_default(),
                    pause_until: pause.and_then(|p| p.until),
                });
            }
            Decision::Held { .. } => {
                if let Some(held) = self.intel.held(&self.policy, &decision) {
                    self.obs.emit(held);
                }
            }
            _ => {}
        }
        self.remember(now);
        self.show_hold_down(now);
    }

    /// Shows flap damping's hold-down, when there is one, in the live view.
    fn show_hold_down(&mut self, now: Instant) {
        let until = self
            .policy
            .hold_down_until(now)
            .map(|at| SystemTime::now() + at.saturating_duration_since(now));
        self.obs.hold_down(until, self.policy.recent_switches());
    }

    /// Makes region `to` active: writes the env file, then restarts the programs.
    pub(super) async fn apply(
        &mut self,
        to: usize,
        reason: SwitchReason,
        cancel: &CancellationToken,
    ) {
        let failed_for = self
            .policy
            .failing_since()
            .map(|s| clock::now().saturating_duration_since(s));
        self.apply_after(to, reason, failed_for, cancel).await;
    }

    /// [`Self::apply`] for a move whose region had failed for `failed_for`, the figure the
    /// decision announced: the switch and the end of the outage say the same.
    async fn apply_after(
        &mut self,
        to: usize,
        reason: SwitchReason,
        failed_for: Option<Duration>,
        cancel: &CancellationToken,
    ) {
        let region = self.region(to).clone();
        if self.config.dry_run {
            self.obs.emit(Event::Notice(Notice::DryRun {
                at: self.place(to),
                path: self.config.env_file.path.display().to_string(),
            }));
            self.confirm(to, reason);
            return;
        }
        let written = self.write_env(to).await;
        self.obs
            .env_file_write(written.as_ref().err().map(ToString::to_string));
        if let Err(e) = written {
            let then = format!(
                "staying on region {} and retrying at the next probe",
                self.active().name
            );
            self.write_failed(&e, &region.name, &then);
            let cause = automatic(reason);
            self.policy
                .step(clock::now(), Input::WriteFailed { to, cause });
            return;
        }
        self.write_recovered();
        self.last_seen = Some(region.name.clone());
        let from = self.policy.active();
        self.confirm(to, reason);
        self.obs.switched(from, to, reason, failed_for);
        self.obs.emit(Event::Notice(Notice::EnvFileWritten {
            at: self.place(to),
            path: self.config.env_file.path.display().to_string(),
        }));
        if !self.config.restart.enabled {
            self.obs
                .emit(Event::Notice(Notice::RestartSkipped { in_place: false }));
            return;
        }
        self.obs.emit(Event::Restarting {
            at: self.place(to),
            reason,
        });
        self.restart(cancel).await;
    }

    /// Shows the standby checks' verdicts in the status view and the metrics.
    pub(super) fn report_checks(&mut self, regions: &[usize]) {
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

    /// The local tunnel's address, as the probe URL names it.
    fn tunnel_address(&self) -> String {
        let url = &self.config.probe.url;
        let host = url.host_str().unwrap_or("localhost");
        let port = url.port_or_known_default().unwrap_or(443);
        format!("{host}:{port}")
    }

    /// Tells the policy the switch to `to` is made; an automatic one counts for damping, and
    /// an outage may end a pin (the pin file follows at the next tick).
    fn confirm(&mut self, to: usize, reason: SwitchReason) {
        let cause = automatic(reason);
        self.policy.step(clock::now(), Input::Moved { to, cause });
    }

    pub(super) async fn restart(&mut self, cancel: &CancellationToken) {
        let region = self.active().name.clone();
        told::state_write(self.state.mark_restart_pending(&region).err());
        self.obs.restarting();
        let result = match &self.gate {
            Some(gate) => self.restarter.restart_while(cancel, &|| gate.holds()).await,
            None => self.restarter.restart(cancel).await,
        };
        if result.is_ok() {
            told::state_write(self.state.clear_restart_pending().err());
        }
        self.lapsed = matches!(result, Err(RestartError::Lapsed { .. }));
        self.obs.restarted(&region, &result);
    }
}

/// The kernel's cause of a switch: none for a start or a switch by hand (not automatic).
fn automatic(reason: SwitchReason) -> Option<Cause> {
    match reason {
        SwitchReason::Outage => Some(Cause::Outage),
        SwitchReason::Failback => Some(Cause::Failback),
        SwitchReason::Start | SwitchReason::Manual => None,
    }
}
