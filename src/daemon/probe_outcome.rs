//! What a probe's outcome leads to: the policy's decision, its report, and the decision
//! handed to the kernel's driver (the acts themselves are made in `effects`); and the restart
//! of the programs on the active region, through the actuator.

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::adapters::http::{ErrorKind, Probe, ProbeReport};
use crate::adapters::supervisor::{Restart, RestartError};
use crate::daemon::Daemon;
use crate::daemon::actuator::Marker;
use crate::daemon::clock;
use crate::kernel::health::Verdict;
use crate::kernel::policy::{Cause, Decision, Hold, Input, Outcome};
use crate::kernel::standby::Subject;
use crate::report::event::{Event, Notice, ms};

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// One probe's report: the policy's decision, its report, and the acts it asks for.
    pub(super) async fn observe(&mut self, report: ProbeReport, cancel: &CancellationToken) {
        let now = clock::now();
        self.guards.record_latency(&report).await;
        let decision = self.decide(now, &report);
        self.obs.probed(
            self.policy.active(),
            &report,
            self.policy
                .failing_since()
                .map(tokio::time::Instant::from_std),
        );
        self.tell_probe(now, &report, decision);
        let decision = self.carry_out(decision, cancel).await;
        self.tell_held(now, &decision);
        self.remember(now);
        self.show_hold_down(now);
    }

    /// The policy's decision on one probe's report, seen at `now`, as the fleet's view
    /// leaves it.
    fn decide(&mut self, now: Instant, report: &ProbeReport) -> Decision {
        let outcome = match &report.result {
            Ok(_) => Outcome::Success,
            Err(e) if e.kind == ErrorKind::TunnelDown => Outcome::TunnelDown,
            Err(e) if e.kind == ErrorKind::TunnelMisconfigured => Outcome::TunnelMisconfigured,
            Err(_) => Outcome::Failure,
        };
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
        self.fleet_view(now, decision, local)
    }

    /// Says the probe: its answer when all is well, every failure with how long it has lasted.
    fn tell_probe(&mut self, now: Instant, report: &ProbeReport, decision: Decision) {
        let latency_ms = ms(report.latency);
        let at = self.place(self.policy.active());
        let told = match (&report.result, decision) {
            (Ok(code), Decision::Healthy) => Notice::ProbeOk {
                at,
                latency_ms,
                http_status: *code,
            },
            (Err(e), _) => Notice::ProbeFailed {
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
            },
            _ => return,
        };
        self.obs.emit(Event::Notice(told));
    }

    /// Says a switch held back, once per change of what holds it.
    fn tell_held(&mut self, now: Instant, decision: &Decision) {
        match *decision {
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
                if let Some(held) = self.guards.held(&self.policy, decision) {
                    self.obs.emit(held);
                }
            }
            _ => {}
        }
    }

    /// Shows flap damping's hold-down, when there is one, in the live view.
    fn show_hold_down(&mut self, now: Instant) {
        let until = self
            .policy
            .hold_down_until(now)
            .map(|at| SystemTime::now() + at.saturating_duration_since(now));
        self.obs.hold_down(until, self.policy.recent_switches());
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
    pub(super) fn tunnel_address(&self) -> String {
        let url = &self.config.probe.url;
        let host = url.host_str().unwrap_or("localhost");
        let port = url.port_or_known_default().unwrap_or(443);
        format!("{host}:{port}")
    }

    /// Restarts the programs on the active region, under the marker that has an interrupted
    /// restart finished at the next start; within a fleet's slot, while its lease holds.
    pub(super) async fn restart(&mut self, cancel: &CancellationToken) {
        let region = self.active().name.clone();
        self.obs.restarting();
        let holds = self.gate.as_ref().map(|gate| move || gate.holds());
        let may_act = holds.as_ref().map(|f| f as &(dyn Fn() -> bool + Sync));
        let result = (self.actuator)
            .restart(&region, Marker::Pending, cancel, may_act)
            .await;
        self.lapsed = matches!(result, Err(RestartError::Lapsed { .. }));
        self.obs.restarted(&region, &result);
    }
}
