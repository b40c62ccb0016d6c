//! What the standby checks know: the health of every region that has a `health_url` and of
//! every `network.reference` target, which standby an outage should move to, and whether the
//! host's own network is the one at fault. Pure: results and `now` are handed in.

use std::time::{Duration, Instant};

use crate::health::{Health, Verdict};
use crate::rules::Choose;

/// What one standby check was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A region, by its index in the failover order.
    Region(usize),
    /// A `network.reference` target, by its index in that list.
    Reference(usize),
}

/// The health of the regions (those with a check) and of the reference targets.
#[derive(Debug, Clone)]
pub struct Standbys {
    /// `None` for a region without a `health_url`: nothing is known of it.
    regions: Vec<Option<Health>>,
    references: Vec<Health>,
}

impl Standbys {
    /// `checked[i]` says whether region `i` has a health target.
    pub fn new(checked: &[bool], references: usize, rise: u32, fall: u32) -> Self {
        Standbys {
            regions: checked
                .iter()
                .map(|&c| c.then(|| Health::new(rise, fall)))
                .collect(),
            references: (0..references).map(|_| Health::new(rise, fall)).collect(),
        }
    }

    /// No checks at all: every region is eligible, as in the plain rule.
    pub fn unchecked(regions: usize) -> Self {
        Standbys::new(&vec![false; regions], 0, 1, 1)
    }

    /// How many regions there are.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Takes one check result; the new verdict when it flipped.
    pub fn observe(
        &mut self,
        now: Instant,
        subject: Subject,
        ok: bool,
        latency: Duration,
    ) -> Option<Verdict> {
        let health = match subject {
            Subject::Region(i) => self.regions.get_mut(i)?.as_mut()?,
            Subject::Reference(i) => self.references.get_mut(i)?,
        };
        health.observe(now, ok, latency).then(|| health.verdict())
    }

    fn health(&self, subject: Subject) -> Option<&Health> {
        match subject {
            Subject::Region(i) => self.regions.get(i)?.as_ref(),
            Subject::Reference(i) => self.references.get(i),
        }
    }

    /// The verdict on a subject; `None` when it is not checked.
    pub fn verdict(&self, subject: Subject) -> Option<Verdict> {
        self.health(subject).map(Health::verdict)
    }

    /// The smoothed latency of a subject's successful checks.
    pub fn latency(&self, subject: Subject) -> Option<Duration> {
        self.health(subject).and_then(Health::latency)
    }

    /// Since when region `i` has been up, if it is checked and up.
    pub fn up_since(&self, i: usize) -> Option<Instant> {
        self.health(Subject::Region(i)).and_then(Health::up_since)
    }

    /// How many regions other than `active` are checked and up.
    pub fn healthy_standbys(&self, active: usize) -> usize {
        (0..self.regions.len())
            .filter(|&i| i != active && self.verdict(Subject::Region(i)) == Some(Verdict::Up))
            .count()
    }

    /// Where an outage of `active` should move: with `Order`, the first region after it
    /// (wrapping) that is up or has no check; with `Latency`, the up region with the lowest
    /// smoothed latency, else the first unchecked one in order. A region whose checks have no
    /// verdict yet, or say down, is never chosen. `None`: no standby to go to.
    pub fn choose(&self, active: usize, how: Choose) -> Option<usize> {
        let n = self.regions.len();
        let standbys = (1..n).map(|k| (active + k) % n);
        let eligible = |i: &usize| match &self.regions[*i] {
            None => true,
            Some(h) => h.verdict() == Verdict::Up,
        };
        match how {
            Choose::Order => standbys.clone().find(eligible),
            Choose::Latency => standbys
                .clone()
                .filter(|&i| self.verdict(Subject::Region(i)) == Some(Verdict::Up))
                .min_by_key(|&i| self.latency(Subject::Region(i)).unwrap_or(Duration::MAX))
                .or_else(|| standbys.clone().find(eligible)),
        }
    }

    /// The reference targets (there must be some) are all down: the host's own network
    /// fails, whatever the regions do.
    pub fn references_down(&self) -> bool {
        !self.references.is_empty() && self.references.iter().all(|h| h.verdict() == Verdict::Down)
    }

    /// Is-it-me: the reference targets (there must be some) are all down, and so is every
    /// checked standby. An unchecked standby, or one without a verdict yet, says nothing.
    pub fn host_at_fault(&self, active: usize) -> bool {
        !self.references.is_empty()
            && self.references.iter().all(|h| h.verdict() == Verdict::Down)
            && self
                .regions
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != active)
                .all(|(_, h)| h.as_ref().is_none_or(|h| h.verdict() == Verdict::Down))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of `spec` regions, one char each: `U` up, `D` down, `?` no verdict yet,
    /// `-` no check; `latencies` in ms for the up ones; `refs` likewise for references.
    fn view(spec: &str, latencies: &[u64], refs: &str) -> Standbys {
        let checked: Vec<bool> = spec.chars().map(|c| c != '-').collect();
        let mut s = Standbys::new(&checked, refs.len(), 1, 1);
        let t0 = Instant::now();
        for (i, c) in spec.chars().enumerate() {
            let ms = latencies.get(i).copied().unwrap_or(10);
            match c {
                'U' => s.observe(t0, Subject::Region(i), true, Duration::from_millis(ms)),
                'D' => s.observe(t0, Subject::Region(i), false, Duration::ZERO),
                _ => None,
            };
        }
        for (i, c) in refs.chars().enumerate() {
            if c != '?' {
                s.observe(t0, Subject::Reference(i), c == 'U', Duration::ZERO);
            }
        }
        s
    }

    #[test]
    fn choice_table() {
        // (regions, latencies ms, active, how, wanted target)
        type Case = (&'static str, &'static [u64], usize, Choose, Option<usize>);
        let cases: &[Case] = &[
            ("---", &[], 0, Choose::Order, Some(1)),
            ("---", &[], 2, Choose::Order, Some(0)),
            ("DDU", &[], 0, Choose::Order, Some(2)),
            ("UDU", &[], 0, Choose::Order, Some(2)),
            ("UUU", &[], 2, Choose::Order, Some(0)),
            ("DDD", &[], 0, Choose::Order, None),
            ("D?D", &[], 0, Choose::Order, None),
            ("D?-", &[], 0, Choose::Order, Some(2)),
            ("UDD", &[], 1, Choose::Order, Some(0)),
            ("-", &[], 0, Choose::Order, None),
            ("DUU", &[0, 80, 20], 0, Choose::Latency, Some(2)),
            ("DUU", &[0, 20, 80], 0, Choose::Latency, Some(1)),
            ("DUU", &[0, 20, 20], 0, Choose::Latency, Some(1)),
            ("UUU", &[1, 50, 40], 2, Choose::Latency, Some(0)),
            ("UUU", &[60, 50, 40], 2, Choose::Latency, Some(1)),
            ("D-D", &[], 0, Choose::Latency, Some(1)),
            ("D-U", &[0, 0, 90], 0, Choose::Latency, Some(2)),
            ("DDD", &[], 0, Choose::Latency, None),
        ];
        for (spec, lat, active, how, want) in cases {
            assert_eq!(
                view(spec, lat, "").choose(*active, *how),
                *want,
                "{spec} {lat:?} active {active} {how:?}"
            );
        }
    }

    #[test]
    fn is_it_me_table() {
        // (regions, references, active, host at fault)
        let cases = [
            ("DDD", "D", 0, true),
            ("DDD", "DD", 0, true),
            ("DDD", "DU", 0, false),
            ("DDD", "", 0, false),
            ("UDD", "D", 0, true),
            ("DDU", "D", 0, false),
            ("D?D", "D", 0, false),
            ("---", "D", 0, true),
            ("DDD", "?", 0, false),
        ];
        for (spec, refs, active, want) in cases {
            assert_eq!(
                view(spec, &[], refs).host_at_fault(active),
                want,
                "{spec} refs {refs} active {active}"
            );
        }
    }

    #[test]
    fn unchecked_regions_and_references_are_ignored_by_observe() {
        let mut s = view("-U", &[], "");
        let now = Instant::now();
        assert_eq!(
            s.observe(now, Subject::Region(0), false, Duration::ZERO),
            None
        );
        assert_eq!(
            s.observe(now, Subject::Region(7), false, Duration::ZERO),
            None
        );
        assert_eq!(
            s.observe(now, Subject::Reference(0), false, Duration::ZERO),
            None
        );
        assert_eq!(
            s.observe(now, Subject::Region(1), false, Duration::ZERO),
            Some(Verdict::Down)
        );
        assert_eq!(s.verdict(Subject::Region(0)), None);
        assert_eq!(s.healthy_standbys(0), 0);
    }
}
