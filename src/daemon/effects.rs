//! The daemon's side of the kernel's driver: the acts a decision asks for, made for real (the
//! env file written, the programs restarted, the throughput measured) and told as events. What
//! follows each act is the kernel's: the outcome goes back through `policy::perform`.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::fleet::Permit;
use crate::kernel::policy::{self, Act, Cause, Decision, Done, Effects, Policy};
use crate::report::event::{Event, Notice, SwitchReason};

/// The daemon lent to the driver for one decision, with the cancellation it stops at.
struct Acting<'a, P, R> {
    daemon: &'a mut Daemon<P, R>,
    cancel: &'a CancellationToken,
    /// Why a move is made, when the decision does not say it (a start, a switch by hand, a
    /// move of the fleet); once a move is written, why it was.
    reason: Option<SwitchReason>,
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Carries `decision` out through the kernel's driver; returns the last decision.
    pub(super) async fn carry_out(
        &mut self,
        decision: Decision,
        cancel: &CancellationToken,
    ) -> Decision {
        let mut acting = Acting {
            daemon: self,
            cancel,
            reason: None,
        };
        policy::drive(&mut acting, decision).await
    }

    /// Makes region `to` active for `reason`, no decision of the policy asking: writes the env
    /// file, then restarts the programs.
    pub(super) async fn apply(
        &mut self,
        to: usize,
        reason: SwitchReason,
        cancel: &CancellationToken,
    ) {
        let mut acting = Acting {
            daemon: self,
            cancel,
            reason: Some(reason),
        };
        let act = Act::Move {
            to,
            cause: automatic(reason),
        };
        policy::perform(&mut acting, &Decision::Write { to }, act).await;
    }

    /// Says a due switch, once per target and outage.
    fn announce(&mut self, decision: &Decision) {
        match *decision {
            Decision::Failback {
                from,
                to,
                healthy_for,
                announce: true,
            } => self.obs.emit(Event::Failback {
                from: self.place(from),
                to: self.place(to),
                healthy_for,
            }),
            Decision::Failover {
                from,
                to,
                failed_for,
                announce: true,
            } => self.obs.emit(Event::Failover {
                from: self.place(from),
                to: self.place(to),
                failed_for,
                threshold: self.config.failover.threshold,
                tunnel: self.policy.tunnel_down().then(|| self.tunnel_address()),
            }),
            _ => {}
        }
    }

    /// Writes the env file for region `to`; a move whose region had failed for `failed_for`
    /// (the figure the decision announced: the switch and the end of the outage say the same).
    async fn write_move(
        &mut self,
        to: usize,
        reason: SwitchReason,
        failed_for: Option<Duration>,
    ) -> Done {
        let region = self.region(to).clone();
        if self.config.dry_run {
            self.obs.emit(Event::Notice(Notice::DryRun {
                at: self.place(to),
                path: self.config.env_file.path.display().to_string(),
            }));
            return Done::Written;
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
            return Done::WriteFailed;
        }
        self.write_recovered();
        self.last_seen = Some(region.name.clone());
        self.obs
            .switched(self.policy.active(), to, reason, failed_for);
        self.obs.emit(Event::Notice(Notice::EnvFileWritten {
            at: self.place(to),
            path: self.config.env_file.path.display().to_string(),
        }));
        Done::Written
    }

    /// Restarts the programs on `to`, just written for `reason`.
    async fn restart_after_move(
        &mut self,
        to: usize,
        reason: SwitchReason,
        cancel: &CancellationToken,
    ) {
        if self.config.dry_run {
            return;
        }
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

    /// Restarts the programs on the active region, the env file untouched; in a fleet, only
    /// within a restart slot (the policy asks again meanwhile).
    async fn restart_in_place(&mut self, decision: &Decision, cancel: &CancellationToken) -> Done {
        let permit = self.fleet_permit().await;
        if permit == Permit::Wait {
            return Done::Deferred;
        }
        if let Decision::RestartInPlace {
            failed_for,
            announce: true,
        } = *decision
        {
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
        Done::Restarted
    }
}

impl<P: Probe, R: Restart> Effects for Acting<'_, P, R> {
    fn policy(&mut self) -> &mut Policy {
        &mut self.daemon.policy
    }

    fn now(&self) -> Instant {
        clock::now()
    }

    async fn write(&mut self, decision: &Decision, to: usize) -> Done {
        let reason = self.reason.unwrap_or(match decision {
            Decision::Failover { .. } => SwitchReason::Outage,
            Decision::Failback { .. } => SwitchReason::Failback,
            _ => SwitchReason::Start,
        });
        self.reason = Some(reason);
        let d = &mut *self.daemon;
        let failed_for = match *decision {
            Decision::Failover { failed_for, .. } => Some(failed_for),
            _ => (d.policy.failing_since()).map(|s| clock::now().saturating_duration_since(s)),
        };
        d.announce(decision);
        d.write_move(to, reason, failed_for).await
    }

    async fn restart(&mut self, to: usize) {
        let reason = self.reason.unwrap_or(SwitchReason::Start);
        self.daemon
            .restart_after_move(to, reason, self.cancel)
            .await;
    }

    async fn restart_in_place(&mut self, decision: &Decision) -> Done {
        self.daemon.restart_in_place(decision, self.cancel).await
    }

    async fn measure(&mut self) -> Done {
        self.daemon.guards.measure(self.cancel).await
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
