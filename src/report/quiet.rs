//! When a failing probe is expected and told at INFO instead of WARN: in the first
//! `probe.startup_grace` after start, while the local tunnel comes up, and while the handler
//! restarts the programs itself (the tunnel among them), until the restart is done. Only what
//! is said changes: the outage clock and the decisions run as always. And while a switch by
//! hand restarts them, whose failures the daemon also keeps off its outage clock.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::report::event::{Event, Notice};
use crate::report::journal::{Level, Record};

#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet {
    /// The end of the start-up grace.
    until: Option<Instant>,
    /// A restart the handler began is under way.
    restarting: bool,
    /// A switch by hand is restarting the programs.
    switching: bool,
}

impl Quiet {
    /// The window of a start at `now` with `grace` (none when zero).
    pub fn starting(now: Instant, grace: Duration) -> Self {
        Quiet {
            until: (!grace.is_zero()).then(|| now + grace),
            restarting: false,
            switching: false,
        }
    }

    /// The handler began restarting the programs: quiet until [`Quiet::restart_ended`].
    pub fn restart_began(&mut self) {
        self.restarting = true;
    }

    /// The restart is done, gave up or was interrupted.
    pub fn restart_ended(&mut self) {
        self.restarting = false;
    }

    /// Whether a switch by hand is restarting the programs.
    pub fn switch_restarting(&mut self, under_way: bool) {
        self.switching = under_way;
    }

    pub fn is_quiet(&self, now: Instant) -> bool {
        self.restarting || self.switching || self.until.is_some_and(|until| now < until)
    }

    /// The level `event` is told at `now`: a probe failure's is INFO while quiet.
    pub fn level(&self, event: &Event, now: Instant) -> Level {
        match event {
            Event::OutageStarted { .. } if self.is_quiet(now) => Level::Info,
            Event::Notice(Notice::ProbeFailed { .. })
                if self.is_quiet(now) && event.level() == Level::Warn =>
            {
                Level::Info
            }
            _ => event.level(),
        }
    }

    /// The level `event` is told at now, and its journal record at that level.
    pub fn told(&self, event: &Event, wall: SystemTime) -> (Level, Record) {
        let level = self.level(event, Instant::now());
        let mut record = event.record(wall);
        record.level = level.as_str().to_string();
        (level, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::event::Place;

    fn outage() -> Event {
        Event::OutageStarted {
            at: Place::default(),
            error_kind: "tunnel_down",
            http_status: None,
            error: "connection refused".into(),
        }
    }

    #[test]
    fn a_failure_in_the_start_up_grace_is_info_and_after_it_warn() {
        let start = Instant::now();
        let quiet = Quiet::starting(start, Duration::from_secs(10));
        assert_eq!(
            quiet.level(&outage(), start + Duration::from_secs(9)),
            Level::Info
        );
        assert_eq!(
            quiet.level(&outage(), start + Duration::from_secs(10)),
            Level::Warn
        );
    }

    #[test]
    fn a_zero_grace_is_none() {
        let start = Instant::now();
        let quiet = Quiet::starting(start, Duration::ZERO);
        assert_eq!(quiet.level(&outage(), start), Level::Warn);
    }

    #[test]
    fn a_restart_of_our_own_is_quiet_until_it_ends() {
        let start = Instant::now();
        let mut quiet = Quiet::starting(start, Duration::ZERO);
        let later = start + Duration::from_secs(60);
        quiet.restart_began();
        assert_eq!(quiet.level(&outage(), later), Level::Info);
        quiet.restart_ended();
        assert_eq!(quiet.level(&outage(), later), Level::Warn);
    }

    #[test]
    fn a_switch_by_hand_restarting_is_quiet_until_it_ends() {
        let start = Instant::now();
        let mut quiet = Quiet::starting(start, Duration::ZERO);
        quiet.switch_restarting(true);
        assert_eq!(quiet.level(&outage(), start), Level::Info);
        quiet.switch_restarting(false);
        assert_eq!(quiet.level(&outage(), start), Level::Warn);
    }

    #[test]
    fn other_events_keep_their_level() {
        let start = Instant::now();
        let mut quiet = Quiet::starting(start, Duration::from_secs(10));
        quiet.restart_began();
        let gave_up = Event::RestartGaveUp {
            region: "EU".into(),
            error: "x".into(),
        };
        assert_eq!(quiet.level(&gave_up, start), Level::Error);
    }
}
