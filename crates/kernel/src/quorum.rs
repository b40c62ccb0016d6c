//! The fleet's decision: when the hosts of a fleet share one active region, the leader moves
//! them only when enough live hosts report that region in outage. Pure: the leader hands in
//! the live views it read from the store and the fleet's recent moves, and gets a
//! [`Verdict`].
//!
//! The rules it holds:
//! - A host votes only about the region, from the region: a host whose failures are its own
//!   (its tunnel, its TLS setup, its reference targets, its network) abstains.
//! - Every live host that does not abstain is a voter, hosts still moving included: a host
//!   that has not yet arrived on the epoch's region has not seen it fail.
//! - An outage vote counts only from a host on the epoch's region that has executed that
//!   epoch, and only once it has failed for a full threshold since it arrived there.
//! - Fleet moves are damped like a single host's switches, over the fleet's moves.

use std::time::{Duration, Instant};

use crate::damping;
use crate::region::Region;

/// How a host sees the fleet's active region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Its probes pass.
    Up,
    /// Its probes fail, for less than the threshold so far.
    Failing,
    /// Its probes have failed for the threshold.
    Outage,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Failing => "failing",
            Health::Outage => "outage",
        }
    }

    pub fn parse(text: &str) -> Option<Health> {
        match text {
            "up" => Some(Health::Up),
            "failing" => Some(Health::Failing),
            "outage" => Some(Health::Outage),
            _ => None,
        }
    }

    /// A host's health of its region at `now`: its failures count from when they began, or
    /// from when it arrived on the region for the fleet's epoch, whichever is later.
    pub fn at(
        now: Instant,
        failing_since: Option<Instant>,
        arrived_at: Option<Instant>,
        threshold: Duration,
    ) -> Health {
        let Some(since) = failing_since else {
            return Health::Up;
        };
        let since = arrived_at.map_or(since, |a| a.max(since));
        if now.saturating_duration_since(since) >= threshold {
            Health::Outage
        } else {
            Health::Failing
        }
    }
}

/// One live host's view, as it published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The region the host is on (its env file).
    pub region: String,
    /// The fleet's epoch the host executes: the last `active` it followed or found itself
    /// on (0: none yet).
    pub epoch: u64,
    /// How that region answers the host's probes.
    pub health: Health,
    /// The is-it-me guard blames the host's own network: it abstains.
    pub blames_self: bool,
    /// The host's failures are its own (its local tunnel, its TLS setup, its reference
    /// targets): it abstains.
    pub local_fault: bool,
    /// The standbys whose health the host knows: (region, up).
    pub standbys: Vec<(String, bool)>,
}

impl View {
    /// Whether the host abstains: it says nothing about any region.
    pub fn abstains(&self) -> bool {
        self.blames_self || self.local_fault
    }
}

/// The rule's settings: `quorum` is the fraction of live voters that must be exceeded;
/// `max_moves_per_hour` and `hold_down` (the first hold-down after a move, doubling) damp
/// the fleet's automatic moves as `failover.max_switches_per_hour` damps one host's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub quorum: f64,
    pub min_voters: usize,
    pub max_moves_per_hour: u32,
    pub hold_down: Duration,
}

/// What the leader knows of the fleet when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Fleet<'a> {
    /// The active region, an index into the order.
    pub active: usize,
    /// The epoch of `active`.
    pub epoch: u64,
    /// Every live host's view.
    pub views: &'a [View],
    /// `pause --fleet` holds automatic moves.
    pub paused: bool,
    /// How long ago each automatic move of the fleet was.
    pub moves_ago: &'a [Duration],
}

/// Why the fleet stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stay {
    /// Fewer live voters than `min_voters`.
    TooFewVoters { voters: usize },
    /// Not enough of the voters report an outage.
    NotEnough {
        outage: usize,
        need: usize,
        voters: usize,
    },
    /// The outage is agreed, but every other region is reported down too.
    AllRegionsDown,
    /// The outage is agreed, but the fleet moved too recently (flap damping).
    Damped {
        to: usize,
        next_allowed_in: Duration,
    },
    /// The outage is agreed, but the fleet is paused.
    Paused { to: usize },
}

/// What the leader does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Stay(Stay),
    /// Move the fleet from the active region to region `to` (an index into the order).
    Move {
        to: usize,
        outage: usize,
        voters: usize,
    },
}

impl Rule {
    /// How many of `voters` must report the outage: more than the quorum fraction, and at
    /// least `min_voters`.
    pub fn need(&self, voters: usize) -> usize {
        let share = (self.quorum * voters as f64).floor() as usize + 1;
        share.max(self.min_voters)
    }

    /// The verdict on the fleet's active region.
    pub fn decide(&self, order: &[Region], fleet: Fleet) -> Verdict {
        let active = fleet.active;
        let Some(name) = order.get(active).map(|r| r.name.as_str()) else {
            return Verdict::Stay(Stay::TooFewVoters { voters: 0 });
        };
        let voters: Vec<&View> = fleet.views.iter().filter(|v| !v.abstains()).collect();
        if voters.len() < self.min_voters || voters.is_empty() {
            return Verdict::Stay(Stay::TooFewVoters {
                voters: voters.len(),
            });
        }
        let outage = voters
            .iter()
            .filter(|v| {
                v.health == Health::Outage
                    && v.epoch == fleet.epoch
                    && v.region.eq_ignore_ascii_case(name)
            })
            .count();
        let need = self.need(voters.len());
        if outage < need {
            return Verdict::Stay(Stay::NotEnough {
                outage,
                need,
                voters: voters.len(),
            });
        }
        let n = order.len();
        let to = (1..n)
            .map(|k| (active + k) % n)
            .find(|&i| !reported_down(&voters, &order[i].name));
        let Some(to) = to else {
            return Verdict::Stay(Stay::AllRegionsDown);
        };
        if let Some(next_allowed_in) = self.damped(fleet.moves_ago) {
            return Verdict::Stay(Stay::Damped {
                to,
                next_allowed_in,
            });
        }
        if fleet.paused {
            return Verdict::Stay(Stay::Paused { to });
        }
        Verdict::Move {
            to,
            outage,
            voters: voters.len(),
        }
    }

    /// How long flap damping still holds the next move, after moves `ago`.
    fn damped(&self, ago: &[Duration]) -> Option<Duration> {
        let mut recent: Vec<Duration> = ago
            .iter()
            .copied()
            .filter(|a| *a < damping::WINDOW)
            .collect();
        // Oldest first.
        recent.sort_by(|a, b| b.cmp(a));
        let last = *recent.last()?;
        let damping = damping::Damping::new(self.max_moves_per_hour, self.hold_down);
        let mut wait = damping.hold_down(recent.len()).saturating_sub(last);
        let max = self.max_moves_per_hour.max(1) as usize;
        if recent.len() >= max {
            let nth_oldest = recent[recent.len() - max];
            wait = wait.max(damping::WINDOW.saturating_sub(nth_oldest));
        }
        (!wait.is_zero()).then_some(wait)
    }
}

/// A standby is down when most of the voters that know its health say so.
fn reported_down(views: &[&View], region: &str) -> bool {
    let known: Vec<bool> = views
        .iter()
        .filter_map(|v| {
            v.standbys
                .iter()
                .find(|(r, _)| r.eq_ignore_ascii_case(region))
                .map(|(_, up)| *up)
        })
        .collect();
    let down = known.iter().filter(|up| !**up).count();
    !known.is_empty() && down * 2 > known.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Vec<Region> {
        ["NAM", "EU", "APAC"]
            .iter()
            .map(|n| Region::new(n, &format!("cloud.{}.ext.com", n.to_lowercase())).unwrap())
            .collect()
    }

    /// A view from a compact spec: region, then `u`/`f`/`o` (up, failing, outage), `m` for a
    /// host that blames its own network, `l` for a local fault, then `@N` for the epoch it
    /// executes (default 2, the table's epoch) and standbys as `NAM+` / `APAC-`.
    fn view(spec: &str) -> View {
        let mut parts = spec.split_whitespace();
        let region = parts.next().unwrap().to_string();
        let state = parts.next().unwrap();
        let health = match &state[..1] {
            "u" => Health::Up,
            "f" => Health::Failing,
            _ => Health::Outage,
        };
        let mut epoch = 2;
        let mut standbys = Vec::new();
        for p in parts {
            match p.strip_prefix('@') {
                Some(e) => epoch = e.parse().unwrap(),
                None => standbys.push((p[..p.len() - 1].to_string(), p.ends_with('+'))),
            }
        }
        View {
            region,
            epoch,
            health,
            blames_self: state.contains('m'),
            local_fault: state.contains('l'),
            standbys,
        }
    }

    fn stay(outage: usize, need: usize, voters: usize) -> Verdict {
        Verdict::Stay(Stay::NotEnough {
            outage,
            need,
            voters,
        })
    }

    fn to(to: usize, outage: usize, voters: usize) -> Verdict {
        Verdict::Move { to, outage, voters }
    }

    #[test]
    fn the_rule_as_a_table() {
        // (case, quorum, min_voters, views, paused, verdict); EU (index 1) is active.
        type Row<'a> = (&'a str, f64, usize, Vec<&'a str>, bool, Verdict);
        let table: Vec<Row> = vec![
            (
                "one of five in outage stays",
                0.5,
                2,
                vec!["EU o", "EU u", "EU u", "EU u", "EU u"],
                false,
                stay(1, 3, 5),
            ),
            (
                "two of five stay",
                0.5,
                2,
                vec!["EU o", "EU o", "EU u", "EU f", "EU u"],
                false,
                stay(2, 3, 5),
            ),
            (
                "three of five move to the next region",
                0.5,
                2,
                vec!["EU o", "EU o", "EU o", "EU u", "EU u"],
                false,
                to(2, 3, 5),
            ),
            (
                "failing is not yet an outage",
                0.5,
                2,
                vec!["EU o", "EU o", "EU f", "EU f", "EU f"],
                false,
                stay(2, 3, 5),
            ),
            (
                "hosts that blame themselves abstain",
                0.5,
                2,
                vec!["EU om", "EU om", "EU om", "EU o", "EU u"],
                false,
                stay(1, 2, 2),
            ),
            (
                "abstainers leave fewer voters",
                0.5,
                2,
                vec!["EU om", "EU om", "EU o", "EU o", "EU o"],
                false,
                to(2, 3, 3),
            ),
            (
                "min_voters floors the need",
                0.5,
                3,
                vec!["EU o", "EU o", "EU u"],
                false,
                stay(2, 3, 3),
            ),
            (
                "too few voters stay",
                0.5,
                3,
                vec!["EU o", "EU o"],
                false,
                Verdict::Stay(Stay::TooFewVoters { voters: 2 }),
            ),
            (
                "no view at all stays",
                0.5,
                1,
                vec![],
                false,
                Verdict::Stay(Stay::TooFewVoters { voters: 0 }),
            ),
            (
                "hosts still moving vote, and not for an outage they saw elsewhere",
                0.5,
                1,
                vec!["NAM o", "NAM o", "EU u"],
                false,
                stay(0, 2, 3),
            ),
            (
                "the first two movers do not outvote three hosts still queued",
                0.5,
                2,
                vec!["EU o", "EU o", "NAM o", "NAM o", "NAM u"],
                false,
                stay(2, 3, 5),
            ),
            (
                "an outage seen before the epoch began is no vote",
                0.5,
                2,
                vec!["EU o @1", "EU o @1", "EU o @1", "EU o", "EU u"],
                false,
                stay(1, 3, 5),
            ),
            (
                "a local fault on every host is no quorum",
                0.5,
                2,
                vec!["EU ol", "EU ol", "EU ol", "EU ol", "EU ol"],
                false,
                Verdict::Stay(Stay::TooFewVoters { voters: 0 }),
            ),
            (
                "local faults abstain, the others decide",
                0.5,
                2,
                vec!["EU ol", "EU ol", "EU o", "EU o", "EU u"],
                false,
                to(2, 2, 3),
            ),
            (
                "a larger quorum needs more",
                0.75,
                1,
                vec!["EU o", "EU o", "EU o", "EU u"],
                false,
                stay(3, 4, 4),
            ),
            (
                "a zero quorum needs one",
                0.0,
                1,
                vec!["EU o", "EU u", "EU u"],
                false,
                to(2, 1, 3),
            ),
            (
                "the next region down is skipped",
                0.5,
                1,
                vec!["EU o APAC-", "EU o APAC-", "EU u"],
                false,
                to(0, 2, 3),
            ),
            (
                "every region down stays",
                0.5,
                1,
                vec!["EU o APAC- NAM-", "EU o APAC- NAM-", "EU o APAC- NAM-"],
                false,
                Verdict::Stay(Stay::AllRegionsDown),
            ),
            (
                "a minority saying down does not skip",
                0.5,
                1,
                vec!["EU o APAC-", "EU o APAC+", "EU o APAC+"],
                false,
                to(2, 3, 3),
            ),
            (
                "healthy voters know the standbys too",
                0.5,
                1,
                vec![
                    "EU o APAC-",
                    "EU o APAC-",
                    "EU o APAC+",
                    "EU u APAC+",
                    "EU u APAC+",
                ],
                false,
                to(2, 3, 5),
            ),
            (
                "a pause holds an agreed move",
                0.5,
                2,
                vec!["EU o", "EU o", "EU o"],
                true,
                Verdict::Stay(Stay::Paused { to: 2 }),
            ),
            (
                "a pause without outage is a plain stay",
                0.5,
                2,
                vec!["EU u", "EU u", "EU u"],
                true,
                stay(0, 2, 3),
            ),
        ];
        for (case, quorum, min_voters, views, paused, expected) in table {
            let rule = Rule {
                quorum,
                min_voters,
                ..rule()
            };
            let views: Vec<View> = views.iter().map(|s| view(s)).collect();
            let fleet = Fleet {
                active: 1,
                epoch: 2,
                views: &views,
                paused,
                moves_ago: &[],
            };
            assert_eq!(rule.decide(&order(), fleet), expected, "{case}");
        }
    }

    fn rule() -> Rule {
        Rule {
            quorum: 0.5,
            min_voters: 2,
            max_moves_per_hour: 3,
            hold_down: Duration::from_secs(60),
        }
    }

    #[test]
    fn fleet_moves_are_damped_like_a_hosts_switches() {
        let views: Vec<View> = ["EU o", "EU o", "EU o"].iter().map(|s| view(s)).collect();
        let secs = Duration::from_secs;
        let damped = |s: u64| {
            Verdict::Stay(Stay::Damped {
                to: 2,
                next_allowed_in: secs(s),
            })
        };
        // (moves ago in seconds, verdict): the hold-down is 60 s after one move, 120 s after
        // two; three in the hour are the most; moves older than an hour are forgotten.
        let table: Vec<(Vec<u64>, Verdict)> = vec![
            (vec![], to(2, 3, 3)),
            (vec![20], damped(40)),
            (vec![60], to(2, 3, 3)),
            (vec![300, 30], damped(90)),
            (vec![300, 130], to(2, 3, 3)),
            (vec![3000, 2000, 1000], damped(600)),
            (vec![3600, 3000], to(2, 3, 3)),
        ];
        for (ago, expected) in table {
            let ago: Vec<Duration> = ago.into_iter().map(secs).collect();
            let fleet = Fleet {
                active: 1,
                epoch: 2,
                views: &views,
                paused: false,
                moves_ago: &ago,
            };
            assert_eq!(rule().decide(&order(), fleet), expected, "{ago:?}");
        }
    }

    #[test]
    fn an_outage_counts_from_the_arrival_on_the_region() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let threshold = s(10);
        // (failing since, arrived at, now) -> health
        let table = [
            (None, None, 50, Health::Up),
            (Some(0), None, 5, Health::Failing),
            (Some(0), None, 10, Health::Outage),
            (Some(0), Some(8), 12, Health::Failing),
            (Some(0), Some(8), 18, Health::Outage),
            (Some(8), Some(0), 18, Health::Outage),
        ];
        for (since, arrived, now, expected) in table {
            let at = |x: u64| t0 + s(x);
            let got = Health::at(at(now), since.map(at), arrived.map(at), threshold);
            assert_eq!(got, expected, "{since:?} {arrived:?} {now}");
        }
    }

    #[test]
    fn need_is_more_than_the_fraction_and_at_least_min_voters() {
        let rule = rule();
        let needs: Vec<usize> = (0..=6).map(|v| rule.need(v)).collect();
        assert_eq!(needs, [2, 2, 2, 2, 3, 3, 4]);
    }
}
