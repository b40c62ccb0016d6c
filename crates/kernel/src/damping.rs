//! Flap damping, as Envoy damps a flapping host: automatic switches are remembered for an hour;
//! after each one a hold-down must pass before the next, starting at the failover threshold and
//! doubling with every further automatic switch within the hour (never more than an hour), and
//! there are never more than `max_per_hour` of them in any hour. Pure: `now` is handed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Damping {
    max_per_hour: u32,
    base: Duration,
    /// Automatic switches of the last hour, oldest first.
    recent: VecDeque<Instant>,
}

impl Damping {
    /// `base` is the first hold-down (the failover threshold); `max_per_hour` at least one.
    pub fn new(max_per_hour: u32, base: Duration) -> Self {
        Damping {
            max_per_hour: max_per_hour.max(1),
            base,
            recent: VecDeque::new(),
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// The hold-down after the `k`-th automatic switch of the hour (k >= 1).
    pub fn hold_down(&self, k: usize) -> Duration {
        let doublings = u32::try_from(k.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        self.base.saturating_mul(1 << doublings).min(WINDOW)
    }

    /// When the next automatic switch is allowed: `None` when it is allowed at `now`.
    pub fn next_allowed(&mut self, now: Instant) -> Option<Instant> {
        self.forget_old(now);
        let last = *self.recent.back()?;
        let mut at = last + self.hold_down(self.recent.len());
        if self.recent.len() >= self.max_per_hour as usize {
            let nth_oldest = self.recent.len() - self.max_per_hour as usize;
            at = at.max(self.recent[nth_oldest] + WINDOW);
        }
        (at > now).then_some(at)
    }

    /// An automatic switch happened at `now`.
    pub fn record(&mut self, now: Instant) {
        self.forget_old(now);
        self.recent.push_back(now);
    }

    /// How long ago each automatic switch of the last hour was, oldest first: what a restart
    /// of the handler must remember.
    pub fn ages(&self, now: Instant) -> Vec<Duration> {
        self.recent
            .iter()
            .map(|&t| now.saturating_duration_since(t))
            .filter(|&age| age < WINDOW)
            .collect()
    }

    /// Automatic switches within the last hour (as of the last call).
    pub fn recent(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_down_doubles_up_to_an_hour() {
        let d = Damping::new(6, Duration::from_secs(240));
        let mins: Vec<u64> = (1..=6).map(|k| d.hold_down(k).as_secs() / 60).collect();
        assert_eq!(mins, [4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn schedule_table() {
        // (max per hour, base s, switch times s, asked at s, next allowed at s)
        type Case = (u32, u64, &'static [u64], u64, Option<u64>);
        let cases: &[Case] = &[
            (6, 60, &[], 0, None),
            (6, 60, &[0], 59, Some(60)),
            (6, 60, &[0], 60, None),
            (6, 60, &[0, 60], 61, Some(180)),
            (6, 60, &[0, 60, 180], 200, Some(420)),
            // the cap: two an hour, the third waits for the first to age out
            (2, 10, &[0, 10], 30, Some(3600)),
            (2, 10, &[0, 10], 3600, None),
            // after an hour of calm the hold-down is back to its base
            (6, 60, &[0, 60, 180, 4000], 4010, Some(4060)),
            (6, 60, &[0, 60, 180, 4000], 4060, None),
            (1, 5, &[100], 200, Some(3700)),
        ];
        for (max, base, switches, asked, want) in cases {
            let mut d = Damping::new(*max, Duration::from_secs(*base));
            let t0 = Instant::now();
            let at = |s: u64| t0 + Duration::from_secs(s);
            for &s in *switches {
                d.record(at(s));
            }
            assert_eq!(
                d.next_allowed(at(*asked)),
                want.map(at),
                "max {max} base {base} switches {switches:?} asked at {asked}"
            );
        }
    }
}
