//! The daemon and its env file: the choice of region at start, and every tick's read that
//! adopts a switch made by hand and restores a file that went missing.

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::adapters::files::{EnvContents, EnvFileError};
use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::handler_state::{HandlerState, unix_ms};
use crate::kernel::policy::{self, Input, StartFacts};
use crate::kernel::region;
use crate::kernel::resume::{Resume, resume};
use crate::report::event::notice::REMIND_EVERY;
use crate::report::event::{Event, Notice, SwitchReason};
use crate::report::told;

/// A failing env-file write, so that it is said when it starts or changes kind, reminded at
/// most every [`REMIND_EVERY`], and its end said once, rather than logged at every retry.
#[derive(Default)]
pub(super) struct WriteTrouble(Option<Trouble>);

struct Trouble {
    kind: &'static str,
    since: Instant,
    said: Instant,
    failures: u64,
}

impl WriteTrouble {
    /// Counts a failed write of `kind` at `now`; the number of failures so far when it is to
    /// be said (the first, a new kind, or a reminder), `None` when it is a repeat.
    fn failed(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match &mut self.0 {
            Some(t) if t.kind == kind => {
                t.failures += 1;
                (now.saturating_duration_since(t.said) >= REMIND_EVERY).then(|| {
                    t.said = now;
                    t.failures
                })
            }
            other => {
                let since = other.as_ref().map_or(now, |t| t.since);
                let failures = other.as_ref().map_or(0, |t| t.failures) + 1;
                *other = Some(Trouble {
                    kind,
                    since,
                    said: now,
                    failures,
                });
                Some(failures)
            }
        }
    }

    /// A write succeeded: how many failed before it and since when, if any did.
    fn recovered(&mut self) -> Option<(u64, Instant)> {
        self.0.take().map(|t| (t.failures, t.since))
    }
}

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Says a failed write of the env file for `region`: an ERROR when the failure starts,
    /// changes kind, or has lasted another [`REMIND_EVERY`]; DEBUG for each retry between.
    pub(super) fn write_failed(&mut self, e: &EnvFileError, region: &str, then: &str) {
        let kind = e.kind();
        let (region, error) = (region.to_string(), e.to_string());
        self.obs.emit(Event::Notice(
            match self.write_trouble.failed(kind, Instant::now()) {
                Some(failures) => Notice::EnvFileWriteFailed {
                    region,
                    error_kind: kind,
                    failures,
                    error,
                    then: then.to_string(),
                },
                None => Notice::EnvFileWriteRetried {
                    region,
                    error_kind: kind,
                    error,
                },
            },
        ));
    }

    /// Says that the env file is written again after failed writes, if there were any.
    pub(super) fn write_recovered(&mut self) {
        if let Some((failures, since)) = self.write_trouble.recovered() {
            self.obs.emit(Event::Notice(Notice::EnvFileWriteRecovered {
                failures,
                path: self.config.env_file.path.display().to_string(),
                over: since.elapsed(),
            }));
        }
    }

    /// Reads the env file on the runtime thread: a small regular file on a local disk, read
    /// at every tick, where handing it to a thread of the blocking pool would cost more than
    /// the read and keep that thread alive between probes.
    pub(super) fn read_env(&self) -> Result<Option<EnvContents>, EnvFileError> {
        self.config.env_file.read()
    }

    /// Writes the env file for region `i`; runs to completion even during shutdown.
    pub(super) async fn write_env(&self, i: usize) -> Result<(), EnvFileError> {
        self.actuator.write(self.region(i)).await
    }

    pub(super) async fn start(&mut self, cancel: &CancellationToken) {
        if let Ok(removed @ 1..) = self.config.env_file.remove_stale_temp_files() {
            self.obs.emit(Event::Notice(Notice::StaleTempRemoved {
                count: removed,
                path: self.config.env_file.path.display().to_string(),
            }));
        }
        let on_disk = match self.read_env() {
            Ok(c) => c,
            Err(e) => {
                self.obs.emit(Event::Notice(Notice::EnvFileUnreadable {
                    error_kind: e.kind(),
                    error: e.to_string(),
                }));
                None
            }
        };
        let env_region = on_disk.as_ref().and_then(|c| c.region.as_deref());
        let env_index = env_region.and_then(|r| region::find(&self.config.regions, r));
        if let (Some(name), None) = (env_region, env_index) {
            self.obs.emit(Event::Notice(Notice::EnvFileUnknownRegion {
                region: name.to_string(),
            }));
        } else if on_disk.is_some() && env_region.is_none() {
            self.obs.emit(Event::Notice(Notice::EnvFileUnrecognised {
                path: self.config.env_file.path.display().to_string(),
            }));
        }
        let saved = HandlerState::load(&self.state);
        let env_consistent = env_index.is_some_and(|i| {
            on_disk.as_ref().and_then(|c| c.cloud.as_deref()) == Some(self.region(i).cloud.as_str())
        });
        let preferred = self.config.preferred.as_deref();
        let start = policy::startup(StartFacts {
            env_region: env_index,
            env_consistent,
            preferred_changed: saved.preference_changed(preferred),
            preferred_down: false,
        });
        self.policy = self.config.policy(start.active);
        self.last_seen = env_index.map(|i| self.region(i).name.clone());
        let order = self.config.regions.iter().map(|r| r.name.clone()).collect();
        self.obs.emit(Event::DaemonStarted {
            at: self.place(start.active),
            order,
            probe_url: self.config.probe.url_template.clone(),
            interval: self.config.probe.interval,
            threshold: self.config.failover.threshold,
            dry_run: self.config.dry_run,
            env_file_written: start.write,
        });
        let active = self.active().clone();
        for w in &self.config.warnings {
            self.obs.emit(Event::Notice(Notice::ConfigWarning {
                warning: w.to_string(),
            }));
        }
        self.say_why(start.why, env_index, on_disk.as_ref(), &saved);
        self.remember_start(saved, start.write);
        if start.write {
            self.apply(start.active, SwitchReason::Start, cancel).await;
            return;
        }
        self.obs.emit(Event::Notice(Notice::EnvFileCurrent {
            at: self.place(self.policy.active()),
            path: self.config.env_file.path.display().to_string(),
        }));
        if let Some(pending) = self.state.restart_pending() {
            if pending.eq_ignore_ascii_case(&active.name) {
                self.resume_restart(active.name, cancel).await;
            } else {
                told::state_write(self.state.clear_restart_pending().err());
            }
        }
    }

    /// Finishes a restart for the active region that was interrupted, unless every program
    /// has been started since it began: supervisord, restarted meanwhile, started them all
    /// with the env file as it reads now.
    async fn resume_restart(&mut self, region: String, cancel: &CancellationToken) {
        let marked = self.state.restart_pending_since().map(unix_ms);
        let seen = self.actuator.restarter().programs_seen().await;
        match resume(marked, seen.as_deref()) {
            Resume::StartedSince => {
                self.obs.emit(Event::RestartNotResumed { region });
                told::state_write(self.state.clear_restart_pending().err());
            }
            // In a fleet, the restart waits for a slot like any other.
            Resume::Restart if self.fleet_owe_resumed() => {}
            Resume::Restart => {
                self.obs.emit(Event::RestartResumed { region });
                self.restart(cancel).await;
            }
        }
    }

    /// Re-reads the env file: adopts a region switched by hand, restores a missing file, and
    /// rewrites one whose cloud is not its region's (as at start: the region named wins, the
    /// programs are restarted, nothing is pinned).
    pub(super) async fn sync_env_file(&mut self, cancel: &CancellationToken) {
        let contents = self.read_env();
        let named = match &contents {
            Ok(Some(c)) => c
                .region
                .as_deref()
                .and_then(|r| region::find(&self.config.regions, r)),
            _ => None,
        };
        let cloud = match &contents {
            Ok(Some(c)) => c.cloud.clone(),
            _ => None,
        };
        match named {
            Some(i) if cloud.as_deref() != Some(self.region(i).cloud.as_str()) => {
                if self.config.dry_run || self.policy.owed() == Some(i) {
                    return;
                }
                self.warn_inconsistent(i, cloud.as_deref().unwrap_or(""));
                self.apply(i, SwitchReason::Manual, cancel).await;
            }
            Some(i) => {
                let name = self.region(i).name.clone();
                if self.last_seen.as_deref() != Some(name.as_str()) {
                    self.last_seen = Some(name.clone());
                    if i != self.policy.active() {
                        let from = self.policy.active();
                        self.obs.emit(Event::Adopted {
                            from: self.place(from),
                            to: self.place(i),
                        });
                        self.obs.switched(from, i, SwitchReason::Manual, None);
                        self.policy.step(clock::now(), Input::Adopt(i));
                    }
                }
            }
            None if self.config.dry_run || self.policy.owed().is_some() => {}
            None => {
                let why = match contents {
                    Ok(None) => "is missing".to_string(),
                    Ok(Some(_)) => "names no region of the list".to_string(),
                    Err(e) => format!("cannot be read ({e})"),
                };
                let active = self.active().clone();
                self.obs.emit(Event::Notice(Notice::EnvFileRestored {
                    region: active.name.clone(),
                    path: self.config.env_file.path.display().to_string(),
                    why,
                }));
                if let Err(e) = self.write_env(self.policy.active()).await {
                    self.write_failed(&e, &active.name, "retrying at the next tick");
                } else {
                    self.write_recovered();
                    self.last_seen = Some(active.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_lasting_write_failure_is_said_at_its_start_on_a_new_kind_and_every_ten_minutes() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = WriteTrouble::default();
        let said: Vec<Option<u64>> = [0, 1, 2, 599, 600, 601]
            .iter()
            .map(|&s| w.failed("read_only", at(s)))
            .collect();
        assert_eq!(said, [Some(1), None, None, None, Some(5), None]);
        assert_eq!(w.failed("disk_full", at(602)), Some(7));
        assert_eq!(w.failed("disk_full", at(603)), None);
        assert_eq!(w.recovered(), Some((8, t0)));
        assert_eq!(w.recovered(), None);
        assert_eq!(w.failed("read_only", at(700)), Some(1));
    }
}
