//! A switch by hand restarting the programs while the daemon runs. The switch marks the state
//! dir for as long as its restart runs (`adapters::files::switch_mark`); the daemon reads the mark at
//! each probe, says when such a restart begins and ends, and meanwhile tells the probe's
//! failures at INFO and starts no outage clock from them: the tunnel is down because the switch
//! restarts it. A switch killed mid-restart ends the window at once (its mark is no longer
//! held), and one that runs longer than any restart may ends it too.

use std::time::{Duration, SystemTime};

use crate::adapters::files::StateDir;
use crate::adapters::files::switch_mark::{self, SwitchMarkState, SwitchRestart};
use crate::report::event::Event;
use crate::report::observer::Observer;

/// What the daemon last saw of a switch's restart.
pub(super) struct SwitchWatch {
    /// The longest a switch's restart keeps the daemon quiet: each stop and each start within
    /// `restart.timeout`.
    longest: Duration,
    /// The restart under way, as first seen.
    under_way: Option<SwitchRestart>,
    /// A restart that ran past `longest`: not quiet again, however long its mark stays.
    overdue: Option<SwitchRestart>,
}

impl SwitchWatch {
    /// A watch for programs restarted `programs` at a time, each call within `timeout`.
    pub(super) fn new(timeout: Duration, programs: usize) -> Self {
        let calls = u32::try_from(programs.max(1) * 2).unwrap_or(u32::MAX);
        SwitchWatch {
            longest: timeout.saturating_mul(calls),
            under_way: None,
            overdue: None,
        }
    }

    /// Reads the state dir's mark at `now` and says what changed; whether a switch's restart
    /// is under way.
    pub(super) fn refresh(
        &mut self,
        state: &StateDir,
        obs: &mut Observer,
        now: SystemTime,
    ) -> bool {
        self.follow(switch_mark::read(state), obs, now)
    }

    /// Says what changed since the last mark read; whether a switch's restart is under way.
    fn follow(&mut self, mark: SwitchMarkState, obs: &mut Observer, now: SystemTime) -> bool {
        let (running, how) = match mark {
            SwitchMarkState::Running(r) if self.overdue.as_ref() == Some(&r) => (None, "overdue"),
            SwitchMarkState::Running(r) if self.ran_for(&r, now) > self.longest => {
                self.overdue = Some(r);
                (None, "overdue")
            }
            SwitchMarkState::Running(r) => (Some(r), "done"),
            SwitchMarkState::Abandoned(_) => (None, "abandoned"),
            SwitchMarkState::None => (None, "done"),
        };
        if let Some(old) = self.under_way.take_if(|old| running.as_ref() != Some(old)) {
            obs.emit(Event::SwitchRestartEnded {
                took: self.ran_for(&old, now),
                region: old.region,
                pid: old.pid,
                how,
            });
        }
        if let Some(new) = running.filter(|_| self.under_way.is_none()) {
            obs.emit(Event::SwitchRestartBegan {
                region: new.region.clone(),
                pid: new.pid,
            });
            self.under_way = Some(new);
        }
        obs.switch_restarting(self.under_way.is_some());
        self.under_way.is_some()
    }

    fn ran_for(&self, r: &SwitchRestart, now: SystemTime) -> Duration {
        now.duration_since(r.began).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(pid: u32, began: SystemTime) -> SwitchRestart {
        SwitchRestart {
            pid,
            region: "NAM".into(),
            began,
        }
    }

    /// The names and `how` of the events `obs` journaled.
    fn said(obs: &Observer) -> Vec<String> {
        let history = obs.subscribe().borrow().history.clone();
        history
            .iter()
            .map(|r| match r.fields.get("how") {
                Some(how) => format!("{} {}", r.event, how.as_str().unwrap_or_default()),
                None => r.event.clone(),
            })
            .collect()
    }

    fn observer() -> Observer {
        Observer::new(&crate::testing::config(&["--env-file", "/nonexistent/env"]))
    }

    #[test]
    fn a_restart_is_said_once_at_its_start_and_once_at_its_end() {
        let mut obs = observer();
        let mut w = SwitchWatch::new(Duration::from_secs(10), 3);
        let t0 = SystemTime::now();
        let r = restart(7, t0);
        assert!(w.follow(SwitchMarkState::Running(r.clone()), &mut obs, t0));
        assert!(w.follow(
            SwitchMarkState::Running(r),
            &mut obs,
            t0 + Duration::from_secs(5)
        ));
        assert!(!w.follow(SwitchMarkState::None, &mut obs, t0 + Duration::from_secs(6)));
        assert!(!w.follow(SwitchMarkState::None, &mut obs, t0 + Duration::from_secs(7)));
        assert_eq!(
            said(&obs),
            ["switch_restart_began", "switch_restart_ended done"]
        );
    }

    #[test]
    fn a_killed_switch_ends_it_at_once_and_an_endless_one_after_the_longest_restart() {
        let mut obs = observer();
        let mut w = SwitchWatch::new(Duration::from_secs(10), 3);
        let t0 = SystemTime::now();
        let killed = restart(7, t0);
        assert!(w.follow(SwitchMarkState::Running(killed.clone()), &mut obs, t0));
        assert!(!w.follow(SwitchMarkState::Abandoned(killed.clone()), &mut obs, t0));
        assert!(!w.follow(SwitchMarkState::Abandoned(killed), &mut obs, t0));
        let endless = restart(8, t0);
        assert!(w.follow(SwitchMarkState::Running(endless.clone()), &mut obs, t0));
        assert!(w.follow(
            SwitchMarkState::Running(endless.clone()),
            &mut obs,
            t0 + Duration::from_secs(60)
        ));
        assert!(!w.follow(
            SwitchMarkState::Running(endless.clone()),
            &mut obs,
            t0 + Duration::from_secs(61)
        ));
        assert!(!w.follow(
            SwitchMarkState::Running(endless),
            &mut obs,
            t0 + Duration::from_secs(90)
        ));
        assert_eq!(
            said(&obs),
            [
                "switch_restart_began",
                "switch_restart_ended abandoned",
                "switch_restart_began",
                "switch_restart_ended overdue"
            ]
        );
    }

    #[test]
    fn a_mark_of_a_switch_older_than_the_longest_restart_is_not_quiet() {
        let mut obs = observer();
        let mut w = SwitchWatch::new(Duration::from_secs(1), 1);
        let t0 = SystemTime::now();
        let old = restart(7, t0 - Duration::from_secs(3));
        assert!(!w.follow(SwitchMarkState::Running(old), &mut obs, t0));
        assert_eq!(said(&obs), Vec::<String>::new());
    }
}
