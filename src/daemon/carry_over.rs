//! What a restart of the handler carries over, from the daemon's side: why the start rule chose
//! its region, the outage clock and the damping hold-down handed back to the policy at start,
//! and the handler state (`handler_state`) kept in step after each probe.

use std::time::{Instant, SystemTime};

use crate::adapters::files::EnvContents;
use crate::adapters::http::Probe;
use crate::adapters::supervisor::Restart;
use crate::daemon::Daemon;
use crate::daemon::clock;
use crate::daemon::handler_state::{HandlerState, SavedOutage, age, resume_within, unix_ms};
use crate::kernel::damping::WINDOW;
use crate::kernel::policy::{Input, StartWhy};
use crate::report::event::{Event, Notice};
use crate::report::logging;

impl<P: Probe, R: Restart> Daemon<P, R> {
    /// Says why the start rule chose to write the env file, when it did.
    pub(super) fn say_why(
        &self,
        why: StartWhy,
        env_index: Option<usize>,
        on_disk: Option<&EnvContents>,
        saved: &HandlerState,
    ) {
        match (why, env_index) {
            (StartWhy::Inconsistent, Some(i)) => {
                self.warn_inconsistent(i, on_disk.and_then(|c| c.cloud.as_deref()).unwrap_or(""));
            }
            (StartWhy::NewPreference, _) => {
                logging::event(&Event::Notice(Notice::PreferredChanged {
                    region: self.region(0).name.clone(),
                    previous_region: saved.preferred.clone().unwrap_or_default(),
                }))
            }
            _ => {}
        }
    }

    /// The env file names region `i` with another region's `cloud` (at start or later).
    pub(super) fn warn_inconsistent(&self, i: usize, cloud: &str) {
        let path = self.config.env_file.path.display();
        let named = &self.region(i);
        logging::event(&Event::Notice(Notice::EnvFileInconsistent {
            region: named.name.clone(),
            cloud: cloud.to_string(),
            path: path.to_string(),
            own_cloud: named.cloud.clone(),
        }));
    }

    /// Hands the remembered damping and outage back to the policy and records this start's
    /// preferred region. The outage resumes only for the region still active and only when the
    /// last probe that saw it is recent.
    pub(super) fn remember_start(&mut self, mut saved: HandlerState, wrote: bool) {
        let now = clock::now();
        let wall = SystemTime::now();
        for &ms in &saved.switches_ms {
            let ago = age(wall, ms);
            if ago < WINDOW {
                self.policy.step(now, Input::SwitchedAgo(ago));
            }
        }
        let active = self.active().name.clone();
        if let Some(outage) = saved.outage.take().filter(|o| !wrote && o.region == active) {
            let gap = age(wall, outage.last_probe_ms);
            let failing_for = age(wall, outage.since_ms);
            let p = &self.config.probe;
            if gap <= resume_within(p.interval, p.fail_interval, p.timeout) {
                self.policy.step(now, Input::FailingFor(failing_for));
                logging::event(&Event::Notice(Notice::OutageResumed {
                    region: active.to_string(),
                    failing_for,
                    gap,
                }));
            } else {
                logging::event(&Event::Notice(Notice::OutageForgotten {
                    region: active.to_string(),
                    gap,
                }));
            }
        }
        let new_preference = saved.preferred != self.config.preferred;
        saved.preferred = self.config.preferred.clone();
        self.handler_state = saved;
        if new_preference && !self.config.dry_run {
            self.handler_state.save(&self.state);
        }
        self.remember(now);
    }

    /// Keeps the handler state in step with the policy: the outage in progress and the automatic
    /// switches of the last hour. Written only when it changed.
    pub(super) fn remember(&mut self, now: Instant) {
        if self.config.dry_run {
            return;
        }
        let wall_ms = unix_ms(SystemTime::now());
        let before = |d: std::time::Duration| wall_ms.saturating_sub(d.as_millis() as u64);
        let outage = self.policy.failing_since().map(|s| SavedOutage {
            region: self.active().name.clone(),
            since_ms: before(now.saturating_duration_since(s)),
            last_probe_ms: wall_ms,
        });
        let ages = self.policy.switch_ages(now);
        // The same switches give the same times: only a new or expired one is written.
        let switches_ms = if ages.len() == self.handler_state.switches_ms.len() {
            self.handler_state.switches_ms.clone()
        } else {
            ages.into_iter().map(before).collect()
        };
        let next = HandlerState {
            preferred: self.handler_state.preferred.clone(),
            outage,
            switches_ms,
        };
        if next != self.handler_state {
            next.save(&self.state);
            self.handler_state = next;
        }
    }
}
