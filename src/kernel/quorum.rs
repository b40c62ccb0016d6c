//! The fleet's decision: when the hosts of a fleet share one active region, the leader moves
//! them only when enough live hosts report that region in outage. Pure: the leader hands in
//! the live views it read from the store and gets a [`Verdict`].

use crate::kernel::region::Region;

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
}

/// One live host's view, as it published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The region the host is on (its env file).
    pub region: String,
    /// How that region answers the host's probes.
    pub health: Health,
    /// The is-it-me guard blames the host's own network: it abstains.
    pub blames_self: bool,
    /// The standbys whose health the host knows: (region, up).
    pub standbys: Vec<(String, bool)>,
}

/// The rule's settings: `quorum` is the fraction of live voters that must be exceeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub quorum: f64,
    pub min_voters: usize,
}

/// Why the fleet stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stay {
    /// Fewer live voters than `min_voters` report on the active region.
    TooFewVoters { voters: usize },
    /// Not enough of the voters report an outage.
    NotEnough {
        outage: usize,
        need: usize,
        voters: usize,
    },
    /// The outage is agreed, but every other region is reported down too.
    AllRegionsDown,
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

    /// The verdict on the fleet's active region `active` (an index into `order`).
    pub fn decide(&self, order: &[Region], active: usize, views: &[View], paused: bool) -> Verdict {
        let Some(name) = order.get(active).map(|r| r.name.as_str()) else {
            return Verdict::Stay(Stay::TooFewVoters { voters: 0 });
        };
        let voters: Vec<&View> = views
            .iter()
            .filter(|v| v.region.eq_ignore_ascii_case(name) && !v.blames_self)
            .collect();
        if voters.len() < self.min_voters || voters.is_empty() {
            return Verdict::Stay(Stay::TooFewVoters {
                voters: voters.len(),
            });
        }
        let outage: Vec<&View> = voters
            .iter()
            .copied()
            .filter(|v| v.health == Health::Outage)
            .collect();
        let need = self.need(voters.len());
        if outage.len() < need {
            return Verdict::Stay(Stay::NotEnough {
                outage: outage.len(),
                need,
                voters: voters.len(),
            });
        }
        let n = order.len();
        let to = (1..n)
            .map(|k| (active + k) % n)
            .find(|&i| !reported_down(&voters, &order[i].name));
        match to {
            None => Verdict::Stay(Stay::AllRegionsDown),
            Some(to) if paused => Verdict::Stay(Stay::Paused { to }),
            Some(to) => Verdict::Move {
                to,
                outage: outage.len(),
                voters: voters.len(),
            },
        }
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
    /// host that blames itself, and standbys as `NAM+` / `APAC-`.
    fn view(spec: &str) -> View {
        let mut parts = spec.split_whitespace();
        let region = parts.next().unwrap().to_string();
        let state = parts.next().unwrap();
        let health = match &state[..1] {
            "u" => Health::Up,
            "f" => Health::Failing,
            _ => Health::Outage,
        };
        let standbys = parts
            .map(|p| (p[..p.len() - 1].to_string(), p.ends_with('+')))
            .collect();
        View {
            region,
            health,
            blames_self: state.contains('m'),
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
                "hosts on another region do not vote",
                0.5,
                1,
                vec!["NAM o", "NAM o", "EU u"],
                false,
                stay(0, 1, 1),
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
            let rule = Rule { quorum, min_voters };
            let views: Vec<View> = views.iter().map(|s| view(s)).collect();
            assert_eq!(rule.decide(&order(), 1, &views, paused), expected, "{case}");
        }
    }

    #[test]
    fn need_is_more_than_the_fraction_and_at_least_min_voters() {
        let rule = Rule {
            quorum: 0.5,
            min_voters: 2,
        };
        let needs: Vec<usize> = (0..=6).map(|v| rule.need(v)).collect();
        assert_eq!(needs, [2, 2, 2, 2, 3, 3, 4]);
    }
}
