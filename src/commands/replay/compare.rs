//! The recorded decisions beside the simulated ones: which would have differed, and each
//! outage's time to failover under both. Pure.

use std::time::Duration;

use super::timeline::{Decided, DecisionKind, JournalInput, Timeline};
use crate::kernel::policy::Outcome;

/// A decision that would have differed.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// Recorded, and the replay would not have made it.
    NotMade(Decided),
    /// The replay would have made it, and the daemon did not.
    Extra(Decided),
    /// The same decision for the same outage, more than the tolerance earlier or later.
    OtherTime { recorded: Decided, replay: Decided },
    /// The same decision at the same time, to another region.
    OtherRegion { recorded: Decided, replay: Decided },
}

impl Difference {
    /// When it happened, for the order of the report.
    pub fn at(&self) -> Duration {
        match self {
            Difference::NotMade(d) | Difference::Extra(d) => d.at,
            Difference::OtherTime { recorded, replay }
            | Difference::OtherRegion { recorded, replay } => recorded.at.min(replay.at),
        }
    }
}

/// The decisions that differ, in time order; decisions within `tolerance` of each other (of
/// the same kind, from the same region) are the same.
pub fn compare(recorded: &[Decided], replay: &[Decided], tolerance: Duration) -> Vec<Difference> {
    let mut used = vec![false; replay.len()];
    let mut left = Vec::new();
    let mut out = Vec::new();
    let alike = |r: &Decided, s: &Decided| r.kind == s.kind && r.from == s.from;
    let near = |a: Duration, b: Duration| a.abs_diff(b) <= tolerance;
    for r in recorded {
        let found = closest(replay, &used, |s| alike(r, s) && near(r.at, s.at), r.at);
        match found {
            Some(i) => {
                used[i] = true;
                if replay[i].to != r.to {
                    out.push(Difference::OtherRegion {
                        recorded: r.clone(),
                        replay: replay[i].clone(),
                    });
                }
            }
            None => left.push(r),
        }
    }
    for r in left {
        let same_outage = |s: &Decided| alike(r, s) && near(r.began(), s.began());
        match closest(replay, &used, same_outage, r.at) {
            Some(i) => {
                used[i] = true;
                out.push(Difference::OtherTime {
                    recorded: r.clone(),
                    replay: replay[i].clone(),
                });
            }
            None => out.push(Difference::NotMade(r.clone())),
        }
    }
    for (s, used) in replay.iter().zip(used) {
        if !used {
            out.push(Difference::Extra(s.clone()));
        }
    }
    out.sort_by_key(Difference::at);
    out
}

/// The unused decision of `all` that `fits` and lies closest to `at`.
fn closest(
    all: &[Decided],
    used: &[bool],
    fits: impl Fn(&Decided) -> bool,
    at: Duration,
) -> Option<usize> {
    all.iter()
        .enumerate()
        .filter(|(i, d)| !used[*i] && fits(d))
        .min_by_key(|(_, d)| d.at.abs_diff(at))
        .map(|(i, _)| i)
}

/// One outage the journal recorded, and how long it took to fail over from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    pub region: String,
    pub began: Duration,
    /// Until the region answered again; `None`: not seen to end.
    pub lasted: Option<Duration>,
    /// From its start to the recorded failover away from it; `None`: none.
    pub recorded: Option<Duration>,
    /// The same under the replay's settings.
    pub replay: Option<Duration>,
}

/// Every recorded run of failures of a region, with the time to failover under both.
pub fn outages(
    t: &Timeline,
    recorded: &[Decided],
    replay: &[Decided],
    tolerance: Duration,
) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    for (at, h) in &t.inputs {
        let JournalInput::Probe {
            region, outcome, ..
        } = h
        else {
            continue;
        };
        let pos = open.iter().position(|(r, _)| r == region);
        match (outcome, pos) {
            (Outcome::Success, Some(p)) => {
                let (_, i) = open.remove(p);
                out[i].lasted = Some(at.saturating_sub(out[i].began));
            }
            (Outcome::Failure | Outcome::TunnelDown, None) => {
                open.push((region.clone(), out.len()));
                out.push(Outage {
                    region: region.clone(),
                    began: *at,
                    lasted: None,
                    recorded: None,
                    replay: None,
                });
            }
            _ => {}
        }
    }
    let failover = |o: &Outage, ds: &[Decided]| {
        let end = o.lasted.map_or(t.end, |d| o.began + d) + tolerance;
        ds.iter()
            .find(|d| {
                d.kind == DecisionKind::Failover
                    && d.from == o.region
                    && d.at + tolerance >= o.began
                    && d.at <= end
            })
            .map(|d| d.at.saturating_sub(o.began))
    };
    for o in &mut out {
        o.recorded = failover(o, recorded);
        o.replay = failover(o, replay);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64, kind: DecisionKind, from: &str, to: &str, took_ms: u64) -> Decided {
        Decided {
            at: Duration::from_millis(ms),
            kind,
            from: from.into(),
            to: Some(to.into()),
            took: Some(Duration::from_millis(took_ms)),
        }
    }

    const TOL: Duration = Duration::from_millis(100);

    fn case(recorded: &[Decided], replay: &[Decided], want: &[&str]) {
        let got: Vec<&str> = compare(recorded, replay, TOL)
            .iter()
            .map(|d| match d {
                Difference::NotMade(_) => "not_made",
                Difference::Extra(_) => "extra",
                Difference::OtherTime { .. } => "other_time",
                Difference::OtherRegion { .. } => "other_region",
            })
            .collect();
        assert_eq!(got, want, "{recorded:?} vs {replay:?}");
    }

    #[test]
    fn decisions_are_matched_within_the_tolerance() {
        let f = |ms, to| d(ms, DecisionKind::Failover, "EU", to, 1000);
        case(&[f(1100, "NAM")], &[f(1180, "NAM")], &[]);
        case(&[f(1100, "NAM")], &[f(1180, "APAC")], &["other_region"]);
        case(&[f(1100, "NAM")], &[], &["not_made"]);
        case(&[], &[f(1100, "NAM")], &["extra"]);
        // The same outage (begun at 100 ms) failed over 1 s later.
        case(
            &[f(1100, "NAM")],
            &[d(2100, DecisionKind::Failover, "EU", "NAM", 2000)],
            &["other_time"],
        );
        // Another outage entirely: one not made, one extra.
        case(
            &[f(1100, "NAM")],
            &[d(9100, DecisionKind::Failover, "EU", "NAM", 1000)],
            &["not_made", "extra"],
        );
        case(
            &[f(1100, "NAM")],
            &[d(1100, DecisionKind::TunnelRestart, "EU", "NAM", 1000)],
            &["not_made", "extra"],
        );
    }

    #[test]
    fn each_outage_has_its_time_to_failover_under_both() {
        let probe = |region: &str, outcome| JournalInput::Probe {
            region: region.into(),
            outcome,
            kind: None,
        };
        let t = Timeline {
            start: std::time::SystemTime::UNIX_EPOCH,
            end: Duration::from_secs(5),
            inputs: vec![
                (Duration::from_millis(100), probe("EU", Outcome::Failure)),
                (Duration::from_millis(1200), probe("NAM", Outcome::Success)),
                (Duration::from_millis(2000), probe("NAM", Outcome::Failure)),
                (Duration::from_millis(2500), probe("NAM", Outcome::Success)),
            ],
            recorded: Vec::new(),
            held: Vec::new(),
            ran_with: Vec::new(),
            skipped: 0,
            fleet: false,
        };
        let recorded = [d(1100, DecisionKind::Failover, "EU", "NAM", 1000)];
        let o = outages(&t, &recorded, &[], TOL);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].region, "EU");
        assert_eq!(o[0].lasted, None);
        assert_eq!(o[0].recorded, Some(Duration::from_millis(1000)));
        assert_eq!(o[0].replay, None);
        assert_eq!(o[1].region, "NAM");
        assert_eq!(o[1].lasted, Some(Duration::from_millis(500)));
        assert_eq!((o[1].recorded, o[1].replay), (None, None));
    }
}
