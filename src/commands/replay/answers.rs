//! What the journal says a region answered at a moment of the replay: its own probes while the
//! daemon was on it, the recorded failbacks' word on the preferred region, and what has to be
//! assumed where the daemon was elsewhere or had not spoken yet. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::timeline::{JournalInput, Timeline};
use crate::kernel::policy::Outcome;

/// What a simulated probe was answered with when the journal could not say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Assumed {
    /// The region never appears in the journal: assumed healthy.
    NeverRecorded,
    /// Before the journal's next word on the region (`ok`, `failure` or `tunnel_down`): that
    /// word is assumed to hold already.
    NextOutcome(&'static str),
    /// The daemon was not probing the region then: its last word (`ok`, `failure`,
    /// `tunnel_down`, or `ok` from a recorded failback) is assumed to hold.
    LastOutcome(&'static str),
}

/// One word of the journal on a region: what it answered, from when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionAnswer<'a> {
    pub at: Duration,
    pub outcome: Outcome,
    /// The error kind of a failure.
    pub kind: Option<&'a str>,
}

fn word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "ok",
        Outcome::Failure => "failure",
        Outcome::TunnelDown => "tunnel_down",
        Outcome::TunnelMisconfigured => "tunnel_misconfigured",
    }
}

/// The journal's words so far, and where the recorded daemon is.
pub struct Answers<'a> {
    /// How closely the journal places a probe: an assumption this close to the journal's word
    /// on a region is not worth a note.
    precision: Duration,
    /// Each region's last recorded probe outcome so far.
    known: BTreeMap<&'a str, RegionAnswer<'a>>,
    /// Each region's last recorded failback health so far.
    healthy: BTreeMap<&'a str, RegionAnswer<'a>>,
    /// Every word of the journal on each region, in time order (to look ahead).
    words: BTreeMap<&'a str, Vec<RegionAnswer<'a>>>,
    /// Regions the recorded daemon has just moved to: their first word is still to come.
    awaited: BTreeSet<&'a str>,
    /// The region the recorded daemon is on (its env file), while it runs.
    recorded_on: Option<&'a str>,
    /// The region the recorded daemon last left, and when.
    left: Option<(&'a str, Duration)>,
}

impl<'a> Answers<'a> {
    pub fn new(t: &'a Timeline, precision: Duration) -> Self {
        let mut words: BTreeMap<&str, Vec<RegionAnswer>> = BTreeMap::new();
        for (at, h) in &t.inputs {
            let (region, outcome, kind) = match h {
                JournalInput::Probe {
                    region,
                    outcome,
                    kind,
                } => (region, *outcome, kind.as_deref()),
                JournalInput::Healthy { region } => (region, Outcome::Success, None),
                _ => continue,
            };
            let w = RegionAnswer {
                at: *at,
                outcome,
                kind,
            };
            words.entry(region.as_str()).or_default().push(w);
        }
        Answers {
            precision,
            known: BTreeMap::new(),
            healthy: BTreeMap::new(),
            words,
            awaited: BTreeSet::new(),
            recorded_on: None,
            left: None,
        }
    }

    /// The recorded daemon's env file now names `region`: its first word there is to come.
    pub fn arrive(&mut self, at: Duration, region: &'a str) {
        if let Some(prev) = self.recorded_on.filter(|p| *p != region) {
            self.left = Some((prev, at));
        }
        self.recorded_on = Some(region);
        self.awaited.insert(region);
    }

    /// The recorded daemon stopped; the region it was on.
    pub fn stop(&mut self) -> Option<&'a str> {
        self.recorded_on.take()
    }

    /// The daemon recorded what `region` answered.
    pub fn probed(&mut self, word: RegionAnswer<'a>, region: &'a str) {
        if self.recorded_on != Some(region) {
            self.arrive(word.at, region);
        }
        self.known.insert(region, word);
        self.awaited.remove(region);
    }

    /// A recorded failback says `region` has been healthy since `at`.
    pub fn healthy(&mut self, at: Duration, region: &'a str) {
        let w = RegionAnswer {
            at,
            outcome: Outcome::Success,
            kind: None,
        };
        self.healthy.insert(region, w);
    }

    /// The region's latest word so far: a probe, or a recorded failback's health.
    fn latest(&self, name: &str) -> Option<RegionAnswer<'a>> {
        match (self.known.get(name), self.healthy.get(name)) {
            (Some(k), Some(h)) => Some(if h.at > k.at { *h } else { *k }),
            (k, h) => k.or(h).copied(),
        }
    }

    /// The journal's first word on the region from `at` on.
    fn next_word(&self, name: &str, at: Duration) -> Option<RegionAnswer<'a>> {
        let words = self.words.get(name)?;
        words.get(words.partition_point(|w| w.at < at)).copied()
    }

    /// Whether `name` counts as healthy at `at` for a standby check: its latest word, else
    /// its next one, else yes.
    pub fn health(&self, name: &str, at: Duration) -> bool {
        self.latest(name)
            .or_else(|| self.next_word(name, at))
            .is_none_or(|w| w.outcome == Outcome::Success)
    }

    /// What `name` answered at `at` as far as the journal says, and what had to be assumed.
    pub fn answer(&self, name: &'a str, at: Duration) -> (RegionAnswer<'a>, Option<Assumed>) {
        let ahead = |w: RegionAnswer<'a>| {
            let far = w.at.saturating_sub(at) > self.precision;
            (w, far.then(|| Assumed::NextOutcome(word(w.outcome))))
        };
        if self.awaited.contains(name)
            && let Some(w) = self.next_word(name, at)
        {
            return ahead(w);
        }
        let just_left = self
            .left
            .is_some_and(|(r, when)| r == name && at.saturating_sub(when) <= self.precision);
        if let Some(&w) = self.known.get(name)
            && (self.recorded_on == Some(name) || just_left)
        {
            return (w, None);
        }
        if let Some(w) = self.latest(name) {
            return (w, Some(Assumed::LastOutcome(word(w.outcome))));
        }
        if let Some(w) = self.next_word(name, at) {
            return ahead(w);
        }
        let healthy = RegionAnswer {
            at,
            outcome: Outcome::Success,
            kind: None,
        };
        (healthy, Some(Assumed::NeverRecorded))
    }
}
