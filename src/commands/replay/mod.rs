//! `replay --journal FILE`: what would other settings have done? The journal's probe outcome
//! changes, pauses, manual switches and starts are run through the kernel under the effective
//! settings; the decisions that would have differed are printed beside the recorded ones,
//! with each outage's time to failover under both. The timeline, the simulation and the
//! comparison are pure (`timeline`, `simulate`, `compare`), `render` words the result; this
//! file reads the journal and prints.

mod answers;
mod compare;
mod read;
mod render;
mod simulate;
mod timeline;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::config::Config;
use crate::kernel::policy::Policy;
use crate::kernel::standby::Standbys;
use crate::report::journal::Record;
use compare::{Difference, Outage};
use read::read_journal;
use simulate::{Cadence, Simulation};
use timeline::Timeline;

/// Everything the replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub timeline: Timeline,
    pub simulation: Simulation,
    pub differences: Vec<Difference>,
    pub outages: Vec<Outage>,
    /// Decisions this close are the same: each side places a decision only to within one
    /// of its probe rounds.
    pub tolerance: Duration,
}

/// Replays `records` under `config` (pure: no I/O, no clock beyond a base instant).
pub fn replay(records: &[Record], config: &Config) -> Replay {
    let timeline = timeline::timeline(records);
    let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
    let rules = config.rules();
    // Standby checks are not journaled: every standby is taken as usable, and only the
    // preferred region is checked (for failback), from what the journal says of it.
    let checked: Vec<bool> = (0..regions.len())
        .map(|i| i == 0 && rules.failback_after.is_some())
        .collect();
    let policy_for =
        |active| Policy::with_rules(rules.clone(), Standbys::new(&checked, 0, 1, 1), active);
    let p = &config.probe;
    let round = p.interval.max(p.fail_interval);
    let recorded_round = Some(timeline.recorded_round())
        .filter(|r| !r.is_zero())
        .unwrap_or(round);
    let tolerance = round + recorded_round;
    let cadence = Cadence {
        interval: p.interval,
        fail_interval: p.fail_interval,
        timeout: p.timeout,
        precision: tolerance,
    };
    let simulation = simulate::simulate(&timeline, &regions, policy_for, cadence);
    let differences = compare::compare(&timeline.recorded, &simulation.decisions, tolerance);
    let outages = compare::outages(
        &timeline,
        &timeline.recorded,
        &simulation.decisions,
        tolerance,
    );
    Replay {
        timeline,
        simulation,
        differences,
        outages,
        tolerance,
    }
}

/// The command: reads `journal`, replays it, prints text or JSON. Exit 0 whether or not
/// decisions differ (the last line, or `same` in JSON, says which). Each line skipped is
/// named on stderr; with `strict` it is refused instead.
pub fn run(config: &Config, journal: &Path, json: bool, strict: bool) -> Result<ExitCode> {
    let read = read_journal(journal, strict)?;
    for line in &read.skipped {
        eprintln!("failover-handler: replay: {line}: skipped (--strict refuses it)");
    }
    let r = replay(&read.records, config);
    let out = if json {
        format!("{}\n", render::json(&r, config, journal))
    } else {
        render::text(&r, config, journal)
    };
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::RuleFlags;
    use crate::report::journal::Level;
    use serde_json::Value;
    use std::time::SystemTime;
    use timeline::DecisionKind;

    /// A journal record `ms` after a fixed start.
    pub(super) fn rec(ms: u64, event: &str, fields: &[(&str, Value)]) -> Record {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut r = Record::new(at + Duration::from_millis(ms), Level::Info, event, "m");
        for (k, v) in fields {
            r = r.with(k, v.clone());
        }
        r
    }

    fn started(ms: u64, region: &str) -> Record {
        let fields = [
            ("region", region.into()),
            ("interval_ms", 10_000.into()),
            ("threshold_ms", 240_000.into()),
        ];
        rec(ms, "daemon_started", &fields)
    }

    fn probe(ms: u64, region: &str, outcome: &str) -> Record {
        let mut fields = vec![("region", region.into()), ("outcome", outcome.into())];
        if outcome != "ok" {
            fields.push(("error_kind", "status".into()));
        }
        rec(ms, "probe_changed", &fields)
    }

    fn moved(ms: u64, event: &str, from: &str, to: &str, took_ms: u64) -> Record {
        let took = if event == "failback" {
            "healthy_for_ms"
        } else {
            "failed_for_ms"
        };
        let fields = [
            ("region", from.into()),
            ("to_region", to.into()),
            (took, took_ms.into()),
        ];
        rec(ms, event, &fields)
    }

    /// NAM fails at 100 s for good; the daemon (10 s, 4 m) fails over to EU at 340 s.
    pub(super) fn outage() -> Vec<Record> {
        vec![
            started(0, "NAM"),
            probe(50, "NAM", "ok"),
            probe(100_050, "NAM", "failure"),
            moved(340_050, "failover", "NAM", "EU", 240_000),
            probe(350_100, "EU", "ok"),
            rec(400_000, "daemon_stopped", &[("region", "EU".into())]),
        ]
    }

    pub(super) fn run(records: &[Record], args: &[&str], flags: RuleFlags) -> Replay {
        let config = crate::testing::config(args)
            .with_rule_flags(&flags)
            .unwrap();
        replay(records, &config)
    }

    fn how(r: &Replay) -> Vec<(&'static str, Option<u64>, Option<u64>)> {
        let secs = |d: &timeline::Decided| d.at.as_secs();
        r.differences
            .iter()
            .map(|d| match d {
                Difference::NotMade(d) => ("not_made", Some(secs(d)), None),
                Difference::Extra(d) => ("extra", None, Some(secs(d))),
                Difference::OtherTime { recorded, replay } => {
                    ("other_time", Some(secs(recorded)), Some(secs(replay)))
                }
                Difference::OtherRegion { recorded, replay } => {
                    ("other_region", Some(secs(recorded)), Some(secs(replay)))
                }
            })
            .collect()
    }

    #[test]
    fn the_same_settings_make_the_same_decisions() {
        let r = run(&outage(), &[], RuleFlags::default());
        assert_eq!(how(&r), []);
        assert_eq!(r.simulation.decisions.len(), 1);
        assert_eq!(r.simulation.decisions[0].kind, DecisionKind::Failover);
        assert_eq!(
            r.simulation.decisions[0].took,
            Some(Duration::from_secs(240))
        );
        assert_eq!(r.tolerance, Duration::from_secs(20));
        assert_eq!(r.simulation.assumed.len(), 0, "{:?}", r.simulation.assumed);
        assert_eq!(render::summary(&r), "same decisions");
    }

    #[test]
    fn a_threshold_moves_the_failover_or_drops_it() {
        let plain = RuleFlags::default;
        let sooner = run(&outage(), &["--threshold", "2m"], plain());
        assert_eq!(how(&sooner), [("other_time", Some(340), Some(220))]);
        assert_eq!(sooner.outages[0].replay, Some(Duration::from_secs(120)));
        let never = run(&outage(), &["--threshold", "5m"], plain());
        assert_eq!(how(&never), [("not_made", Some(340), None)]);
        assert_eq!(never.outages[0].replay, None);
        assert_eq!(render::summary(&never), "1 decision differs");
        // Left on NAM after the daemon moved, the replay takes NAM's last word as holding.
        let assumed: Vec<_> = never.simulation.assumed.keys().cloned().collect();
        let last = answers::Assumed::LastOutcome("failure");
        assert_eq!(assumed, [("NAM".to_string(), last)]);
    }

    #[test]
    fn a_shorter_threshold_shows_a_false_failover() {
        // NAM failed for 3 minutes and recovered: under 4 m nothing happened.
        let blip = [
            started(0, "NAM"),
            probe(50, "NAM", "ok"),
            probe(100_050, "NAM", "failure"),
            probe(280_050, "NAM", "ok"),
            rec(400_000, "daemon_stopped", &[]),
        ];
        assert_eq!(how(&run(&blip, &[], RuleFlags::default())), []);
        let r = run(&blip, &["--threshold", "2m"], RuleFlags::default());
        assert_eq!(how(&r), [("extra", None, Some(220))]);
        assert_eq!(r.outages[0].lasted, Some(Duration::from_secs(180)));
        assert_eq!(r.outages[0].replay, Some(Duration::from_secs(120)));
        // After its failover the replay is on EU, which the journal never names.
        let assumed: Vec<_> = r.simulation.assumed.keys().cloned().collect();
        assert_eq!(
            assumed,
            [("EU".to_string(), answers::Assumed::NeverRecorded)]
        );
    }

    #[test]
    fn a_recorded_failback_says_when_the_preferred_region_was_healthy() {
        // NAM is preferred; the daemon failed back after 10 m of health.
        let mut records = outage();
        records.pop();
        records.push(moved(940_050, "failback", "EU", "NAM", 600_000));
        records.push(probe(950_100, "NAM", "ok"));
        records.push(rec(1_000_000, "daemon_stopped", &[]));
        let auto = |after: &str| RuleFlags {
            failback: Some("auto".into()),
            failback_after: humantime::parse_duration(after).ok(),
            ..RuleFlags::default()
        };
        let same = run(&records, &["-r", "NAM"], auto("10m"));
        assert_eq!(how(&same), []);
        let sooner = run(&records, &["-r", "NAM"], auto("5m"));
        assert_eq!(how(&sooner), [("other_time", Some(940), Some(640))]);
        let never = run(&records, &["-r", "NAM"], RuleFlags::default());
        assert_eq!(how(&never), [("not_made", Some(940), None)]);
    }

    #[test]
    fn a_pause_holds_the_failover_back_in_the_replay_too() {
        let records = [
            started(0, "NAM"),
            probe(50, "NAM", "ok"),
            rec(60_000, "paused", &[]),
            probe(100_050, "NAM", "failure"),
            moved(340_050, "failover_held", "NAM", "EU", 240_000),
            rec(400_000, "resumed", &[]),
            moved(400_050, "failover", "NAM", "EU", 300_000),
            probe(410_100, "EU", "ok"),
            rec(500_000, "daemon_stopped", &[]),
        ];
        let r = run(&records, &[], RuleFlags::default());
        assert_eq!(how(&r), []);
        let kinds: Vec<DecisionKind> = r.simulation.decisions.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DecisionKind::Held, DecisionKind::Failover]);
    }

    #[test]
    fn a_journal_that_begins_mid_run_starts_at_its_first_probe() {
        // The start rotated away with the journal's older half.
        let records = &outage()[1..];
        let r = run(records, &[], RuleFlags::default());
        assert!(r.simulation.joined_midway);
        assert_eq!(how(&r), []);
    }

    #[test]
    fn a_timed_out_probe_is_answered_after_the_timeout() {
        let mut records = outage();
        records[2] = rec(
            100_050,
            "probe_changed",
            &[
                ("region", "NAM".into()),
                ("outcome", "failure".into()),
                ("error_kind", "timeout".into()),
            ],
        );
        let r = run(&records, &[], RuleFlags::default());
        // The daemon began that probe a timeout (5 s) before it recorded it.
        assert_eq!(how(&r), []);
        assert_eq!(r.simulation.decisions[0].at, Duration::from_millis(340_050));
    }

    #[test]
    fn a_journal_that_is_missing_unreadable_or_empty_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.jsonl");
        let e = read_journal(&missing, false).unwrap_err();
        assert_eq!(e.origin, "--journal");
        assert!(e.message.contains("none.jsonl"), "{e}");
        let bad = dir.path().join("bad.jsonl");
        let good = serde_json::to_string(&started(0, "NAM")).unwrap();
        std::fs::write(&bad, format!("{good}\n\n{{\"event\":1}}\n")).unwrap();
        let e = read_journal(&bad, true).unwrap_err();
        assert!(
            e.message.contains("bad.jsonl line 3: not a journal record"),
            "{e}"
        );
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_journal(&empty, false).unwrap_err();
        assert!(e.message.ends_with("holds no journal records"), "{e}");
        std::fs::write(&empty, format!("{good}\n")).unwrap();
        assert_eq!(read_journal(&empty, true).unwrap().records.len(), 1);
        let read = read_journal(&bad, false).unwrap();
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.skipped.len(), 1);
        assert!(read.skipped[0].contains("bad.jsonl line 3: not a journal record"));
    }
}
