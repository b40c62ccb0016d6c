//! What the daemon shows of itself: a pure model of the live state (each region's health and
//! recent latencies, the active region, the outage timer, the last switch, pin and pause) that
//! the daemon updates at its decision points, and the [`Snapshot`] it publishes for `/status`,
//! the status page, the status file and `status` in the shell. No I/O and no clock: `now`
//! (monotonic) and `wall` (for timestamps) are handed in.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::adapters::files::Pause;
use crate::kernel::region::Region;
use crate::report::journal::timestamp;

/// Latencies kept per region for the sparkline.
pub const LATENCY_POINTS: usize = 60;

pub use crate::report::snapshot::{
    ActiveView, HoldDownView, OutageView, PauseView, RegionView, Snapshot, SwitchView,
};

pub use crate::report::event::ms;

fn ms_f64(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// What one probe changed about the outage timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageChange {
    None,
    Started,
    /// The region answered again after failing this long.
    Recovered(Duration),
}

#[derive(Debug, Clone)]
struct RegionState {
    name: String,
    cloud: String,
    healthy: Option<bool>,
    latency: Option<Duration>,
    checked_at: Option<SystemTime>,
    error: Option<String>,
    latencies: std::collections::VecDeque<Option<f64>>,
}

#[derive(Debug, Clone)]
struct Outage {
    region: usize,
    since: Instant,
    since_wall: SystemTime,
    failing_for: Duration,
    error_kind: Option<String>,
    held_back: bool,
}

/// The live state the daemon keeps for people and scrapers.
#[derive(Debug, Clone)]
pub struct View {
    regions: Vec<RegionState>,
    active: usize,
    active_since: SystemTime,
    threshold: Duration,
    outage: Option<Outage>,
    last_switch: Option<SwitchView>,
    switches: u64,
    pin: Option<String>,
    pause: Option<Pause>,
    hold_down: Option<(SystemTime, usize)>,
    env_file_error: Option<String>,
    restart_error: Option<String>,
    tunnel_misconfigured: Option<String>,
    /// `pause --fleet`, by whom and since when, as the fleet's store says.
    fleet_pause: Option<String>,
}

impl View {
    pub fn new(regions: &[Region], threshold: Duration, wall: SystemTime) -> Self {
        View {
            regions: regions
                .iter()
                .map(|r| RegionState {
                    name: r.name.clone(),
                    cloud: r.cloud.clone(),
                    healthy: None,
                    latency: None,
                    checked_at: None,
                    error: None,
                    latencies: Default::default(),
                })
                .collect(),
            active: 0,
            active_since: wall,
            threshold,
            outage: None,
            last_switch: None,
            switches: 0,
            pin: None,
            pause: None,
            hold_down: None,
            env_file_error: None,
            restart_error: None,
            tunnel_misconfigured: None,
            fleet_pause: None,
        }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    /// The region in use from the start (nothing switched).
    pub fn set_active(&mut self, region: usize, wall: SystemTime) {
        if region < self.regions.len() {
            self.active = region;
            self.active_since = wall;
        }
    }

    /// A health check of `region` (the active one's probe, or a standby check).
    pub fn checked(
        &mut self,
        region: usize,
        latency: Duration,
        error: Option<String>,
        wall: SystemTime,
    ) {
        let Some(r) = self.regions.get_mut(region) else {
            return;
        };
        r.healthy = Some(error.is_none());
        r.latency = Some(latency);
        r.checked_at = Some(wall);
        let point = error.is_none().then(|| ms_f64(latency));
        r.error = error;
        if r.latencies.len() == LATENCY_POINTS {
            r.latencies.pop_front();
        }
        r.latencies.push_back(point);
    }

    /// The active region's outage timer after a probe: `failing_since` as the policy holds it.
    pub fn outage_timer(
        &mut self,
        failing_since: Option<Instant>,
        error_kind: Option<&str>,
        now: Instant,
        wall: SystemTime,
    ) -> OutageChange {
        match (self.outage.as_mut(), failing_since) {
            (Some(o), Some(since)) if o.since == since && o.region == self.active => {
                o.failing_for = now.saturating_duration_since(since);
                o.error_kind = error_kind.map(str::to_string).or(o.error_kind.take());
                OutageChange::None
            }
            (_, Some(since)) => {
                let failing_for = now.saturating_duration_since(since);
                self.outage = Some(Outage {
                    region: self.active,
                    since,
                    since_wall: wall.checked_sub(failing_for).unwrap_or(wall),
                    failing_for,
                    error_kind: error_kind.map(str::to_string),
                    held_back: false,
                });
                OutageChange::Started
            }
            (Some(o), None) => {
                let failed_for = now.saturating_duration_since(o.since);
                self.outage = None;
                OutageChange::Recovered(failed_for)
            }
            (None, None) => OutageChange::None,
        }
    }

    /// The outage of the active region, if any: (region, how long so far).
    pub fn outage(&self) -> Option<(usize, Duration)> {
        self.outage.as_ref().map(|o| (o.region, o.failing_for))
    }

    pub fn hold_back(&mut self) {
        if let Some(o) = self.outage.as_mut() {
            o.held_back = true;
        }
    }

    /// The daemon moved from `from` to `to`; the outage (if any) is over from here.
    pub fn switched(
        &mut self,
        from: usize,
        to: usize,
        reason: &str,
        failed_for: Option<Duration>,
        wall: SystemTime,
    ) {
        if to >= self.regions.len() || from >= self.regions.len() {
            return;
        }
        self.active = to;
        self.active_since = wall;
        self.outage = None;
        self.switches += 1;
        self.last_switch = Some(SwitchView {
            from: self.regions[from].name.clone(),
            to: self.regions[to].name.clone(),
            reason: reason.to_string(),
            at: timestamp(wall),
            failed_for_ms: failed_for.map(ms),
        });
    }

    pub fn set_pause(&mut self, pause: Option<Pause>) {
        self.pause = pause;
        if pause.is_none()
            && let Some(o) = self.outage.as_mut()
        {
            o.held_back = false;
        }
    }

    pub fn set_pin(&mut self, pin: Option<String>) {
        self.pin = pin;
    }

    /// The last switch as the journal kept it (a `switch` record), for a daemon that starts
    /// again: `status` then tells it rather than "none".
    pub fn recall_switch(&mut self, r: &crate::report::journal::Record) {
        let text = |k: &str| r.fields.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(from), Some(to)) = (text("region"), text("to_region")) else {
            return;
        };
        self.last_switch = Some(SwitchView {
            from,
            to,
            reason: text("reason").unwrap_or_default(),
            at: r.timestamp.clone(),
            failed_for_ms: r.fields.get("failed_for_ms").and_then(|v| v.as_u64()),
        });
    }

    pub fn region(&self, i: usize) -> Option<(&str, &str)> {
        self.regions
            .get(i)
            .map(|r| (r.name.as_str(), r.cloud.as_str()))
    }

    /// The snapshot to publish; `meta` carries what the view does not own.
    pub fn snapshot(&self, meta: &Meta, wall: SystemTime) -> Snapshot {
        let active = &self.regions[self.active.min(self.regions.len().saturating_sub(1))];
        Snapshot {
            format_version: crate::report::journal::FORMAT_VERSION,
            service: meta.service.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: meta.pid,
            started_at: timestamp(meta.started_at),
            updated_at: timestamp(wall),
            fresh_until: timestamp(wall + meta.fresh_for),
            dry_run: meta.dry_run,
            active: ActiveView {
                region: active.name.clone(),
                cloud: active.cloud.clone(),
                since: timestamp(self.active_since),
            },
            threshold_ms: ms(self.threshold),
            regions: self
                .regions
                .iter()
                .enumerate()
                .map(|(i, r)| RegionView {
                    name: r.name.clone(),
                    cloud: r.cloud.clone(),
                    active: i == self.active,
                    healthy: r.healthy,
                    latency_ms: r.latency.map(ms_f64),
                    checked_at: r.checked_at.map(timestamp),
                    stale: r
                        .checked_at
                        .and_then(|at| wall.duration_since(at).ok())
                        .is_some_and(|age| age > meta.stale_after),
                    error: r.error.clone(),
                    latencies: r.latencies.iter().copied().collect(),
                })
                .collect(),
            outage: self.outage.as_ref().map(|o| {
                let r = &self.regions[o.region];
                OutageView {
                    region: r.name.clone(),
                    cloud: r.cloud.clone(),
                    since: timestamp(o.since_wall),
                    failing_for_ms: ms(o.failing_for),
                    threshold_ms: ms(self.threshold),
                    error_kind: o.error_kind.clone(),
                    held_back: o.held_back,
                }
            }),
            last_switch: self.last_switch.clone(),
            switches: self.switches,
            pin: self.pin.clone(),
            pause: self.pause.map(|p| PauseView::of(&p, wall)),
            hold_down: self.hold_down.filter(|(until, _)| *until > wall).map(
                |(until, switches)| HoldDownView {
                    until: timestamp(until),
                    remaining_ms: until.duration_since(wall).map(ms).unwrap_or(0),
                    switches_last_hour: switches,
                },
            ),
            env_file_error: self.env_file_error.clone(),
            restart_error: self.restart_error.clone(),
            tunnel_misconfigured: self.tunnel_misconfigured.clone(),
            fleet_pause: self.fleet_pause.clone(),
        }
    }

    pub fn set_fleet_pause(&mut self, paused: Option<String>) {
        self.fleet_pause = paused;
    }

    /// Flap damping's hold-down: when the next automatic switch is allowed, and how many
    /// there were in the last hour.
    pub fn set_hold_down(&mut self, hold_down: Option<(SystemTime, usize)>) {
        self.hold_down = hold_down;
    }

    /// The last env-file write's error, or `None` once a write succeeds.
    pub fn set_env_file_error(&mut self, error: Option<String>) {
        self.env_file_error = error;
    }

    /// The last restart's error, or `None` once a restart succeeds.
    pub fn set_restart_error(&mut self, error: Option<String>) {
        self.restart_error = error;
    }

    /// What is wrong with the local tunnel's certificate, or `None` once it verifies.
    pub fn set_tunnel_misconfigured(&mut self, error: Option<String>) {
        self.tunnel_misconfigured = error;
    }
}

/// What a snapshot says beyond the view: who publishes it and for how long it holds.
#[derive(Debug, Clone)]
pub struct Meta {
    pub service: String,
    pub pid: u32,
    pub started_at: SystemTime,
    pub dry_run: bool,
    /// How long a published snapshot stays believable without a newer one.
    pub fresh_for: Duration,
    /// How old a region's last result may be before it is marked stale.
    pub stale_after: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn regions() -> Vec<Region> {
        crate::kernel::region::parse_failover_list(crate::kernel::region::DEFAULT_FAILOVER_LIST)
            .unwrap()
    }

    fn meta() -> Meta {
        Meta {
            service: "svc".into(),
            pid: 7,
            started_at: UNIX_EPOCH,
            dry_run: false,
            fresh_for: Duration::from_secs(30),
            stale_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn an_outage_is_timed_held_and_ended_by_a_switch() {
        let t0 = Instant::now();
        let w0 = UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s: u64| (t0 + Duration::from_secs(s), w0 + Duration::from_secs(s));
        let mut v = View::new(&regions(), Duration::from_secs(240), w0);
        let (now, wall) = at(0);
        v.checked(0, Duration::from_millis(12), None, wall);
        assert_eq!(v.outage_timer(None, None, now, wall), OutageChange::None);

        let (now, wall) = at(10);
        v.checked(0, Duration::from_millis(5000), Some("timeout".into()), wall);
        assert_eq!(
            v.outage_timer(Some(now), Some("timeout"), now, wall),
            OutageChange::Started
        );
        let (now, wall) = at(250);
        v.checked(0, Duration::from_millis(3), Some("refused".into()), wall);
        assert_eq!(
            v.outage_timer(
                Some(t0 + Duration::from_secs(10)),
                Some("refused"),
                now,
                wall
            ),
            OutageChange::None
        );
        v.set_pause(Some(Pause {
            since: w0,
            until: None,
        }));
        v.hold_back();
        let s = v.snapshot(&meta(), wall);
        let o = s.outage.clone().unwrap();
        assert_eq!(
            (o.region.as_str(), o.failing_for_ms, o.held_back),
            ("NAM", 240_000, true)
        );
        assert_eq!(o.since, "1970-01-01T00:16:50.000Z");
        assert_eq!(o.error_kind.as_deref(), Some("refused"));
        assert_eq!(s.regions[0].latencies, vec![Some(12.0), None, None]);
        assert_eq!(s.regions[0].healthy, Some(false));
        assert_eq!(s.regions[1].healthy, None);
        assert!(s.pause.is_some());

        v.set_pause(None);
        v.switched(0, 1, "outage", Some(Duration::from_secs(240)), wall);
        let s = v.snapshot(&meta(), wall);
        assert!(s.outage.is_none());
        assert_eq!(s.active.region, "EU");
        assert!(s.regions[1].active && !s.regions[0].active);
        let sw = s.last_switch.unwrap();
        assert_eq!(
            (sw.from.as_str(), sw.to.as_str(), sw.reason.as_str()),
            ("NAM", "EU", "outage")
        );
        assert_eq!(sw.failed_for_ms, Some(240_000));
        assert_eq!(s.switches, 1);
        assert_eq!(s.fresh_until, timestamp(wall + Duration::from_secs(30)));
    }

    #[test]
    fn a_recovery_reports_how_long_it_failed_and_latencies_are_bounded() {
        let t0 = Instant::now();
        let w0 = UNIX_EPOCH;
        let mut v = View::new(&regions(), Duration::from_secs(60), w0);
        v.outage_timer(Some(t0), Some("status"), t0, w0);
        let later = t0 + Duration::from_secs(7);
        assert_eq!(
            v.outage_timer(None, None, later, w0),
            OutageChange::Recovered(Duration::from_secs(7))
        );
        for i in 0..(LATENCY_POINTS + 5) {
            v.checked(2, Duration::from_millis(i as u64), None, w0);
        }
        let s = v.snapshot(&meta(), w0);
        assert_eq!(s.regions[2].latencies.len(), LATENCY_POINTS);
        assert_eq!(s.regions[2].latencies[0], Some(5.0));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), s);
    }

    #[test]
    fn the_status_file_view_holds_still_across_probes_and_ages_when_read() {
        let t0 = Instant::now();
        let w0 = UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s: u64| (t0 + Duration::from_secs(s), w0 + Duration::from_secs(s));
        let mut v = View::new(&regions(), Duration::from_secs(240), w0);
        let still = |v: &View, wall| Snapshot {
            updated_at: String::new(),
            fresh_until: String::new(),
            ..v.snapshot(&meta(), wall).at_rest()
        };
        v.checked(0, Duration::from_millis(12), None, at(0).1);
        let first = still(&v, at(0).1);
        v.checked(0, Duration::from_millis(17), None, at(1).1);
        assert_eq!(still(&v, at(1).1), first);

        let err = || Some("connection refused".to_string());
        v.checked(0, Duration::from_millis(3), err(), at(2).1);
        v.outage_timer(Some(at(2).0), Some("refused"), at(2).0, at(2).1);
        let failing = still(&v, at(2).1);
        assert_ne!(failing, first);
        v.checked(0, Duration::from_millis(3), err(), at(9).1);
        v.outage_timer(Some(at(2).0), Some("refused"), at(9).0, at(9).1);
        assert_eq!(still(&v, at(9).1), failing);

        let read = v.snapshot(&meta(), at(9).1).at_rest().aged(at(62).1);
        assert_eq!(read.outage.map(|o| o.failing_for_ms), Some(60_000));
    }
}
